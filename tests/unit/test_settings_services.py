import os
import socket
import subprocess
import sys
from pathlib import Path

from netgpt.stack import services
from netgpt.core.settings import Settings

from netgpt.stack.services import free_port

NETGPT = [sys.executable, "-m", "netgpt.cli"]


def test_environment_overrides_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("NETGPT_REDIS_PORT", "17001")
    monkeypatch.setenv("NETGPT_RUN_DIR", str(tmp_path))
    s = Settings()
    assert s.redis_port == 17001 and s.run_dir == tmp_path


def test_read_pid_refuses_a_pid_that_belongs_to_another_program(tmp_path):
    pidfile = tmp_path / "x.pid"
    pidfile.write_text(str(os.getpid()))  # this pytest process, not a redis-server
    assert services.read_pid(pidfile, "redis-server") is None
    assert services.read_pid(pidfile, "python") == os.getpid()
    pidfile.write_text("not a pid")
    assert services.read_pid(pidfile, "python") is None


def _env(tmp_path: Path, **ports) -> dict:
    env = dict(os.environ, NETGPT_RUN_DIR=str(tmp_path / "run"))
    for key, value in ports.items():
        env[f"NETGPT_{key.upper()}"] = str(value)
    return env


def test_up_with_a_taken_port_names_it_and_starts_nothing(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        env = _env(tmp_path, redis_port=free_port(), ofp_port=taken, ryu_api_port=free_port())
        run = subprocess.run([*NETGPT, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    err = run.stderr.strip()
    assert len(err.splitlines()) == 1 and f"port {taken}" in err and "Traceback" not in run.stderr
    # Nothing half-started: no PID files, and the free redis port is still free.
    assert not list((tmp_path / "run").glob("*.pid"))
    assert services.port_free("127.0.0.1", int(env["NETGPT_REDIS_PORT"]))


def test_status_names_the_components_that_are_down(tmp_path):
    env = _env(tmp_path, redis_port=free_port(), ofp_port=free_port(), ryu_api_port=free_port())
    run = subprocess.run([*NETGPT, "status"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("not running:") and "redis" in last and "ryu" in last


def test_mininet_without_root_gives_a_reason(monkeypatch):
    from netgpt.stack import network

    monkeypatch.setattr(network.os, "geteuid", lambda: 1000)
    assert "needs root" in network.require_root()
