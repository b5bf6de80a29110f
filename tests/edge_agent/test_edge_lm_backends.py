"""The edge LM on llama.cpp gives the torch backend's continuation, and a confidence (mean token log-probability,
which routes requests in routed mode) taken from the decoding loop instead of a second forward pass: it must equal the
log-probabilities the torch model assigns to the very tokens generated."""
import pytest
import torch

from netgpt.edge_agent.collab.edge_lm import EdgeLM
from netgpt.models.base import BaseSpec, load_base
from netgpt.models.gguf_export import base_gguf
from netgpt.models.llamacpp import LlamaCppServer

PROMPTS = ["User in Lyon, France asks: any good place for dinner tonight? Completed request:",
           "The cell c3 covers Osaka. The user asks what to see this afternoon, so",
           "what time is it here"]


def test_llamacpp_edge_lm_matches_torch(edge_lm, tiny_model_dir, tmp_path):
    model, tokenizer = load_base(BaseSpec(str(tiny_model_dir), tmp_path))
    server = LlamaCppServer.from_base(model, tokenizer, tiny_model_dir, gguf=base_gguf(tiny_model_dir, "f32"))
    fast = EdgeLM(server)
    checked = 0
    for prompt in PROMPTS:
        ref, got = edge_lm.generate(prompt, max_tokens=12), fast.generate(prompt, max_tokens=12)
        assert got.text == ref.text and got.tokens_out == ref.tokens_out
        # the reference: torch's log-probabilities of the generated ids themselves (no re-tokenisation of the text)
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        done = server.complete(prompt, max_tokens=12)
        new = tokenizer(done.text, add_special_tokens=False)["input_ids"] if done.text else []
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids + new])).logits[0]
        logprobs = torch.log_softmax(logits[len(ids) - 1:-1], dim=-1).gather(1, torch.tensor(new).unsqueeze(1))
        if new and len(new) == done.completion_tokens:  # the text re-encodes to the same ids
            assert got.mean_logprob == pytest.approx(float(logprobs.mean()), abs=1e-3)
            checked += 1
    assert checked >= 2  # the comparison ran, not only the branch that skips it
