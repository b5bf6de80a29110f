"""Integration fixtures: the real stack (redis-server, Open vSwitch, ryu-manager with our apps) on free ports."""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import pytest

from netgpt.stack import services
from netgpt.core.settings import Settings
from netgpt.stack.services import free_port


@contextmanager
def running_stack(tmp_path_factory, **overrides) -> Iterator[Settings]:
    """The stack on free ports with these settings; what was started is stopped by PID, and checked gone."""
    from netgpt.stack.network import require_root

    reason = require_root()
    if reason:
        print(f"SKIPPED integration test: {reason}")
        pytest.skip(reason)
    s = Settings(**{"run_dir": tmp_path_factory.mktemp("run"), "redis_port": free_port(), "ofp_port": free_port(),
                    "ryu_api_port": free_port(), "operator_api_port": free_port(), "stats_interval_s": 1.0,
                    **overrides})
    started = services.up(s)
    pids = {c.name: c.pid() for c in services.components(s)}
    try:
        yield s
    finally:
        services.down_started(s, started)
    for name in started:
        pid = pids.get(name)
        assert pid is None or not os.path.exists(f"/proc/{pid}"), f"{name} (pid {pid}) still running after down"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Start the stack for one test module; stop by PID what was started; yields the Settings it runs with."""
    with running_stack(tmp_path_factory) as s:
        yield s
