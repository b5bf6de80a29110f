"""What the demo's report is made of, read from the run's Redis streams and keys and from the services' own responses
(the edge agents' HTTP answers, which the demo saves as JSON lines in the run folder), and the figures it states.

Nothing here has a default value for a measurement: a series that is missing stays empty, a figure that cannot be
computed is None, and the report says so (netgpt.demo.report).
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from netgpt.core import bus
from netgpt.core.messages import (Allocation, CellStats, FlowAction, Forecast, IntentRecord, IntentState, PortStats,
                                  UserIntent)
from netgpt.intent.store import IntentStore

Port = tuple[int, int]  # (dpid, OpenFlow port)
RESPONSES_FILE = "responses.jsonl"  # one line per prompt the demo asked itself: its request and the agent's response
REPLAY_FILE = "replay.jsonl"  # one line per prompt of the trace-shaped users: send time, status, source, retries
OPERATOR_FILE = "operator.jsonl"  # one line per operator step: the CLI's exit code and output, what was measured


@dataclass
class RunData:
    since_ms: int  # the run's first Redis stream id: entries before it belong to earlier runs
    port_names: dict[Port, str] = field(default_factory=dict)  # inter-switch ports: 'agg1->acc1'
    host_names: dict[str, str] = field(default_factory=dict)  # MAC -> host name (netgpt:hosts)
    capacity_bps: dict[Port, float] = field(default_factory=dict)
    rates: dict[Port, list[tuple[float, float]]] = field(default_factory=dict)  # (ts, tx bit/s) per port
    cell_rates: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # (ts, down bit/s) per cell
    telemetry_entries: int = 0
    forecasts: dict[Port, list[Forecast]] = field(default_factory=dict)
    cell_forecasts: dict[str, list[Forecast]] = field(default_factory=dict)
    te_actions: list[FlowAction] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)
    allocations_counted: tuple[float | None, float | None] = (None, None)  # the times `allocations` lie between
    setup_allocations: int = 0  # allocation changes before every cell was home at the start (not in `allocations`)
    teardown_allocations: int = 0  # allocation changes once the edge agents were being stopped (not in `allocations`)
    user_intents: int = 0
    responses: list[dict] = field(default_factory=list)
    replay: list[dict] = field(default_factory=list)
    intents: list[IntentRecord] = field(default_factory=list)  # the intent store's records submitted in this run
    operator: list[dict] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # the demo's own steps (label -> time), for the plots
    end_ts: float = 0.0

    @property
    def t0(self) -> float:
        return self.since_ms / 1000


def port_names(r) -> tuple[dict[Port, str], dict[Port, float]]:
    """Directed inter-switch links by their sending port, from the controller's topology view, with capacities."""
    view = json.loads(r.get(bus.Keys.TOPOLOGY) or "{}")
    names = {int(dpid): name for name, dpid in r.hgetall(bus.Keys.SWITCHES).items()}
    caps = {k: float(v) * 1e6 for k, v in r.hgetall(bus.Keys.LINK_CAPACITY).items()}
    ports, capacity = {}, {}
    for link in view.get("links", []):
        a, b, port = int(link["src"]), int(link["dst"]), int(link["port"])
        ports[(a, port)] = f"{names.get(a, a)}->{names.get(b, b)}"
        cap = caps.get("-".join(str(x) for x in sorted((a, b))))
        if cap:
            capacity[(a, port)] = cap
    return ports, capacity


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def reached(rec: IntentRecord, state: IntentState) -> bool:
    return any(e.state == state for e in rec.history) or rec.state == state


