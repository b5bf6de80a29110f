"""The LoRA intent classifier's fit / predict contract, on a tiny training run (one epoch of a sample of the GENERATED
set; its accuracy is measured by bench/user_intent.py, not here)."""
from __future__ import annotations

import numpy as np
import pytest

from netgpt.core.messages import ServiceClass, UserIntent
from netgpt.edge_agent.user_intent import classifier as ui
from netgpt.edge_agent.user_intent import lora as ul
from netgpt.edge_agent.user_intent.training_data import generate_training_set

TINY = ul.LoRAIntentConfig(epochs=1, batch_size=16, max_length=24, threads=1, lr=1e-3, head_lr=5e-3)


@pytest.fixture(scope="module")
def tiny_lora():
    samples = generate_training_set()
    keep = np.random.default_rng(0).choice(len(samples), 160, replace=False)
    chosen = [samples[i] for i in keep]
    return ul.LoRAIntentClassifier(TINY).fit([s.text for s in chosen], [s.label for s in chosen],
                                             [s.template for s in chosen])


def test_probabilities_are_distributions_in_class_order(tiny_lora):
    probs = tiny_lora.predict_proba(["call my uncle", "download the installer", "play some chess online"])
    assert probs.shape == (3, len(ui.CLASSES)) and np.allclose(probs.sum(axis=1), 1.0)
    predicted = tiny_lora.predict(["call my uncle"])
    assert isinstance(predicted[0][0], ServiceClass) and 0 <= predicted[0][1] <= 1
    assert tiny_lora.predict_proba([]).shape == (0, len(ui.CLASSES))


def test_report_says_what_was_trained(tiny_lora):
    r = tiny_lora.report
    assert r["n"] == 160 and r["train"]["steps"] == r["train"]["of_steps"] == 10  # 160 / 16, one epoch
    assert r["calibration"]["temperature"] > 0 and r["calibration"]["n"] > 0
    assert tiny_lora.temperature == r["calibration"]["temperature"]


def test_only_lora_and_head_train(tiny_lora):
    names = [n for n, p in tiny_lora.net.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n or n.startswith("head.") for n in names)
    assert any(n.startswith("head.") for n in names)


@pytest.mark.parametrize("bad", ["", "   ", "x" * (ui.MAX_PROMPT_CHARS + 1), None, 42])
def test_unusable_prompts_raise_value_error(tiny_lora, bad):
    with pytest.raises(ValueError):
        tiny_lora.infer_intent(bad, "u1", "c1", "r1")


def test_unknown_labels_and_untrained_use_raise():
    with pytest.raises(ValueError, match="unknown labels"):
        ul.LoRAIntentClassifier(TINY).fit(["call mom"], ["telepathy"])
    with pytest.raises(RuntimeError):
        ul.LoRAIntentClassifier(TINY).predict_proba(["call mom"])


def test_infer_intent_message(tiny_lora):
    intent = tiny_lora.infer_intent("put on a nature documentary", user="alice", cell="c1", request_id="req-1")
    assert isinstance(intent, UserIntent) and intent.model == ul.MODEL_NAME
    assert intent.bandwidth_mbps == ui.DEMAND_TABLE[intent.service_class].bandwidth_mbps


def test_save_load_round_trip(tiny_lora, tmp_path):
    texts = ["call my uncle", "route me to the station"]
    tiny_lora.save(tmp_path / "lora")
    again = ul.LoRAIntentClassifier.load(tmp_path / "lora")
    assert np.allclose(again.predict_proba(texts), tiny_lora.predict_proba(texts), atol=1e-5)
    assert (tmp_path / "lora" / "weights.pt").stat().st_size < 5_000_000  # LoRA + head only, not the encoder


def test_temperature_fit_recovers_a_known_one():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (4000, 7))
    y = np.array([rng.choice(7, p=p) for p in ul.softmax(logits / 2.0)])
    assert abs(ul.fit_temperature(logits, y) - 2.0) < 0.2
