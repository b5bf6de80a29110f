"""Integration fixtures: the real stack (redis-server, Open vSwitch, ryu-manager with our apps) on free ports."""
from __future__ import annotations

import os

import pytest

from netgpt.stack import services
from netgpt.core.settings import Settings
from tests.conftest import free_port


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Start the stack for one test module; stop by PID what was started; yields the Settings it runs with."""
    from netgpt.stack.network import require_root

    reason = require_root()
    if reason:
        print(f"SKIPPED integration test: {reason}")
        pytest.skip(reason)
    s = Settings(run_dir=tmp_path_factory.mktemp("run"), redis_port=free_port(), ofp_port=free_port(),
                 ryu_api_port=free_port(), operator_api_port=free_port(), stats_interval_s=1.0)
    started = services.up(s)
    pids = {c.name: c.pid() for c in services.components(s)}
    yield s
    services.down_started(s, started)
    for name in started:
        pid = pids.get(name)
        assert pid is None or not os.path.exists(f"/proc/{pid}"), f"{name} (pid {pid}) still running after down"