def collect(r, since_ms: int, run_dir: Path, end_ts: float,
            allocations_counted: tuple[float | None, float | None] = (None, None)) -> RunData:
    """Everything the report needs, read while the run's Redis is still up (the topology view empties when the
    network stops, so call this before tearing it down). Allocation changes outside `allocations_counted` (from when
    every cell was on its home node at the start to when the edge agents began to stop) are counted apart, not as the
    run's: before, the controller moves the cells it restored from an earlier run while the agents start; after, it
    fails cells over as the agents stop."""
    data = RunData(since_ms=since_ms, end_ts=end_ts, allocations_counted=allocations_counted)
    data.port_names, data.capacity_bps = port_names(r)
    data.host_names = {json.loads(h).get("mac"): name for name, h in r.hgetall(bus.Keys.HOSTS).items()}
    start = f"{since_ms}-0"
    first, last = allocations_counted
    for _id, msg in bus.read_range(r, bus.Streams.TELEMETRY, start=start):
        data.telemetry_entries += 1
        if isinstance(msg, PortStats) and (msg.dpid, msg.port_no) in data.port_names and msg.interval_s > 0:
            data.rates.setdefault((msg.dpid, msg.port_no), []).append((msg.ts, msg.tx_bps))
        elif isinstance(msg, CellStats):
            data.cell_rates.setdefault(msg.cell, []).append((msg.ts, msg.downlink_bps))
    for _id, msg in bus.read_range(r, bus.Streams.FORECASTS, start=start):
        if not isinstance(msg, Forecast):
            continue
        t = msg.target
        if t.kind == "port":
            data.forecasts.setdefault((t.dpid, t.port_no), []).append(msg)
        elif t.kind == "cell":
            data.cell_forecasts.setdefault(t.cell, []).append(msg)
    for _id, msg in bus.read_range(r, bus.Streams.AUDIT, start=start):
        if isinstance(msg, FlowAction) and msg.source == "controller:te":
            data.te_actions.append(msg)
        elif isinstance(msg, Allocation):
            if first is not None and msg.ts < first:
                data.setup_allocations += 1
            elif last is not None and msg.ts >= last:
                data.teardown_allocations += 1
            else:
                data.allocations.append(msg)
    data.user_intents = sum(isinstance(m, UserIntent) for _, m in bus.read_range(r, bus.Streams.USER_INTENTS,
                                                                                   start=start))
    data.intents = [x for x in IntentStore(r).all() if x.ts >= data.t0]  # all(): oldest first
    data.responses = _read_jsonl(run_dir / RESPONSES_FILE)
    data.operator = _read_jsonl(run_dir / OPERATOR_FILE)
    data.replay = _read_jsonl(run_dir / REPLAY_FILE)
    return data


def measured_effect(text: str, operator: list[dict]) -> bool | None:
    """Whether the demo's measurements of an intent's effect (its 'measure' steps with a `holds`, the withdrawal's
    own check left out) all found it: None when none was made."""
    found = [x["holds"] for x in operator if x.get("step") == "measure" and x.get("text") == text
             and "holds" in x and not x.get("withdrawal")]
    return all(found) if found else None


def te_moves(actions: list[FlowAction]) -> list[list[FlowAction]]:
    """TE's flow actions grouped into moves: one move rewrites a pair's path on several switches at once, each record
    with the same reason and cause, written in one batch."""
    moves: list[list[FlowAction]] = []
    for a in sorted(actions, key=lambda a: a.ts):
        last = moves[-1][-1] if moves else None
        if last is not None and (last.reason, last.cause_id) == (a.reason, a.cause_id) and a.ts - last.ts < 1.0:
            moves[-1].append(a)
        else:
            moves.append([a])
    return moves


def busy_ports(data: RunData, top: int = 3) -> list[Port]:
    """The ports with the highest median measured rate that also have forecasts: the links worth plotting against
    them (the median: a few seconds of iperf would otherwise pick the links it crossed)."""
    mid = {p: statistics.median(bps for _, bps in s) for p, s in data.rates.items() if s and p in data.forecasts}
    return sorted(mid, key=lambda p: -mid[p])[:top]


def one_step_errors(series: list[tuple[float, float]], forecasts: list[Forecast]) -> list[tuple[float, float, float]]:
    """(time, forecast, actual) for each forecast's first step: the actual is the mean of the samples measured in
    that step (origin, origin + step]; a step with no sample is left out."""
    out = []
    for f in forecasts:
        inside = [bps for ts, bps in series if f.origin_ts < ts <= f.origin_ts + f.step_s]
        if inside:
            out.append((f.origin_ts + f.step_s, f.values[0], statistics.fmean(inside)))
    return out


FACT_KINDS = ["city", "country", "local_time", "poi"]  # the location facts counted in the cloud's own text


def answered_netgpt(responses: list[dict]) -> list[dict]:
    """The prompts asked the NetGPT way (the default mode) that got a 200 response."""
    return [x for x in responses if x.get("status") == 200 and x.get("mode", "netgpt") == "netgpt"]


def _cloud_text(resp: dict) -> str:
    """The cloud's own words: the answer without the edge's prefix."""
    return resp["answer"][len(resp.get("answer_edge_prefix", "")):]


def is_echo(record: dict) -> bool:
    """The cloud's own text mostly repeats what it was sent (netgpt.edge_agent.collab.scoring's test)."""
    from netgpt.edge_agent.collab.scoring import ECHO_SHARE, echo_share

    resp = record["response"]
    return echo_share(_cloud_text(resp), resp["completed_prompt"]) >= ECHO_SHARE


