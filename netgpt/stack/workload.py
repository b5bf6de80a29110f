"""Background traffic with the shape of a real trace, time-compressed, on an emulated network.

    trace = load_trace("uk")                                    # bench/data: 5-minute steps of a real backbone
    replay = TraceReplay(trace, start=7432, steps=60, step_s=1.0, peak_bps=20e6)
    with replay.run(net, "srv1", "usr1"):                       # UDP iperf, one segment per trace step
        ...
    replay.history_entry(288 * 3, end_ts)                       # the trace before `start`: a forecast warm start

One trace step (5 minutes of the real day) lasts `step_s` seconds of emulation, and the replayed window is scaled so
that its highest step sends `peak_bps`. The sender is iperf (UDP, 1400-byte datagrams), started once per step at that
step's rate from the source host, by PID; nothing here uses Mininet's iperf helpers. The traces and their provenance
are in bench/data (README there).
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

TRACES_DIR = Path(__file__).resolve().parents[2] / "bench" / "data"
TRACES = {"uk": ("isp_uk_academic_5min.csv", "traffic"), "wc98": ("wc98_requests_5min.csv", "requests")}
TRACE_STEP_S = 300.0  # both traces: one value per 5 minutes
MIN_RATE_BPS = 10_000.0  # iperf is not started for a step below this


def load_trace(name: str) -> np.ndarray:
    """A shared real trace by name ('uk': UK academic backbone traffic; 'wc98': World Cup 98 web requests)."""
    if name not in TRACES:
        raise ValueError(f"unknown trace {name!r}; known: {', '.join(TRACES)}")
    path, column = TRACES[name]
    with open(TRACES_DIR / path, newline="") as f:
        return np.array([float(row[column]) for row in csv.DictReader(f)])


@dataclass
class TraceReplay:
    trace: np.ndarray
    start: int  # index of the first replayed trace step
    steps: int
    step_s: float  # emulation seconds per trace step
    peak_bps: float  # what the replayed window's highest step sends
    port: int = 5601
    sent: list[tuple[float, float]] = field(default_factory=list)  # (start time, bit/s) of each segment begun

    def __post_init__(self) -> None:
        if not 0 <= self.start or self.start + self.steps > len(self.trace) or self.steps < 1:
            raise ValueError(f"steps {self.start}..{self.start + self.steps} are not inside the trace "
                             f"({len(self.trace)} steps)")
        if self.step_s <= 0 or self.peak_bps <= 0:
            raise ValueError("step_s and peak_bps must be > 0")
        self.scale = self.peak_bps / max(self.trace[self.start:self.start + self.steps].max(), 1e-12)

    def rates_bps(self) -> np.ndarray:
        """The bit/s of each replayed step."""
        return self.trace[self.start:self.start + self.steps] * self.scale

    def history(self, steps: int) -> np.ndarray:
        """The `steps` trace steps before the replay, at the replay's scale: what the link carried before."""
        if steps > self.start:
            raise ValueError(f"the trace has {self.start} steps before the replay, not {steps}")
        return self.trace[self.start - steps:self.start] * self.scale

    def history_entry(self, steps: int, end_ts: float) -> str:
        """The JSON of a netgpt:forecast_history entry (netgpt.edge_agent.forecast.loop): history up to end_ts."""
        return json.dumps({"step_s": self.step_s, "end_ts": end_ts, "values": self.history(steps).tolist()})

    @contextmanager
    def run(self, net, src: str, dst: str) -> Iterator["TraceReplay"]:
        """Replay from host `src` to host `dst` in the background; leaving the block stops it and its processes."""
        server = net.get(dst).popen(["iperf", "-s", "-u", "-p", str(self.port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        stop = threading.Event()
        client: list[subprocess.Popen] = []
        t0 = time.time() + 0.3  # the server listens by then

        def send() -> None:
            for i, bps in enumerate(self.rates_bps()):
                if stop.wait(max(0.0, t0 + i * self.step_s - time.time())):
                    return
                self.sent.append((time.time(), float(bps)))
                if bps < MIN_RATE_BPS:
                    continue
                # --no-udp-fin: iperf 2.1.8's UDP server acks only its first client's final datagram, so without it
                # every later segment waited 2 s for an ack and the link saw one second of traffic in three.
                proc = net.get(src).popen(
                    ["iperf", "-c", net.get(dst).IP(), "-u", "-p", str(self.port), "-b", f"{bps / 1e6:.3f}M",
                     "-l", "1400", "-t", f"{self.step_s:g}", "--no-udp-fin"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                client[:] = [proc]
                try:
                    proc.wait(timeout=self.step_s + 5)
                except subprocess.TimeoutExpired:
                    proc.kill()

        sender = threading.Thread(target=send, name=f"replay {src}->{dst}", daemon=True)
        sender.start()
        try:
            yield self
        finally:
            stop.set()
            for proc in client + [server]:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
            sender.join(timeout=self.step_s + 10)

    @property
    def end_ts(self) -> float:
        """When the last segment ends (once the replay has begun)."""
        return (self.sent[0][0] if self.sent else time.time()) + self.steps * self.step_s


# One user's prompts, evenly spaced at the scheduled times, each in its own thread (a slow answer does not delay the
# next prompt); prints "send_time status source retries" per prompt. Run with the venv's python inside the user's host.
_SENDER = r"""
import json, sys, threading, time, urllib.request
url, user, cell, times, texts = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), json.loads(sys.argv[5])
def ask(i, t):
    body = json.dumps({"user": user, "cell": cell, "text": texts[i % len(texts)], "mode": "edge-only"}).encode()
    for attempt in range(3):  # a prompt in flight when its cell moves to another node is asked again, as a client would
        req = urllib.request.Request(url, body, {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                line(t, resp.status, json.load(resp).get("source", ""), attempt)
                return
        except Exception as exc:
            error = type(exc).__name__
    line(t, 0, error, 3)
def line(*fields):  # one write per line: print() writes fields and separators apart, and threads would interleave them
    sys.stdout.write(" ".join(map(str, fields)) + "\n")
    sys.stdout.flush()
threads = []
for i, t in enumerate(times):
    time.sleep(max(0.0, t - time.time()))
    threads.append(threading.Thread(target=ask, args=(i, t)))
    threads[-1].start()
for th in threads:
    th.join()
"""


@dataclass
class PromptReplay:
    """Users' prompts at a rate with a trace's shape: step i of the replayed window lasts `step_s` and carries
    trace[start + i] * scale prompts per second in each cell, the window's highest step `peak_rps`."""

    trace: np.ndarray
    start: int
    steps: int
    step_s: float
    peak_rps: float

    def __post_init__(self) -> None:
        if not 0 <= self.start or self.start + self.steps > len(self.trace) or self.steps < 1:
            raise ValueError(f"steps {self.start}..{self.start + self.steps} are not inside the trace")
        self.scale = self.peak_rps / max(self.trace[self.start:self.start + self.steps].max(), 1e-12)

    def rates_rps(self) -> np.ndarray:
        return self.trace[self.start:self.start + self.steps] * self.scale

    def history_entry(self, steps: int, end_ts: float) -> str:
        """The cell's request rate over the `steps` trace steps before the replay: a forecast warm start."""
        values = self.trace[self.start - steps:self.start] * self.scale
        return json.dumps({"step_s": self.step_s, "end_ts": end_ts, "values": values.tolist()})

    def send_times(self, t0: float) -> list[float]:
        """Evenly spaced within each step at its rate (the fraction carries over, so the count per step is exact
        on average)."""
        times, carry = [], 0.0
        for i, rps in enumerate(self.rates_rps()):
            n = rps * self.step_s + carry
            k = int(n)
            carry = n - k
            times += [t0 + (i + (j + 0.5) / k) * self.step_s for j in range(k)] if k else []
        return times

    def rate_at(self, t0: float, ts: float) -> float:
        """The scheduled prompts/s of one cell at time ts (0 outside the replay)."""
        i = int((ts - t0) // self.step_s)
        return float(self.rates_rps()[i]) if 0 <= i < self.steps else 0.0

    def start_users(self, net, users: dict[str, str], url: str, texts: list[str], t0: float) -> list:
        """One sender per user host (name -> cell), all from t0; returns the processes (their stdout: one line per
        prompt). The caller waits for them or stops them."""
        times = json.dumps(self.send_times(t0))
        return [net.get(user).popen([sys.executable, "-c", _SENDER, url, user, cell, times, json.dumps(texts)],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                for user, cell in users.items()]
