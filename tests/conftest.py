"""Shared fixtures: free ports, a real redis-server per test session, and settings pointing at it."""
from __future__ import annotations

import os
import shutil

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from netgpt.stack.services import free_port  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> dict:
    """A real redis-server on a free port, stopped by PID at the end. Skips (with the reason) if it is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: run scripts/setup.sh")
    from netgpt.stack import services
    from netgpt.core.settings import Settings

    server = services.Redis(Settings(run_dir=tmp_path_factory.mktemp("redis"), redis_port=free_port()))
    server.start()
    services.wait_for(server.healthy, 10, "redis-server to answer")
    yield {"host": "127.0.0.1", "port": server.s.redis_port}
    server.stop()


@pytest.fixture
def redis_client(redis_server):
    import redis

    client = redis.Redis(host=redis_server["host"], port=redis_server["port"], decode_responses=True)
    client.flushdb()
    return client