def compare_modes(responses: list[dict]) -> dict[str, dict]:
    """netgpt vs cloud-only on the prompts asked both ways in this run: per mode, the share of FACT_KINDS named in
    the cloud's own text (true for the cell when asked), echoes of what the cloud was sent, latency, cloud tokens."""
    from netgpt.edge_agent.collab.scoring import facts_used
    from netgpt.edge_agent.location.cells import load_cells

    ok = [x for x in responses if x.get("status") == 200 and x["response"].get("answered_by") == "cloud"]
    both = {(x["user"], x["text"]) for x in ok if x["mode"] == "netgpt"} & \
        {(x["user"], x["text"]) for x in ok if x["mode"] == "cloud-only"}
    cells, out = load_cells(), {}
    for mode in ("netgpt", "cloud-only"):
        mine = [x for x in ok if x["mode"] == mode and (x["user"], x["text"]) in both]
        if not mine:
            continue
        own = [_cloud_text(x["response"]) for x in mine]
        ms = [x["response"]["total_ms"] for x in mine]
        out[mode] = {
            "prompts": len(mine),
            "facts_used": round(statistics.fmean(facts_used(t, FACT_KINDS, cells[x["cell"]], x["asked_ts"])
                                                 for t, x in zip(own, mine)), 3),
            "echoes": sum(is_echo(x) for x in mine),
            "latency_p50_ms": round(_pct(ms, 50), 1), "latency_p95_ms": round(_pct(ms, 95), 1),
            "cloud_tokens_in": round(statistics.fmean(x["response"]["cloud_tokens_in"] for x in mine), 1),
            "cloud_tokens_out": round(statistics.fmean(x["response"]["cloud_tokens_out"] for x in mine), 1)}
    return out


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def figures(data: RunData) -> dict:
    """The report's numbers, each None when this run did not measure it."""
    peaks = {p: max(bps for _, bps in s) for p, s in data.rates.items() if s}
    busiest = max(peaks, key=peaks.get) if peaks else None
    answered = answered_netgpt(data.responses)
    ms = [x["response"]["total_ms"] for x in answered]
    errors = {data.port_names[p]: one_step_errors(data.rates.get(p, []), data.forecasts[p]) for p in busy_ports(data)}
    changes = [a for a in data.allocations if a.previous_node_id is not None]
    return {
        "telemetry_entries": data.telemetry_entries,
        "links_measured": len(peaks),
        "busiest_link": data.port_names[busiest] if busiest else None,
        "busiest_link_peak_mbps": round(peaks[busiest] / 1e6, 3) if busiest else None,
        "busiest_link_peak_util_pct": (round(100 * peaks[busiest] / data.capacity_bps[busiest], 2)
                                       if busiest in data.capacity_bps else None),
        "forecasts": sum(len(v) for v in data.forecasts.values()) + sum(len(v) for v in data.cell_forecasts.values()),
        "one_step_mae_mbps": {name: round(statistics.fmean(abs(f - a) for _, f, a in e) / 1e6, 3) if e else None
                              for name, e in errors.items()},
        "te_moves": len(te_moves(data.te_actions)),
        "te_moves_in_day": sum(m[0].ts >= data.marks["day starts"] for m in te_moves(data.te_actions))
        if "day starts" in data.marks else None,
        "allocation_changes": len(changes),
        "failovers": sum(" failed on " in a.reason for a in changes),
        "user_intents": data.user_intents,
        "prompts_asked": sum(x.get("mode", "netgpt") == "netgpt" for x in data.responses),
        "prompts_answered": len(answered),
        "answered_by_cloud": sum(x["response"]["answered_by"] == "cloud" for x in answered),
        "cloud_echoes": sum(x["response"]["answered_by"] == "cloud" and is_echo(x) for x in answered),
        "latency_p50_ms": round(_pct(ms, 50), 1) if ms else None,
        "latency_p95_ms": round(_pct(ms, 95), 1) if ms else None,
        "intents_submitted": len(data.intents),
        "intents_verified": sum(reached(x, IntentState.verified) for x in data.intents),
        "intents_verified_by_measurement": sum(reached(x, IntentState.verified)
                                               and measured_effect(x.text, data.operator) is True
                                               for x in data.intents),
        "intents_withdrawn": sum(reached(x, IntentState.withdrawn) for x in data.intents),
        "operator_queries_answered": sum(x["step"] == "ask" and bool(x.get("answer")) for x in data.operator),
        "modes": compare_modes(data.responses),
        "replay_prompts": len(data.replay),
        "replay_answered": sum(x.get("status") == 200 for x in data.replay),
    }
