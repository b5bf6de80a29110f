"""Fixture-sized models for the edge agent tests: a random 2-layer GPT-2 as the edge LM (its free text is noise, which
is what the fact checker must survive) and the same kind of model behind the real OpenAI-compatible cloud service."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

# The Hugging Face libraries' own switch (not a NETGPT setting): read when they are imported, so set before them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import httpx  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import uvicorn  # noqa: E402
from transformers import GPT2LMHeadModel  # noqa: E402

from netgpt.core.messages import ServiceClass, UserIntent  # noqa: E402
from netgpt.edge_agent.collab.edge_lm import EdgeLM  # noqa: E402
from netgpt.edge_agent.location.cells import load_cells  # noqa: E402
from netgpt.edge_agent.user_intent.classifier import DEMAND_TABLE, MODEL_NAME  # noqa: E402
from netgpt.models.base import BaseSpec, load_base  # noqa: E402
from netgpt.models.cloud_service import create_app  # noqa: E402
from netgpt.models.edge_pretrain import generated_corpus, gpt2_config, train_tokenizer  # noqa: E402
from netgpt.models.serving import AdapterServer  # noqa: E402
from netgpt.stack.services import free_port  # noqa: E402

# Thursday 26 November 2026, 14:05:00 UTC: 15:05 in Lyon (CET, UTC+1), 23:05 in Osaka (JST, UTC+9).
FIXED_NOW = 1795701900.0


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    torch.set_num_threads(min(2, torch.get_num_threads()))


def build_tiny_edge_model(out: Path) -> Path:
    """A random 2-layer GPT-2 with a 600-token BPE and a 512-token context, saved as a Hugging Face folder (seconds)."""
    tokenizer = train_tokenizer(generated_corpus(n_docs=1500, seed=7), vocab_size=600)
    tokenizer.model_max_length = 512
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(len(tokenizer), n_layer=2, n_embd=64, n_head=2, n_positions=512))
    model.config._name_or_path = out.name
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_edge_model(tmp_path_factory.mktemp("edge-tiny") / "tiny-edge")


@pytest.fixture(scope="session")
def edge_lm(tiny_model_dir, tmp_path_factory):
    model, tokenizer = load_base(BaseSpec(str(tiny_model_dir), tmp_path_factory.mktemp("cache")))
    return EdgeLM(AdapterServer(model, tokenizer), "complete")


@pytest.fixture(scope="session")
def cells():
    return load_cells()


class StubClassifier:
    """Stands in for the MiniLM user-intent model (trained for a minute on first use): a fixed service class with the
    real demand table, so the published UserIntent is a real one."""

    def infer_intent(self, text, user, cell, request_id, source=""):
        service = ServiceClass.navigation if "route" in text else ServiceClass.web_chat
        d = DEMAND_TABLE[service]
        return UserIntent(request_id=request_id, user=user, cell=cell, service_class=service, confidence=0.9,
                          bandwidth_mbps=d.bandwidth_mbps, duration_s=d.duration_s, latency_class=d.latency_class,
                          model=MODEL_NAME, source=source)


@pytest.fixture(scope="session")
def tiny_cloud(tiny_model_dir, tmp_path_factory):
    """The real cloud service (netgpt.models.cloud_service) over a tiny model, served by uvicorn on a free port."""
    model, tokenizer = load_base(BaseSpec(str(tiny_model_dir), tmp_path_factory.mktemp("cloud-cache")))
    server = AdapterServer(model, tokenizer)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(create_app(server), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    for _ in range(100):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield {"url": f"http://127.0.0.1:{port}/v1", "model": server.name}
    uv.should_exit = True
    thread.join(timeout=10)
