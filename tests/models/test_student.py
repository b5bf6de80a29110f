"""A task student cut from a base (netgpt.models.student): the blocks it keeps, its training, the folder it saves, and
the intent reader that serves it on either backend."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest

from netgpt.intent.lm import IntentLM, built, student_dir
from netgpt.models.base import BaseSpec, ModelError, load_base
from netgpt.models.gguf_export import base_gguf
from netgpt.models.lora import answer, encode, optimise
from netgpt.models.student import CARD, StudentConfig, cut, is_student_of, train_student
from netgpt.models.tasks import Example
from tests.models.conftest import tiny_model


@pytest.fixture(scope="module")
def tiny_llama4(tmp_path_factory, tiny_tokenizer):
    """A 4-block LLaMA (the tiny fixture bases have 2) trained, every weight, on the toy task: a teacher whose
    embeddings mean something, as a pretrained base's do (the student trains no embedding)."""
    import random

    model = tiny_model(tiny_tokenizer, seed=5, arch="llama", layers=4)
    tiny_tokenizer.pad_token = tiny_tokenizer.eos_token
    encoded = [encode(tiny_tokenizer, e, 96) for e in _examples(64)]
    optimise(model, list(model.parameters()), encoded, StudentConfig(task="toy", steps=150, lr=1e-2), 0,
             random.Random(0), progress=False)
    out = tmp_path_factory.mktemp("student") / "tiny-llama4"
    model.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


def _examples(n: int) -> list[Example]:
    verbs = ["block", "allow", "cap", "prioritize"]
    return [Example(f"operator: {verbs[i % 4]} cell {i % 7}\nintent:", f" action={verbs[i % 4]} scope=c{i % 7}")
            for i in range(n)]


def test_cut_keeps_the_named_blocks_in_order_and_still_generates(tiny_llama4, tmp_path):
    import torch

    model, tokenizer = load_base(BaseSpec(str(tiny_llama4), tmp_path))
    first, last = model.model.layers[0], model.model.layers[3]
    cut(model, (0, -1))
    assert list(model.model.layers) == [first, last] and model.config.num_hidden_layers == 2
    assert [b.self_attn.layer_idx for b in model.model.layers] == [0, 1]  # the KV cache's index follows the cut
    ids = tokenizer("operator: block cell 2", return_tensors="pt")["input_ids"]
    with torch.no_grad():  # with the cache (generate) and without it, the same next tokens
        out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
        step = ids
        for _ in range(4):
            step = torch.cat([step, model(step).logits[:, -1:].argmax(-1)], dim=1)
    assert out.tolist() == step.tolist()


@pytest.mark.parametrize("keep", [(0, 0), (4,), (-5,), ()])
def test_cut_refuses_blocks_the_base_does_not_have(tiny_llama4, tmp_path, keep):
    model, _ = load_base(BaseSpec(str(tiny_llama4), tmp_path))
    with pytest.raises(ModelError, match="not distinct blocks"):
        cut(model, keep)


def test_cut_refuses_another_architecture(load_tiny):
    model, _ = load_tiny("gpt2")
    with pytest.raises(ModelError, match="only LLaMA"):
        cut(model, (0,))


