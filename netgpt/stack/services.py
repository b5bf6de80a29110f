"""Lifecycle of the stack's services: redis-server, Open vSwitch (userspace datapath) and ryu-manager.

Rules: every process we start has a PID file under Settings.run_dir and is stopped by that PID (after checking the PID
still belongs to the program we started); nothing is ever killed by name. `up` checks every port before starting
anything, and rolls back what it started if a later component fails its health check. Open vSwitch is a machine-wide
service: if it was already running we use it and leave it running.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import redis

from netgpt.core import bus
from netgpt.core.settings import Settings

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
Log = Callable[[str], None]


class ServiceError(RuntimeError):
    """A one-line, user-facing reason why a service could not be started."""


@dataclass
class ComponentStatus:
    name: str
    up: bool
    pid: int | None
    detail: str


# --- small process and socket helpers ----------------------------------------------------------------------------------


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(pidfile: Path, must_contain: str) -> int | None:
    """The PID in `pidfile` if that process is alive and its command line contains `must_contain` (guards PID reuse)."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if must_contain in cmdline else None


def stop_pid(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: the one process (and its own process group if it leads one)."""
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                # Reap it if it is our child (ryu-manager is), so no zombie is left behind.
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.05)


def stop_child(proc: subprocess.Popen, timeout_s: float = 10.0) -> None:
    """Stop a process we started with Popen: SIGTERM, wait, then SIGKILL; always reaped."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def wait_for(cond: Callable[[], object], timeout_s: float, what: str, interval: float = 0.2):
    """Poll until cond() is truthy and return that value; TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _stop_by_pidfile(self) -> None:
    """stop() of a service that has `pid()` and `pidfile`."""
    pid = self.pid()
    if pid:
        stop_pid(pid)
    self.pidfile.unlink(missing_ok=True)


# --- redis-server -------------------------------------------------------------------------------------------------------


class Redis:
    name = "redis"

    def __init__(self, s: Settings):
        self.s = s
        self.pidfile = s.run_dir / "redis.pid"
        self.socket = s.run_dir / "redis.sock"  # for agents on Mininet hosts (see Settings.redis_socket)

    def pid(self) -> int | None:
        return read_pid(self.pidfile, "redis-server")

    def ports(self) -> list[tuple[str, int, str]]:
        return [(self.s.redis_host, self.s.redis_port, "redis_port")]

    def healthy(self) -> bool:
        try:  # over TCP, what this class starts (a client setting may prefer the UNIX socket)
            return bool(bus.connect(self.s.model_copy(update={"redis_socket": None}), timeout_s=1).ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        data = self.s.run_dir / "redis-data"
        data.mkdir(parents=True, exist_ok=True)
        # Append-only file so that accepted messages survive a Redis restart (fsync once a second).
        cmd = ["redis-server", "--bind", self.s.redis_host, "--port", str(self.s.redis_port), "--daemonize", "yes",
               "--pidfile", str(self.pidfile), "--logfile", str(self.s.run_dir / "redis.log"), "--dir", str(data),
               "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
               "--unixsocket", str(self.socket), "--unixsocketperm", "700"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if run.returncode != 0:
            raise ServiceError(f"redis-server failed to start: {(run.stderr or run.stdout).strip()[:200]}")

    stop = _stop_by_pidfile

    def detail(self) -> str:
        return f"{self.s.redis_host}:{self.s.redis_port}, unix socket {self.socket}"


# --- Open vSwitch -------------------------------------------------------------------------------------------------------


class OpenVSwitch:
    """ovsdb-server + ovs-vswitchd. No kernel datapath here: bridges use datapath_type=netdev (userspace)."""

    name = "openvswitch"

    def __init__(self, s: Settings):
        self.s = s
        self.marker = s.run_dir / "ovs.started-by-netgpt"

    def pid(self) -> int | None:
        return read_pid(Path("/var/run/openvswitch/ovs-vswitchd.pid"), "ovs-vswitchd")

    def ports(self) -> list[tuple[str, int, str]]:
        return []

    def healthy(self) -> bool:
        try:
            return subprocess.run(["ovs-vsctl", "--timeout=2", "show"], capture_output=True, timeout=5).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False

    def start(self) -> None:
        if not Path(OVS_CTL).exists():
            raise ServiceError(f"Open vSwitch is not installed ({OVS_CTL} missing): run scripts/setup.sh")
        run = subprocess.run([OVS_CTL, "start", "--system-id=random"], capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise ServiceError(f"ovs-ctl start failed: {(run.stderr or run.stdout).strip()[-200:]}")
        self.marker.write_text(str(time.time()))

    def stop(self) -> None:
        # Only if we started it: other users of the machine's OVS are left alone. ovs-ctl stops by its PID files.
        if self.marker.exists():
            subprocess.run([OVS_CTL, "stop"], capture_output=True, timeout=60)
            self.marker.unlink(missing_ok=True)

    def detail(self) -> str:
        return "userspace datapath" + (" (started by netgpt)" if self.marker.exists() else "")


# --- our own child processes: ryu-manager and the operator API ----------------------------------------------------


def settings_env(s: Settings) -> dict[str, str]:
    """The environment of a child process that must read the same settings: every field as a NETGPT_* variable."""
    env = dict(os.environ)
    for key, value in s.model_dump(mode="json").items():
        if value is None:
            env.pop(f"NETGPT_{key.upper()}", None)
        else:
            env[f"NETGPT_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


def http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


class ChildService:
    """A process of ours: started detached with the same settings, its PID in <run_dir>/<name>.pid (checked against
    `marker` in its command line), its output in <run_dir>/<name>.log, stopped by PID."""

    name = marker = ""

    def __init__(self, s: Settings):
        self.s = s
        self.pidfile = s.run_dir / f"{self.name}.pid"
        self.logfile = s.run_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        return read_pid(self.pidfile, self.marker)

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with open(self.logfile, "ab") as log:
            proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=settings_env(self.s), start_new_session=True)
        self.pidfile.write_text(str(proc.pid))

    stop = _stop_by_pidfile


class Ryu(ChildService):
    name = "ryu"
    marker = "netgpt.controller.ryu_launcher"

    def ports(self) -> list[tuple[str, int, str]]:
        return [("127.0.0.1", self.s.ofp_port, "ofp_port"), ("127.0.0.1", self.s.ryu_api_port, "ryu_api_port")]

    def healthy(self) -> bool:
        if self.pid() is None or not port_accepts("127.0.0.1", self.s.ofp_port):
            return False
        return "netgpt.controller.rest_api" not in self.s.ryu_apps or \
            http_ok(f"http://127.0.0.1:{self.s.ryu_api_port}/netgpt/health")

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.marker, "--ofp-tcp-listen-port", str(self.s.ofp_port),
                "--ofp-listen-host", "127.0.0.1", "--wsapi-host", "127.0.0.1", "--wsapi-port",
                str(self.s.ryu_api_port), "--observe-links", *self.s.ryu_apps]

    def detail(self) -> str:
        return (f"OpenFlow 127.0.0.1:{self.s.ofp_port}, API http://127.0.0.1:{self.s.ryu_api_port}/netgpt, "
                f"apps {', '.join(a.split('.')[-1] for a in self.s.ryu_apps)}")


class OperatorApi(ChildService):
    """`netgpt intent serve`: the operator REST API (netgpt.intent.api), bearer token in <run_dir>/operator-token."""

    name = "operator-api"
    marker = "intent serve"

    def ports(self) -> list[tuple[str, int, str]]:
        return [("127.0.0.1", self.s.operator_api_port, "operator_api_port")]

    def healthy(self) -> bool:
        return self.pid() is not None and http_ok(f"http://127.0.0.1:{self.s.operator_api_port}/openapi.json")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "netgpt.cli", "intent", "serve", "--host", "127.0.0.1", "--port",
                str(self.s.operator_api_port)]

    def detail(self) -> str:
        return f"http://127.0.0.1:{self.s.operator_api_port}/v1 (token in {self.s.run_dir / 'operator-token'})"


class ForecastLoopService(ChildService):
    """`netgpt forecast run` with the settings' step, season and horizon: telemetry and inferred user intents in,
    Forecast messages out (netgpt.edge_agent.forecast.loop). Healthy while its status key in Redis is fresh."""

    name = "forecast"
    marker = "forecast run"

    def ports(self) -> list[tuple[str, int, str]]:
        return []

    def _status(self) -> dict | None:
        try:
            raw = bus.connect(self.s, timeout_s=1.0).get(bus.Keys.FORECAST_LOOP)
        except Exception:  # Redis down or not started yet: not healthy
            return None
        return json.loads(raw) if raw else None

    def healthy(self) -> bool:
        return self.pid() is not None and self._status() is not None

    def command(self) -> list[str]:
        s = self.s
        return [sys.executable, "-m", "netgpt.cli", "forecast", "run", "--step-s", str(s.forecast_step_s),
                "--period", str(s.forecast_period), "--horizon", str(s.forecast_horizon), "--refit-every-s",
                str(s.forecast_refit_s)]

    def detail(self) -> str:
        st = self._status() or {}
        return (f"step {self.s.forecast_step_s:g} s, horizon {self.s.forecast_horizon} steps; "
                f"{st.get('targets', 0)} targets, {st.get('published', 0)} forecasts published")


def components(s: Settings) -> list:
    return [Redis(s), OpenVSwitch(s), Ryu(s), OperatorApi(s), ForecastLoopService(s)]


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


# --- the three verbs ----------------------------------------------------------------------------------------------------


def up(s: Settings, log: Log = lambda m: None) -> list[str]:
    """Start what is not running. All ports are checked first; on any failure, what this call started is stopped."""
    s.run_dir.mkdir(parents=True, exist_ok=True)
    todo = [c for c in components(s) if not c.healthy()]
    for c in todo:
        for host, port, setting in c.ports():
            if not port_free(host, port):
                raise ServiceError(f"port {port} ({c.name}) is already in use by another process; nothing was started "
                                   f"(choose another with NETGPT_{setting.upper()})")
    started = []
    try:
        for c in todo:
            log(f"starting {c.name} ...")
            c.start()
            started.append(c)
            try:
                wait_for(c.healthy, s.start_timeout_s, f"{c.name} to become healthy", interval=0.1)
            except TimeoutError:
                tail = _log_tail(getattr(c, "logfile", s.run_dir / f"{c.name}.log"))
                raise ServiceError(f"{c.name} did not become healthy within {s.start_timeout_s:.0f} s"
                                   + (f": {tail}" if tail else "")) from None
    except BaseException:
        for c in reversed(started):
            c.stop()
        raise
    return [c.name for c in started]


def down(s: Settings, log: Log = lambda m: None) -> list[str]:
    stopped = []
    for c in reversed(components(s)):
        if c.pid() is not None and (c.name != "openvswitch" or c.marker.exists()):
            log(f"stopping {c.name} ...")
            c.stop()
            stopped.append(c.name)
    return stopped


def status(s: Settings) -> list[ComponentStatus]:
    return [ComponentStatus(c.name, c.healthy(), c.pid(), c.detail()) for c in components(s)]


def down_started(s: Settings, names: list[str]) -> None:
    """Stop only the named components (those one `up` call started), in reverse start order."""
    for c in reversed(components(s)):
        if c.name in names:
            c.stop()
