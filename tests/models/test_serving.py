"""One base, several adapters, chosen per request; exact switching; safe under concurrent requests."""
from __future__ import annotations

import pytest
import torch

from netgpt.models.base import ModelError
from netgpt.models.serving import AdapterServer, PromptTooLong
from tests.models.conftest import assert_concurrent_requests_get_their_own_adapter

PROMPT = "request: stream the lakers match live\nservice:"


@pytest.fixture
def server(load_tiny, tiny_adapters):
    model, tokenizer = load_tiny("gpt2")
    with torch.no_grad():
        base_logits = model(**tokenizer(PROMPT, return_tensors="pt")).logits[0].clone()
    s = AdapterServer(model, tokenizer)
    for task in ("intent", "forecast"):
        s.load_adapter(task, tiny_adapters[task]["path"])
    s.base_logits_before_adapters = base_logits
    return s


def test_two_adapters_differ_and_switching_back_is_exact(server):
    first = server.logits(PROMPT, "intent")
    other = server.logits(PROMPT, "forecast")
    assert not torch.allclose(first, other)
    assert torch.equal(server.logits(PROMPT, "intent"), first)
    base = server.logits(PROMPT, None)
    assert torch.equal(base, server.base_logits_before_adapters)  # no adapter = the untouched base
    assert torch.equal(server.logits(PROMPT, server.name), base)
    assert server.model_ids() == ["tiny-gpt2", "intent", "forecast"]


def test_concurrent_requests_each_get_their_own_adapter(server):
    assert_concurrent_requests_get_their_own_adapter(server, PROMPT)


def test_usage_counts_and_streaming_match(server):
    c = server.complete(PROMPT, adapter="intent", max_tokens=5)
    assert c.prompt_tokens == len(server.tokenizer(PROMPT)["input_ids"])
    assert 1 <= c.completion_tokens <= 5
    *pieces, final = list(server.stream(PROMPT, adapter="intent", max_tokens=5))
    assert "".join(pieces) == final.text == c.text
    assert (final.prompt_tokens, final.completion_tokens) == (c.prompt_tokens, c.completion_tokens)


def test_bad_requests(server, tiny_adapters):
    with pytest.raises(PromptTooLong, match="maximum context length is 128 tokens"):
        server.complete("word " * 200, max_tokens=4)
    with pytest.raises(PromptTooLong):
        server.complete("short", max_tokens=500)
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        server.complete(PROMPT, adapter="nope")
    with pytest.raises(ModelError, match="already loaded"):
        server.load_adapter("intent", tiny_adapters["intent"]["path"])


def test_server_refuses_adapter_of_another_base(load_tiny, tiny_adapters):
    model, tokenizer = load_tiny("llama")
    s = AdapterServer(model, tokenizer)
    with pytest.raises(ModelError, match="trained for base"):
        s.load_adapter("intent", tiny_adapters["intent"]["path"])
    assert s.model_ids() == ["tiny-llama"]


def test_a_generation_nobody_waits_for_stops_early(server):
    full = server.complete("the network", max_tokens=40)
    assert full.completion_tokens == 40 and full.finish_reason == "length" and server.cancelled == 0
    cut = server.complete("the network", max_tokens=40, should_stop=lambda: True)
    assert cut.finish_reason == "cancelled" and cut.completion_tokens < 5 and server.cancelled == 1
    # A streaming consumer that stops reading frees the model at the next token, and the server goes on serving.
    pieces = server.stream("the network", max_tokens=60)
    next(pieces)
    pieces.close()
    assert server.cancelled == 2 and not server.lock.locked()
    assert server.complete("the network", max_tokens=40).text == full.text


def test_keep_end_fits_a_prompt_cut_inside_multibyte_characters(server):
    """Cutting by tokens can split an emoji; its decoded U+FFFD re-encodes longer and overflowed the context."""
    prompt = "x🙂" * 200
    kept = server.keep_end(prompt, max_tokens=20)
    assert len(server.tokenizer(kept, add_special_tokens=False)["input_ids"]) + 20 <= server.context_length
    assert kept.endswith("x🙂") and server.complete(kept, max_tokens=20).completion_tokens >= 1
    assert server.keep_end("short", 20) == "short"