def test_training_fits_the_task_and_saves_a_servable_student(tiny_llama4, tmp_path):
    import torch

    model, tokenizer = load_base(BaseSpec(str(tiny_llama4), tmp_path))
    embeddings = model.get_input_embeddings().weight.detach().clone()
    kept_block = {k: v.clone() for k, v in model.model.layers[3].state_dict().items()}
    settings = SimpleNamespace(intent_base=str(tiny_llama4), intent_reader="student", cache_dir=tmp_path / "cache",
                               serving_backend="torch")
    assert not built(settings)
    cfg = StudentConfig(task="operator-intent-student", keep=(0, 3), steps=100, lr=1e-2, n_generate=4)
    result = train_student(model, tokenizer, cfg, student_dir(settings), (_examples(64), _examples(16), "generated"),
                           log=lambda m: None, progress=False)

    m = result["metrics"]
    assert m["eval_loss"] < 0.9 * m["eval_loss_cut"]
    card = json.loads((result["path"] / CARD).read_text())
    assert card["cut_from"] == str(tiny_llama4) and card["blocks_kept"] == [0, 3] and card["blocks_of_base"] == 4
    assert card["steps"] == 100 and card["data"] == "generated"
    saved, _ = load_base(BaseSpec(str(result["path"]), tmp_path))
    assert saved.config.num_hidden_layers == 2
    assert torch.equal(saved.get_input_embeddings().weight, embeddings)  # the head is tied to them: kept as they were
    assert any(not torch.equal(saved.model.layers[1].state_dict()[k], v) for k, v in kept_block.items())

    assert built(settings)
    reader = IntentLM.open(settings)  # the reader serves the student itself, with no adapter
    assert reader.adapter is None
    prompts = [e.prompt for e in _examples(8)]
    in_memory = [answer(result["model"], tokenizer, p, 24) for p in prompts]
    assert [reader.server.complete(p, max_tokens=24).text for p in prompts] == in_memory
    assert [a.split()[:1] for a in in_memory] == [e.target.split()[:1] for e in _examples(8)]  # the verb, at least
    fast = IntentLM.open(SimpleNamespace(**{**vars(settings), "serving_backend": "llamacpp"}))
    assert fast.guided and fast.server.complete(prompts[0], max_tokens=8).text.strip()  # converted to GGUF and served
    ggufs = sorted(f.name for f in student_dir(settings).glob("*.gguf"))
    assert ggufs == ["model-q4_0.gguf"]  # quantized by llama.cpp from an f16 file, which is not kept
    q4 = student_dir(settings) / "model-q4_0.gguf"
    built_at = q4.stat().st_mtime_ns
    weights = student_dir(settings) / "model.safetensors"
    os.utime(weights, ns=(built_at + 10**9, built_at + 10**9))  # retrained: newer weights than the GGUF
    assert base_gguf(student_dir(settings), "q4_0") == q4 and q4.stat().st_mtime_ns > built_at
    assert sorted(f.name for f in student_dir(settings).glob("*.gguf")) == ["model-q4_0.gguf"]
    assert not built(SimpleNamespace(**{**vars(settings), "intent_base": "cloud-default"}))  # cut from another base


def test_intent_train_command_builds_either_reader_and_refuses_bad_blocks(tiny_llama4, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from netgpt.cli.intent import app
    from netgpt.core.settings import get_settings

    monkeypatch.setenv("NETGPT_INTENT_BASE", str(tiny_llama4))
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke
        small = ["--steps", "3", "--n-train", "24", "--n-eval", "6"]
        result = run(app, ["train", "--blocks", "3,0", *small])
        assert result.exit_code == 0, result.output
        assert built(get_settings())  # the default reader, Settings.intent_reader: the student
        card = json.loads((student_dir(get_settings()) / CARD).read_text())
        assert card["blocks_kept"] == [0, 3] and card["steps"] == 3 and "GENERATED" in card["data"]
        card_at = (student_dir(get_settings()) / CARD).stat().st_mtime_ns
        result = run(app, ["train", "--if-missing", *small])  # what make test runs: built, so nothing is trained
        assert result.exit_code == 0 and "builtalready" in "".join(result.output.split()), result.output
        assert (student_dir(get_settings()) / CARD).stat().st_mtime_ns == card_at
        result = run(app, ["train", "--reader", "lora", "--if-missing", *small])  # the student is built, lora is not
        assert result.exit_code == 0 and "saved" in result.output, result.output
        monkeypatch.setenv("NETGPT_INTENT_READER", "lora")
        get_settings.cache_clear()
        assert built(get_settings())
        for bad, says in ((["--reader", "student", "--blocks", "0,0"], "notdistinctblocks"),
                          (["--blocks", "two"], "expectedblocknumbers"), (["--blocks", "3-"], "expectedblocknumbers"),
                          (["--reader", "teacher"], "studentorlora"), (["--minutes", "0"], "morethan0")):
            result = run(app, ["train", *bad, *small])
            assert result.exit_code == 1 and says in "".join(result.output.split()), result.output
    finally:
        get_settings.cache_clear()


def test_models_train_builds_a_complete_student_that_the_edge_serves_alone(tiny_llama4, tmp_path, monkeypatch):
    """`netgpt models train --task complete --student` saves a student of the completion task; load_edge_lm serves it
    itself (q4_0 on llama.cpp, no adapter, no answers of its own) and refuses an adapter or a student of another task."""
    from typer.testing import CliRunner

    from netgpt.cli.models import app
    from netgpt.core.settings import get_settings
    from netgpt.edge_agent.collab.edge_lm import load_edge_lm
    from netgpt.models.student import task_dir

    cache = tmp_path / "cache"
    monkeypatch.setenv("NETGPT_EDGE_BASE", str(tiny_llama4))
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(cache))
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke
        small = ["--task", "complete", "--steps", "3", "--n-train", "24", "--n-eval", "6"]
        result = run(app, ["train", "--student", "--blocks", "3,0", *small])
        assert result.exit_code == 0, result.output
        for bad, says in ((["--blocks", "0,3"], "isfor--student"), (["--student", "--blocks", "x"], "expectedblock"),
                          (["--minutes", "0"], "morethan0"), (["--student", "--rank", "4"], "isforaLoRAadapter")):
            result = run(app, ["train", *bad, *small])
            assert result.exit_code == 1 and says in "".join(result.output.split()), result.output
    finally:
        get_settings.cache_clear()
    folder = task_dir(cache, "complete")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETGPT_EDGE_BASE", "~/cache/models/complete-student")  # as a .env file may write it
    get_settings.cache_clear()
    try:  # with the student as the edge base, `make models`' check and install need no adapter
        for command in ("check", "install"):
            result = CliRunner().invoke(app, [command, "--task", "complete"])
            assert result.exit_code == 0 and "takesnoadapter" in "".join(result.output.split()), result.output
    finally:
        get_settings.cache_clear()
    card = json.loads((folder / CARD).read_text())
    assert card["task"] == "complete" and card["blocks_kept"] == [0, 3] and card["steps"] == 3
    assert "GENERATED" in card["data"] and card["cut_from"] == str(tiny_llama4)

    lm = load_edge_lm(str(folder), cache, None, "llamacpp")
    assert lm.adapter is None and not lm.answers
    assert sorted(f.name for f in folder.glob("*.gguf")) == ["model-q4_0.gguf"]
    out = lm.generate("operator: block cell 3\nintent:", max_tokens=6)
    assert out.tokens_in > 0 and out.tokens_out > 0
    with pytest.raises(ModelError, match="takes no adapter"):
        load_edge_lm(str(folder), cache, tmp_path, "llamacpp")
    (folder / CARD).write_text(json.dumps({**card, "task": "forecast"}))
    with pytest.raises(ModelError, match="not of 'complete'"):
        load_edge_lm(str(folder), cache, None, "llamacpp")


