"""LoRA training, saving with a card, reloading exactly, and refusing adapters made for another base."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from netgpt.models.base import ModelError
from netgpt.models.lora import CARD, check_adapter


def test_training_lowers_the_eval_loss_and_writes_a_card(tiny_adapters):
    for name, result in tiny_adapters.items():  # "llama-forecast": the forecast task on the tiny LLaMA
        task, base = name.removeprefix("llama-"), "tiny-llama" if name.startswith("llama-") else "tiny-gpt2"
        m = result["metrics"]
        assert m["eval_loss"] < m["eval_loss_before"] - 0.15, (name, m)
        card = json.loads((result["path"] / CARD).read_text())
        assert card["task"] == task and card["steps"] == 40 and card["base"].endswith(base)
        assert card["metrics"] == m and "generated" in card["data"]
        assert ("mae_last_value" in m) == (task == "forecast")
        assert (result["path"] / "adapter_model.safetensors").is_file()
        assert (result["path"] / "README.md").read_text().startswith(f"# LoRA adapter: {task}")
        assert 0 < (result["path"] / "adapter_model.safetensors").stat().st_size < 1_000_000


def test_save_then_load_gives_identical_logits(tiny_adapters, load_tiny):
    from peft import PeftModel

    result = tiny_adapters["intent"]
    trained = result["model"]
    base, tokenizer = load_tiny("gpt2")
    ids = tokenizer("request: call my sister in Lyon\nservice:", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected = trained(input_ids=ids).logits
        plain = base(input_ids=ids).logits
        reloaded = PeftModel.from_pretrained(base, str(result["path"])).eval()
        got = reloaded(input_ids=ids).logits
    assert torch.equal(got, expected)
    assert not torch.allclose(plain, expected)  # the adapter really changes the model


def test_adapter_for_another_base_is_refused_with_the_reason(tiny_adapters, load_tiny):
    path = tiny_adapters["intent"]["path"]
    same, _ = load_tiny("gpt2")
    assert check_adapter(same, path)["task"] == "intent"
    other, _ = load_tiny("gpt2-other")
    with pytest.raises(ModelError, match=r"trained for base '.*tiny-gpt2'.*not for this base '.*tiny-gpt2-other'"):
        check_adapter(other, path)
    llama, _ = load_tiny("llama")
    with pytest.raises(ModelError, match="GPT2LMHeadModel.*LlamaForCausalLM"):
        check_adapter(llama, path)


def test_adapter_without_card_is_checked_by_peft_base_name(tiny_adapters, load_tiny, tmp_path):
    copy = tmp_path / "foreign"
    shutil.copytree(tiny_adapters["forecast"]["path"], copy)
    (copy / CARD).unlink()
    base, _ = load_tiny("gpt2")
    assert check_adapter(base, copy) == {}
    cfg = json.loads((copy / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = "someone/else"
    (copy / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="names base 'someone/else'"):
        check_adapter(base, copy)
    with pytest.raises(ModelError, match="not a peft adapter folder"):
        check_adapter(base, tmp_path)
