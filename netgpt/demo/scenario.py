"""The demo's scenario on the MEC topology: a time-compressed day on real parts.

One 5-minute step of the real traces (bench/data) lasts STEP_S of demo time, so a minute of demo is five hours of
the day. Meanwhile:
- background UDP from the cloud host replays the UK backbone's morning rise towards u1 and a WC98 match-day flash
  crowd towards u3 (netgpt.stack.workload.TraceReplay);
- the users of the four cells send prompts at a rate that follows the WC98 daily profile (PromptReplay, "edge-only":
  the MEC agents answer and infer a user intent per prompt), drawn from DEMO_PROMPTS in an order fixed by the seed;
- the forecast loop that `netgpt up` started forecasts every port and cell from the first step: the three days of
  trace before each replay are its warm-start history (Keys.FORECAST_HISTORY), at the replay's scale;
- a sample of prompts goes the full NetGPT way (edge completes, cloud answers);
- the UK replay's morning rise runs agg1's thin uplink (core1-agg1, mininet_topos/mec.py) past TE's threshold, and
  the proactive TE moves the cloud -> u1 pair onto the aggregation ring (core1 -> agg2 -> agg1);
- the operator, through `netgpt intent`, blocks u1 -> u3 (ping measures it), caps cell 2's video at 5 Mbit/s (iperf
  measures it), asks two questions, withdraws the block, and once TE has moved a flow (or late in the day) takes
  agg1's uplink out of service (a probe across it measures it) (netgpt.demo.operator);
- mid-run the agent of the MEC node serving the most cells (mec1, unless allocation moved its cells) stops, its
  cells fail over to the other node, and it comes back.
"""
from __future__ import annotations

import json
import random
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from netgpt.core import bus
from netgpt.core.messages import FlowAction
from netgpt.core.settings import Settings
from netgpt.demo.edge import AGENTS, EdgeServices, allocations
from netgpt.demo.operator import Operator
from netgpt.demo.report_data import REPLAY_FILE, port_names
from netgpt.stack.network import NetworkError
from netgpt.stack.services import wait_for
from netgpt.stack.workload import PromptReplay, TraceReplay, load_trace

STEP_S, PERIOD = 1.0, 288  # demo seconds per 5-minute trace step; trace steps per day (the forecasts' season)
HISTORY_STEPS = 3 * PERIOD
# (trace, first step, sender, receiver, UDP port, the switches it crosses: their ports toward the next one are
# forecast from the warm-start history)
BACKGROUND = [("uk", 7440, "cloud", "u1", 5601, ("core1", "agg1", "acc1")),
              ("wc98", 13128, "cloud", "u3", 5602, ("core1", "agg2", "acc3"))]
BACKGROUND_PEAK_BPS = 30e6  # userspace OVS forwards every packet on the 2 shared cores: kept light
WC98_DAY = 1231  # the WC98 site's evening rise: the prompts' daily profile
# Per cell, at the window's busiest step. Each prompt costs an edge LM answer (48 tokens: 2-5 s of a core on the shared
# machine), and a sender that waits 10 s gives up and asks again (netgpt.stack.workload) while the agent still computes
# the abandoned attempt: at 0.12 the agents fell behind and every attempt was computed, 69 user intents inferred for
# 29 prompts, 0 of 20 answered (2026-12-02 18:14 run); the load must stay under what the agents answer within 10 s.
PROMPT_PEAK_RPS = 0.06
USERS = {"u1": "c1", "u2": "c2", "u3": "c3", "u4": "c4"}
# mec1's announced capacity: its two cells' forecast peak (2 x PROMPT_PEAK_RPS) is over it, one cell's is not, so
# allocation sheds a cell before the node is overloaded
CAPACITY_RPS = {"mec1": 1.5 * PROMPT_PEAK_RPS, "mec2": 2.0}
# The demo's own prompts (not the collaboration bench's held-out or dev sets): what a visitor asks on the move.
DEMO_PROMPTS = [
    "Where can I get a good coffee near here?", "Is there a museum worth an hour this afternoon?",
    "Any good place for dinner tonight?", "What should I see before my train leaves?",
    "Where could I take the kids for a walk?", "Is it too late to visit the old town?",
    "Recommend a bakery for breakfast tomorrow", "Where do locals go for a drink after work?",
    "Is there a quiet park to sit and read?", "What is worth seeing if it rains?",
    "Where can I buy a souvenir that is made here?", "Can I still get lunch somewhere at this hour?",
]


@dataclass
class Plan:
    steps: int
    seed: int

    @property
    def seconds(self) -> float:
        return self.steps * STEP_S

    def prompts(self) -> list[str]:
        texts = list(DEMO_PROMPTS)
        random.Random(self.seed).shuffle(texts)
        return texts