def test_is_student_of_reads_the_task_from_the_card(tmp_path, monkeypatch):
    folder = tmp_path / "models" / "complete-student"
    folder.mkdir(parents=True)
    assert not is_student_of(folder, "complete")  # a plain folder: no card
    (folder / CARD).write_text(json.dumps({"task": "complete", "steps": 3}))
    assert is_student_of(folder, "complete") and is_student_of(str(folder), "complete")
    assert not is_student_of(folder, "operator-intent-student")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert is_student_of("~/models/complete-student", "complete")  # "~" expanded, as a .env file may write it
    (folder / CARD).write_text(json.dumps({"task": "forecast"}))
    assert not is_student_of(folder, "complete")
    assert not is_student_of(tmp_path / "missing", "complete") and not is_student_of("HuggingFaceTB/x", "complete")


def test_models_train_refuses_rank_for_a_student_and_keeps_the_lora_default(tmp_path, monkeypatch):
    """--rank is a LoRA adapter's: with --student it is refused (exit 1, one line, before any model loads); without
    it, the adapter's rank is 8 as before and an explicit one is used."""
    from typer.testing import CliRunner

    import netgpt.cli.models as cli
    from netgpt.core.settings import get_settings

    ranks, loads = [], []
    monkeypatch.setattr(cli, "configure_threads", lambda: None)
    monkeypatch.setattr(cli, "load_base", lambda spec, log=None: loads.append(spec) or (None, None))
    monkeypatch.setattr(cli, "train_adapter", lambda model, tok, cfg, out, log=None: ranks.append(cfg.rank) or
                        {"path": out, "metrics": {}})
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path / "cache"))
    get_settings.cache_clear()
    try:
        run = CliRunner().invoke
        result = run(cli.app, ["train", "--task", "complete", "--student", "--rank", "4"])
        assert result.exit_code == 1 and "--rankisforaLoRAadapter" in "".join(result.output.split()), result.output
        assert not ranks and not loads  # refused before any model loads
        for extra, rank in (([], 8), (["--rank", "4"], 4)):
            result = run(cli.app, ["train", "--task", "complete", "--n-train", "4", "--n-eval", "2", *extra])
            assert result.exit_code == 0, result.output
            assert ranks[-1] == rank
    finally:
        get_settings.cache_clear()
