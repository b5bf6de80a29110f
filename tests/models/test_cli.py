"""`netgpt models ...` / `netgpt cloud ...`: one command per task, one-line errors without tracebacks."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from netgpt.cli.cloud import app as cloud_app
from netgpt.cli.models import app, bases_to_build
from netgpt.core import settings

runner = CliRunner()


def flat(text: str) -> str:
    """Rich wraps long lines to the terminal width: compare without any whitespace."""
    return "".join(text.split())


def test_train_command_saves_adapter_with_card_and_prints_metrics(tiny_dirs, tmp_path):
    out = tmp_path / "intent-adapter"
    result = runner.invoke(app, ["train", "--task", "intent", "--base", str(tiny_dirs["gpt2"]), "--steps", "6",
                                 "--batch-size", "4", "--n-train", "40", "--n-eval", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "evalloss" in flat(result.output) and "accuracy=" in flat(result.output)
    assert flat(f"saved {out}") in flat(result.output)
    card = json.loads((out / "netgpt-adapter.json").read_text())
    assert card["task"] == "intent" and card["steps"] == 6 and set(card["metrics"]) >= {"eval_loss", "accuracy"}
    assert (out / "adapter_config.json").is_file()


def test_bad_input_gives_one_line_errors(tmp_path):
    result = runner.invoke(app, ["train", "--task", "poetry"])
    assert result.exit_code == 1 and flat("unknown task 'poetry'") in flat(result.output)
    result = runner.invoke(app, ["train", "--task", "intent", "--base", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "unknownmodelpath" in flat(result.output) and "Traceback" not in result.output
    result = runner.invoke(cloud_app, ["serve", "--base", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "unknownmodelpath" in flat(result.output)


def test_cloud_ask_talks_to_the_configured_endpoint(tmp_path):
    result = runner.invoke(cloud_app, ["ask", "hello", "--url", "http://127.0.0.1:9/v1"])
    assert result.exit_code == 1 and "nocloudLLMathttp://127.0.0.1:9/v1" in flat(result.output)


def test_cloud_serve_refuses_an_adapter_of_another_base(tiny_dirs, tiny_adapters):
    result = runner.invoke(cloud_app, ["serve", "--base", str(tiny_dirs["llama"]), "--adapter",
                                       str(tiny_adapters["intent"]["path"]), "--port", "1"])
    assert result.exit_code == 1 and "wastrainedforbase" in flat(result.output)


def test_info_lists_bases(monkeypatch, tmp_path):
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path))
    settings.get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["info"])
    finally:
        settings.get_settings.cache_clear()
    assert result.exit_code == 0 and "edge-default" in result.output and "missing" in result.output


def test_prepare_builds_what_the_settings_use():
    assert bases_to_build(None, "cloud-default") == ["cloud-default"]  # the default: no GPT-2 pre-training
    assert bases_to_build(None, "/some/folder") == ["cloud-default"]
    assert bases_to_build(None, "edge-default") == ["cloud-default", "edge-default"]
    assert bases_to_build("edge", "cloud-default") == ["edge-default"]  # still buildable on demand
    assert bases_to_build("gpu", "cloud-default") is None


def test_check_says_whether_an_adapter_fits_the_configured_edge_base(monkeypatch, tmp_path, tiny_dirs,
                                                                     tiny_adapters):
    intent = str(tiny_adapters["intent"]["path"])  # trained on the tiny GPT-2
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path))
    results = {}
    for base in ("gpt2", "llama"):
        monkeypatch.setenv("NETGPT_EDGE_BASE", str(tiny_dirs[base]))
        settings.get_settings.cache_clear()
        try:
            results[base] = runner.invoke(app, ["check", "--task", "intent", "--adapter", intent])
            results[f"{base}-task"] = runner.invoke(app, ["check", "--task", "forecast", "--adapter", intent])
            results[f"{base}-missing"] = runner.invoke(app, ["check", "--task", "complete"])
        finally:
            settings.get_settings.cache_clear()
    assert results["gpt2"].exit_code == 0, results["gpt2"].output
    assert results["llama"].exit_code == 1 and "wastrainedforbase" in flat(results["llama"].output)
    assert results["gpt2-task"].exit_code == 1 and "fortask'intent'" in flat(results["gpt2-task"].output)
    assert results["gpt2-missing"].exit_code == 1 and "nocompleteadapterat" in flat(results["gpt2-missing"].output)


def test_install_copies_an_adapter_for_the_edge_base_into_the_cache_once(monkeypatch, tmp_path, tiny_dirs,
                                                                         tiny_adapters):
    """`make models` installs the shipped adapter: copied into <cache>/adapters/<task> when it fits the edge base,
    left as it is when it is already there, put back over another adapter; refused, nothing copied, for another
    base."""
    intent = tiny_adapters["intent"]["path"]  # trained on the tiny GPT-2
    monkeypatch.setenv("NETGPT_CACHE_DIR", str(tmp_path))
    dest = tmp_path / "adapters" / "intent"
    monkeypatch.setenv("NETGPT_EDGE_BASE", str(tiny_dirs["llama"]))
    settings.get_settings.cache_clear()
    try:
        refused = runner.invoke(app, ["install", "--task", "intent", "--source", str(intent)])
        assert refused.exit_code == 1 and "wastrainedforbase" in flat(refused.output) and not dest.exists()
        monkeypatch.setenv("NETGPT_EDGE_BASE", str(tiny_dirs["gpt2"]))
        settings.get_settings.cache_clear()
        first = runner.invoke(app, ["install", "--task", "intent", "--source", str(intent)])
        assert first.exit_code == 0 and "installedtheshipped" in flat(first.output), first.output
        assert (dest / "adapter_model.safetensors").read_bytes() == (intent / "adapter_model.safetensors").read_bytes()
        again = runner.invoke(app, ["install", "--task", "intent", "--source", str(intent)])
        assert again.exit_code == 0 and flat(again.output).endswith("installed"), again.output
        (dest / "adapter_model.safetensors").write_bytes(b"another adapter")
        assert runner.invoke(app, ["install", "--task", "intent", "--source", str(intent)]).exit_code == 0
        assert (dest / "adapter_model.safetensors").read_bytes() == (intent / "adapter_model.safetensors").read_bytes()
        assert runner.invoke(app, ["check", "--task", "intent"]).exit_code == 0
    finally:
        settings.get_settings.cache_clear()


def test_a_bases_identity_is_recorded_and_read_back_until_its_files_change(monkeypatch, tmp_path, tiny_dirs,
                                                                           tiny_tokenizer):
    """`models check` runs on every `make demo`: it reads the base's identity from the record next to its weights
    instead of loading them, and loads them again once a file has changed (other weights, another fingerprint)."""
    import shutil

    from netgpt.models import lora
    from netgpt.models.base import BaseSpec, load_base
    from tests.models.conftest import save_tiny

    folder = tmp_path / "base"
    shutil.copytree(tiny_dirs["gpt2"], folder)
    spec = BaseSpec(str(folder), tmp_path)
    loaded = lora.BaseIdentity.of(load_base(spec)[0])
    assert lora.base_identity(spec) == loaded and (folder / lora.IDENTITY_RECORD).is_file()

    def no_loading(*a, **kw):
        raise AssertionError("the base was loaded although its record matches")

    monkeypatch.setattr(lora, "load_base", no_loading)
    assert lora.base_identity(spec) == loaded
    copy = shutil.copytree(folder, tmp_path / "copy")  # the record travels; the name it reports is the copy's
    assert lora.base_identity(BaseSpec(str(copy), tmp_path)) == lora.BaseIdentity(
        loaded.fingerprint, str(copy), str(copy), loaded.architecture)
    monkeypatch.undo()
    save_tiny(folder, tiny_tokenizer, seed=1)  # other weights in the same folder
    other = lora.base_identity(spec)
    assert other.fingerprint != loaded.fingerprint
    assert other == lora.BaseIdentity.of(load_base(spec)[0])
