"""Shared fixtures: free ports, a real redis-server per test session, and settings pointing at it."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> dict:
    """A real redis-server on a free port, stopped by PID at the end. Skips (with the reason) if it is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed: run scripts/setup.sh")
    d: Path = tmp_path_factory.mktemp("redis")
    port, pidfile = free_port(), d / "redis.pid"
    subprocess.run(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
                    "--daemonize", "yes", "--pidfile", str(pidfile), "--dir", str(d)], check=True)
    import redis

    client = redis.Redis(port=port, decode_responses=True)
    for _ in range(100):
        try:
            if client.ping():
                break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield {"host": "127.0.0.1", "port": port}
    try:
        os.kill(int(pidfile.read_text()), 15)
    except (OSError, ValueError):
        pass


@pytest.fixture
def redis_client(redis_server):
    import redis

    client = redis.Redis(host=redis_server["host"], port=redis_server["port"], decode_responses=True)
    client.flushdb()
    return client