@dataclass
class Outcome:
    failed_node: str | None = None  # the MEC node whose agent the demo stopped
    failover_s: float | None = None
    restored: bool = False
    errors: list[str] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # what the demo did, when: lines on the report's plots


def _warm_start(r, replays: list[TraceReplay], prompts: PromptReplay, end_ts: float) -> None:
    """Each background path's ports toward the next switch (from the controller's topology view) and each cell get
    the history before their replay."""
    toward = {name: port for port, name in port_names(r)[0].items()}  # 'core1->agg1' -> (dpid, port)
    history = {}
    for rep, (*_, path) in zip(replays, BACKGROUND):
        for a, b in zip(path, path[1:]):
            dpid, port = toward[f"{a}->{b}"]
            history[f"port:{dpid}:{port}:tx_bps"] = rep.history_entry(HISTORY_STEPS, end_ts)
    cells = prompts.history_entry(HISTORY_STEPS, end_ts)
    history.update({f"cell:{cell}:requests_rps": cells for cell in USERS.values()})
    r.hset(bus.Keys.FORECAST_HISTORY, mapping=history)


def drop_stale_history(r, before_ts: float) -> list[str]:
    """Remove warm-start histories that ended before `before_ts` (an earlier run's: Redis keeps them, and the
    forecast loop would otherwise start this run's targets from them); returns their names."""
    stale = [name for name, raw in r.hgetall(bus.Keys.FORECAST_HISTORY).items()
             if _end_ts(raw) is None or _end_ts(raw) < before_ts]
    if stale:
        r.hdel(bus.Keys.FORECAST_HISTORY, *stale)
    return stale


def _end_ts(raw: str) -> float | None:
    try:
        return float(json.loads(raw)["end_ts"])
    except (ValueError, KeyError, TypeError):
        return None


def _sample(edge: EdgeServices, users: list[str], texts: list[str], log, compare: tuple[str, ...] = ()) -> None:
    """One prompt from each user the NetGPT way; the users in `compare` send it cloud-only too (the paper's
    baseline, for the report's comparison)."""
    for user in users:
        text = texts.pop(0) if texts else DEMO_PROMPTS[0]
        for mode in ("netgpt", "cloud-only") if user in compare else ("netgpt",):
            rec = edge.ask(user, USERS[user], text, mode)
            resp = rec["response"]
            if rec["status"] == 200:
                log(f"  {user} ({USERS[user]}, {mode}) answered by {resp['answered_by']} via "
                    f"{resp.get('source', '?')} in {resp['total_ms']:.0f} ms")
            else:
                log(f"  {user} ({USERS[user]}, {mode}): no answer ({rec['status']}: "
                    f"{str(resp.get('error', resp))[:120]})")


def _failover(edge: EdgeServices, r, log, out: Outcome) -> None:
    """Stop the agent of the MEC node that serves the most cells now, mec1 on a tie (allocation may have moved
    mec1's cells to mec2 on their predicted demand: a node serving none shows no failover), and time how long until no
    cell is allocated to it any more."""
    now = allocations(r)
    node = max(AGENTS, key=lambda n: (sum(v == n for v in now.values()), n == "mec1"))
    served = [c for c, n in now.items() if n == node]
    out.failed_node = node
    log(f"  {node}'s agent stops; it serves {', '.join(served) or 'no cell'} now")
    edge.stop_agent(node)
    out.marks[f"{node} stopped"] = stopped = time.time()
    if not served:
        return  # nothing to fail over (the report's table says where the cells were)
    wait_for(lambda: not any(n == node for n in allocations(r).values()), 15, f"{node}'s cells to move")
    out.failover_s = time.time() - stopped
    moved = allocations(r)
    where = ", ".join(f"{c} to {moved.get(c, 'none')}" for c in served)
    log(f"  {where} in {out.failover_s:.1f} s")


def _restore(edge: EdgeServices, log, out: Outcome) -> None:
    node = out.failed_node or "mec1"
    log(f"  {node}'s agent starts again")
    edge.start_agent(node)
    try:
        edge.wait_agent(node, 120)
        out.restored = True
        out.marks[f"{node} back"] = time.time()
        log(f"  {node} is back")
    except NetworkError as exc:  # the run goes on without it; the report shows it
        out.errors.append(str(exc))


