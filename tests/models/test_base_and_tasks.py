"""Base model resolution and loading, the generated task data, and bad-input errors."""
from __future__ import annotations

import pytest

from netgpt.core.messages import ServiceClass
from netgpt.core.settings import get_settings
from netgpt.models import tasks
from netgpt.models.base import (
    CLOUD_DEFAULT,
    EDGE_DEFAULT,
    MARKER,
    BaseSpec,
    ModelError,
    context_length,
    ensure_default,
    fingerprint,
    load_base,
    resolve,
)

# torch is imported inside the tests that need it directly.


def test_unknown_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="unknown model path '/no/such/model'"):
        load_base(BaseSpec("/no/such/model", tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve(BaseSpec(str(tmp_path / "empty"), tmp_path))


def test_hub_id_not_in_local_cache_fails_offline_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="cannot load model 'nobody-here/no-such-model'"):
        load_base(BaseSpec("nobody-here/no-such-model", tmp_path))


def test_defaults_not_built_are_reported_when_build_is_off(tmp_path):
    with pytest.raises(ModelError, match="netgpt models prepare"):
        resolve(BaseSpec("edge-default", tmp_path), build=False)


def test_local_folder_loads_and_fingerprint_identifies_the_weights(load_tiny):
    a1, tok = load_tiny("gpt2")
    a2, _ = load_tiny("gpt2")
    other, _ = load_tiny("gpt2-other")
    assert type(a1).__name__ == "GPT2LMHeadModel" and tok.pad_token is not None
    assert fingerprint(a1) == fingerprint(a2)
    assert fingerprint(a1) != fingerprint(other)  # same shape, different weights


def test_series_serialisation_round_trips():
    values = [0, 7, 123, 999]
    text = tasks.serialise(values)
    assert text == "0 0 0 , 0 0 7 , 1 2 3 , 9 9 9"
    assert tasks.parse_series(text) == values


@pytest.mark.parametrize("task", tasks.TASKS)
def test_task_examples_are_deterministic_and_varied(task):
    a, b = tasks.make_examples(task, 50, seed=3), tasks.make_examples(task, 50, seed=3)
    assert a == b
    assert len({e.prompt for e in a}) > 40
    assert all(e.target.startswith(" ") and e.target.strip() for e in a)


def test_geography_is_real_and_intents_cover_every_service_class():
    cities, countries = tasks.geography()
    paris = next(c for c in cities if c["name"] == "Paris" and c["countrycode"] == "FR")
    assert paris["timezone"] == "Europe/Paris" and abs(paris["latitude"] - 48.85) < 0.1
    labels = {e.target.strip() for e in tasks.intent_examples(70)}
    assert labels == {s.value for s in ServiceClass}


def test_scores():
    ex = tasks.Example("request: x\nservice:", " gaming")
    assert tasks.score("intent", " gaming\nmore", ex) == 1.0
    assert tasks.score("intent", " navigation", ex) == 0.0
    fc = tasks.Example("series: ->", " 1 0 0 , 2 0 0 , 3 0 0 , 4 0 0")
    assert tasks.score("forecast", " 1 0 0 , 2 0 0 , 3 0 0 , 4 0 0", fc) == 0
    assert tasks.score("forecast", " 1 1 0 , 2 0 0 , 3 0 0 , 4 0 0", fc) == 2.5
    naive = tasks.naive_answer("forecast", tasks.Example("series: 0 1 0 , 0 2 0 ->", ""))
    assert naive == " 0 2 0 , 0 2 0 , 0 2 0 , 0 2 0"
    assert tasks.naive_answer("intent", ex) is None
    with pytest.raises(ValueError, match="unknown task"):
        tasks.make_examples("poetry", 1)


@pytest.mark.slow
def test_both_offline_defaults_load(tmp_path):
    """The cloud default converts from the GGUF package; the edge default is the cached one or a short rebuild."""
    import torch

    cache = get_settings().cache_dir  # the conversion is deterministic and is what `netgpt models prepare` does
    cloud, cloud_tok = load_base(BaseSpec(CLOUD_DEFAULT, cache))
    assert type(cloud).__name__ == "LlamaForCausalLM"
    assert 130 < sum(p.numel() for p in cloud.parameters()) / 1e6 < 140
    assert cloud_tok.chat_template and context_length(cloud, cloud_tok) == 8192
    prompt = cloud_tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True)
    ids = cloud_tok(prompt, return_tensors="pt")
    out = cloud.generate(**ids, max_new_tokens=8, do_sample=False)
    assert "Paris" in cloud_tok.decode(out[0, ids["input_ids"].shape[1]:])

    edge_cache = cache if (cache / "models" / EDGE_DEFAULT / MARKER).is_file() else tmp_path
    if edge_cache == tmp_path:  # fresh clone: a short build exercises the same code as `prepare`
        ensure_default(EDGE_DEFAULT, tmp_path, steps=20, n_docs=4000, progress=False, log=lambda m: None)
    edge, edge_tok = load_base(BaseSpec(EDGE_DEFAULT, edge_cache))
    assert type(edge).__name__ == "GPT2LMHeadModel"
    ids = edge_tok("Lyon is a city in", return_tensors="pt")
    out = edge.generate(**ids, max_new_tokens=5, min_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids["input_ids"].shape[1] + 5
    assert torch.isfinite(edge(**ids).logits).all()
