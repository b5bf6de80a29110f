"""The one place an `openai` client for the cloud LLM is built: the edge agent's CloudClient
(netgpt.edge_agent.collab.engine) and `netgpt cloud ask` both use it.

The cloud is `netgpt cloud serve` (netgpt.models.cloud_service) or any other OpenAI-compatible endpoint (vLLM,
Ollama); where it is comes from Settings.cloud_url / cloud_model (NETGPT_CLOUD_URL, NETGPT_CLOUD_MODEL), which the
callers pass in.
"""
from __future__ import annotations

from openai import OpenAI

# The offline endpoints ignore the key, but the client refuses to start without one.
API_KEY = "not-needed-offline"


def openai_client(url: str, timeout_s: float, max_retries: int = 0) -> OpenAI:
    """A client for the OpenAI API at `url`. No retries by default: a caller that can fall back (the edge answers
    itself) should do so at once rather than after the client's backoff."""
    return OpenAI(base_url=url, api_key=API_KEY, timeout=timeout_s, max_retries=max_retries)