def _save_replay(procs, run_dir: Path, timeout_s: float) -> None:
    """The trace-shaped senders' lines ('send_time status source retries') as JSON lines in the run folder."""
    with open(run_dir / REPLAY_FILE, "a") as f:
        for (user, cell), proc in zip(USERS.items(), procs):
            try:
                stdout, _ = proc.communicate(timeout=timeout_s)
            except Exception:  # still sending (the run was cut short): stop it, keep what it printed
                proc.kill()
                stdout, _ = proc.communicate()
            for line in (stdout or "").splitlines():
                t, status, source, retries = line.split(" ")  # print()'s separator: an empty source stays a field
                f.write(json.dumps({"user": user, "cell": cell, "t": float(t), "status": int(status),
                                    "source": source, "retries": int(retries)}) + "\n")


def _first_te_move(r, since_ms: int) -> float | None:
    """When TE first moved a pair since `since_ms` (its flow actions on the audit stream), or None."""
    for _id, msg in bus.read_range(r, bus.Streams.AUDIT, start=f"{since_ms}-0"):
        if isinstance(msg, FlowAction) and msg.source == "controller:te":
            return msg.ts
    return None


def _avoid_after_te(r, op: Operator, since_ms: int, latest: float, log) -> None:
    """The operator drains agg1's uplink once TE has relieved it (the drain would leave TE nothing to move), or at
    `latest` if TE has not moved anything by then."""
    moved = _first_te_move(r, since_ms)
    while moved is None and time.time() < latest:  # the day may have run late: then it is asked once
        time.sleep(1.0)
        moved = _first_te_move(r, since_ms)
    log(f"  TE moved a flow {moved - since_ms / 1000:.0f} s into the day; the operator drains agg1's uplink"
        if moved is not None else "  no TE move yet; the operator drains agg1's uplink anyway")
    op.avoid()


def run_scenario(net, s: Settings, edge: EdgeServices, plan: Plan, log: Callable[[str], None],
                 tick: Callable[[float], None] = lambda done: None) -> Outcome:
    """Run the timeline; `tick(seconds done)` follows it (a progress bar). Every process started here is stopped
    before this returns, also on an exception."""
    r, out = bus.connect(s), Outcome()
    replays = [TraceReplay(load_trace(name), start, plan.steps, STEP_S, BACKGROUND_PEAK_BPS, port=port)
               for name, start, _src, _dst, port, _path in BACKGROUND]
    prompts = PromptReplay(load_trace("wc98"), WC98_DAY, plan.steps, STEP_S, PROMPT_PEAK_RPS)
    t0 = time.time() + 1.0
    out.marks["day starts"] = t0
    _warm_start(r, replays, prompts, t0)
    texts = plan.prompts()
    # the moments of the timeline, as fractions of the replayed window, and what happens then
    op = Operator(net, s, edge.run_dir, log)
    op.clear_leftovers()
    events = [(0.03, lambda: _sample(edge, list(USERS), texts, log, compare=("u1", "u3"))),
              (0.15, op.block), (0.22, op.cap), (0.28, op.ask), (0.34, op.withdraw_block),
              (0.45, lambda: _failover(edge, r, log, out)),
              (0.50, lambda: _sample(edge, ["u1"], texts, log)),
              (0.62, lambda: _restore(edge, log, out)),
              (0.70, lambda: _avoid_after_te(r, op, int(t0 * 1000), t0 + 0.80 * plan.seconds, log)),
              (0.85, lambda: _sample(edge, ["u1", "u2"], texts, log))]
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(0.5):
            tick(time.time() - t0)

    ticker = threading.Thread(target=follow, daemon=True)
    senders: list = []
    cut = False  # interrupted (Ctrl-C): the senders are stopped at once, not waited for
    with ExitStack() as stack:
        for rep, (_, _, src, dst, _, _) in zip(replays, BACKGROUND):
            stack.enter_context(rep.run(net, src, dst))
        try:
            senders = prompts.start_users(net, USERS, f"http://{s.edge_vip}:{s.edge_port}/v1/prompt", texts, t0)
            ticker.start()
            for at, event in events:
                time.sleep(max(0.0, t0 + at * plan.seconds - time.time()))
                try:
                    event()
                except Exception as exc:  # one step failing (a CLI timeout, a host command) does not end the day
                    out.errors.append(f"{type(exc).__name__}: {exc}")
                    log(f"  step failed: {type(exc).__name__}: {exc}")
            time.sleep(max(0.0, t0 + plan.seconds - time.time()))
        except BaseException:
            cut = True
            raise
        finally:
            stop.set()
            _save_replay(senders, edge.run_dir,
                         timeout_s=0 if cut else max(0.0, t0 + plan.seconds - time.time()) + 30)
            try:
                op.withdraw_own()
            except Exception as exc:  # the report shows what stayed active; the next run clears it first
                out.errors.append(f"the demo's intents were not all withdrawn: {exc}")
    return out
