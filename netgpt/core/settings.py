"""One typed settings object for every process. Override any field with NETGPT_<FIELD> (e.g. NETGPT_REDIS_PORT=16380)."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "netgpt"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NETGPT_", extra="ignore")

    # Redis: the message bus between controller, edge agents and the intent layer.
    redis_host: str = "127.0.0.1"
    redis_port: int = Field(16379, ge=1, le=65535)
    # When set, clients connect through this UNIX socket instead of TCP. `netgpt up` always opens one at
    # run_dir/redis.sock: Mininet hosts have their own network namespace but share the filesystem, so agents on
    # emulated MEC hosts reach the bus through it, as a management network would.
    redis_socket: Path | None = None

    # Ryu: OpenFlow listener and its REST/WSGI API.
    ofp_port: int = Field(6653, ge=1, le=65535)
    ryu_api_port: int = Field(8080, ge=1, le=65535)
    operator_api_port: int = Field(8090, ge=1, le=65535)  # the operator REST API (netgpt intent serve)
    ryu_apps: list[str] = [
        "netgpt.controller.shortest_path", "netgpt.controller.monitor", "netgpt.controller.te", "netgpt.controller.allocation",
        "netgpt.controller.operator_intents", "netgpt.controller.rest_api"]

    # Monitoring: the issue asks for statistics at least every 2 s.
    stats_interval_s: float = Field(1.0, gt=0, le=2.0)
    # Telemetry streams are capped so a long run cannot fill memory (approximate MAXLEN).
    stream_maxlen: int = Field(100_000, ge=100)

    # Traffic engineering: 'static' (shortest path only), 'ecmp' (all equal-cost shortest paths, select groups; never
    # moved), 'reactive' (acts on measured utilisation) or 'proactive' (also acts on forecasts and on user intents,
    # before the load arrives).
    te_mode: Literal["static", "ecmp", "reactive", "proactive"] = "proactive"
    te_threshold: float = Field(0.8, gt=0, le=1, description="Utilisation above which a link is relieved")
    te_k_paths: int = Field(3, ge=1, le=16)
    te_holddown_s: float = Field(5.0, ge=0, description="A moved pair stays put at least this long")

    # Compute allocation: users reach the edge LLM service at one virtual IP; each cell is steered to an MEC node.
    edge_vip: str = "10.0.0.200"
    edge_vip_mac: str = "02:4e:47:00:00:c8"
    edge_port: int = Field(8100, ge=1, le=65535, description="TCP port of the edge agents' HTTP service")
    allocation_interval_s: float = Field(0.5, gt=0, le=5)
    heartbeat_interval_s: float = Field(0.5, gt=0, le=10, description="Agents beat this often; 3 missed = gone")

    # Where PID files, logs and caches live.
    run_dir: Path = Path("/tmp/netgpt/run")
    cache_dir: Path = Field(default_factory=_default_cache)

    # How long a component may take to become healthy before `up` gives up and rolls back.
    start_timeout_s: float = Field(20.0, gt=0)

    # Language models (models/): which bases to use ("edge-default", "cloud-default", a model folder or a hub id), and
    # where the cloud LLM is. Any OpenAI-compatible endpoint (vLLM, Ollama) can replace `netgpt cloud serve`.
    # The edge LM is SmolLM2-135M-Instruct (the shipped "cloud-default" weights) with its `complete` adapter (issue 12:
    # a pretrained LM, not the 14 M GPT-2 "edge-default" pre-trained here on templates, which stays available).
    edge_base: str = "cloud-default"
    cloud_base: str = "cloud-default"
    # Wall-clock cap of the `complete` adapter's training (`netgpt models train --task complete`, run by `make demo`
    # on a fresh clone): the steps that fit are run (models/lora.LoraTaskConfig.max_minutes).
    complete_train_minutes: float = Field(5.0, gt=0)
    cloud_url: str = "http://127.0.0.1:8000/v1"
    cloud_model: str = "smollm2-135m-instruct"
    # Torch threads for inference and training; unset: netgpt.models.base.configure_threads decides from the model
    # size and the machine's load.
    torch_threads: int | None = Field(None, ge=1)
    # Which backend serves the language models (netgpt.models.backends): llama.cpp on the GGUF of the same weights,
    # or torch (the fp32 reference). Slots: independent llama.cpp contexts serving requests side by side.
    serving_backend: Literal["llamacpp", "torch"] = "llamacpp"
    serving_slots: int = Field(1, ge=1, le=8)
    # Operator intents (intent/): the base of the LM intent reader (SmolLM2-135M, the paper's edge size class), which
    # reader parse_intent asks when the rules read a sentence only in part (a student of 10 of the base's blocks
    # trained on the task, or the whole base with a LoRA adapter: netgpt.intent.lm), and whether it asks one at all.
    # Off: the rules alone.
    intent_base: str = "cloud-default"
    intent_reader: Literal["student", "lora"] = "student"
    intent_lm: bool = True
    # Forecasting: also try the edge LM with its `forecast` adapter (method `edge_lm`) among fit_forecaster's default
    # methods. Off by default: each LM forecast is 1-3 generations (netgpt.edge_agent.forecast.lm).
    forecast_lm: bool = False
    # The forecast quantile TE and allocation provision for (Forecast.quantiles): 0.9 means a load that is exceeded one
    # step in ten. A forecast without that quantile is read at its point values.
    forecast_act_quantile: float = Field(0.9, gt=0, lt=1)
    # The forecast loop `netgpt up` starts (netgpt forecast run): its step, season, horizon and refit interval. The
    # defaults suit an emulation that runs minutes, not days: 10 s steps, a 5-minute season, forecasts 1 minute ahead;
    # history before the first telemetry can come from Keys.FORECAST_HISTORY (a trace-driven warm start).
    forecast_step_s: float = Field(10.0, gt=0)
    forecast_period: int = Field(30, ge=2, description="Steps per season")
    forecast_horizon: int = Field(6, ge=1, le=36)
    forecast_refit_s: float = Field(300.0, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
