"""Answers to operator questions (HighLevelIntent action=query) from what Redis holds now: never a default or constant.

    answer(r, parse_intent("which links will be above 75% in the next hour?"))
    -> QueryAnswer(subject=link_utilization_forecast, text="1 link will exceed 75% ...", data=[{...per link}])

Subjects and where their numbers come from:

    link_utilization_forecast  the latest Forecast per link on bus.Streams.FORECASTS ('link:<a>-<b>:<metric>' or
                               'port:<dpid>:<port>:tx_bps', as controller/te.py reads them), at the quantile TE acts on
                               (Settings.forecast_act_quantile), over capacities in Keys.LINK_CAPACITY (Mbit/s)
    link_throughput            the latest PortStats of the link's two ports (Keys.TOPOLOGY) on bus.Streams.TELEMETRY
    compute_load               the node's latest AgentHeartbeat (bus.live_agents); every live node's when none is named
    flows                      the intents with entries on the switch (intent store) and the controller's REST view
    intent_status              every record in the intent store

A subject whose data is missing says so in `text` and returns empty `data`. An entity the network does not have (a
switch, a link) is an IntentError(unknown_entity), like for intents.
"""
from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
from pydantic import BaseModel, ConfigDict

from netgpt.core import bus
from netgpt.core.messages import (AgentHeartbeat, Forecast, ForecastTarget, HighLevelIntent, MessageError, PortStats,
                                  QuerySubject)
from netgpt.core.settings import Settings, get_settings
from netgpt.intent.compile import NetworkView
from netgpt.intent.errors import IntentError
from netgpt.intent.store import ACTIVE, IntentStore

DEFAULT_THRESHOLD_PCT = 80.0
DEFAULT_HORIZON_MIN = 60.0
SCAN_ENTRIES = 20_000  # newest stream entries searched for the latest message per target (pages of PAGE)
PAGE = 1_000
PLOT_SAMPLES = 120  # samples per port in a throughput plot (about two minutes of telemetry)


class QueryAnswer(BaseModel):
    """What the operator API returns for POST /v1/ask."""

    model_config = ConfigDict(extra="forbid")

    subject: QuerySubject
    text: str
    data: list[dict] | dict = []
    plot: str | None = None


def answer(r, intent: HighLevelIntent, plot_dir: Path | None = None, settings: Settings | None = None,
           controller_timeout_s: float = 1.0) -> QueryAnswer:
    """The answer to one query; a PNG under plot_dir (forecast and throughput subjects) when plot_dir is given."""
    if intent.action.value != "query" or intent.subject is None:
        raise IntentError("invalid", "this is an intent, not a question: submit it instead", field="action")
    settings = settings or get_settings()
    s = intent.subject
    if s is QuerySubject.link_utilization_forecast:
        return _utilization_forecast(r, intent, plot_dir, settings)
    if s is QuerySubject.link_throughput:
        return _throughput(r, intent, plot_dir)
    if s is QuerySubject.compute_load:
        return _compute_load(r, intent)
    if s is QuerySubject.flows:
        return _flows(r, intent, settings, controller_timeout_s)
    return _intent_status(r)


# --- reading the streams ---------------------------------------------------------------------------------------------


def _newest(r, stream: str):
    """The stream's messages, newest first (break out once you have enough). Bounded (SCAN_ENTRIES): telemetry arrives
    every second and the streams keep up to Settings.stream_maxlen entries."""
    end, seen = "+", 0
    while seen < SCAN_ENTRIES:
        page = r.xrevrange(stream, max=end, count=PAGE)
        for _entry_id, fields in page:
            try:
                msg = bus.decode_entry(fields)
            except MessageError:  # a malformed entry is skipped here, as every reader does
                continue
            yield msg
        if len(page) < PAGE:
            return
        seen += len(page)
        end = "(" + page[-1][0]  # exclusive: carry on below the last entry read


def _topology(r) -> dict:
    return json.loads(r.get(bus.Keys.TOPOLOGY) or "{}")


def _capacities_mbps(r) -> dict[tuple[int, int], float]:
    """Undirected link (smaller dpid first, as the feed writes them) -> Mbit/s."""
    caps = {}
    for name, mbps in r.hgetall(bus.Keys.LINK_CAPACITY).items():
        a, _, b = name.partition("-")
        if a.isdigit() and b.isdigit():
            caps[tuple(sorted((int(a), int(b))))] = float(mbps)
    return caps


def link_of(target: ForecastTarget, topo: dict) -> tuple[int, int] | None:
    """The directed link a rate forecast is about: a link target, or an inter-switch port's (Keys.TOPOLOGY links carry
    the source port). None otherwise (a cell's demand, an access port)."""
    if target.kind == "link":
        return target.link
    if target.kind == "port":
        return next(((link["src"], link["dst"]) for link in topo.get("links", [])
                     if (link["src"], link["port"]) == (target.dpid, target.port_no)), None)
    return None


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _mbps(bps: float) -> str:
    return f"{bps / 1e6:.1f} Mbit/s"


# --- subjects --------------------------------------------------------------------------------------------------------


def _utilization_forecast(r, intent: HighLevelIntent, plot_dir: Path | None, settings: Settings) -> QueryAnswer:
    subject = QuerySubject.link_utilization_forecast
    threshold = intent.threshold_pct if intent.threshold_pct is not None else DEFAULT_THRESHOLD_PCT
    horizon = intent.horizon_min if intent.horizon_min is not None else DEFAULT_HORIZON_MIN
    topo, caps = _topology(r), _capacities_mbps(r)
    latest: dict[tuple[int, int], Forecast] = {}  # per link, the forecast with the newest origin
    for fc in _newest(r, bus.Streams.FORECASTS):
        link = link_of(fc.target, topo) if isinstance(fc, Forecast) else None
        if link is not None and (link not in latest or fc.origin_ts > latest[link].origin_ts):
            latest[link] = fc
    if not latest:
        return QueryAnswer(subject=subject, text=f"No link forecasts on {bus.Streams.FORECASTS}: there is nothing to "
                           "answer from (is the forecast loop running?).", data=[])
    if not caps:
        return QueryAnswer(subject=subject, text=f"No link capacities in {bus.Keys.LINK_CAPACITY}: utilisation "
                           f"cannot be computed for the {len(latest)} forecast link(s).", data=[])
    now, q = time.time(), settings.forecast_act_quantile
    rows, no_capacity, stale, series = [], [], [], {}
    for (a, b), fc in sorted(latest.items()):  # directed: a forecast of what a sends to b
        cap = caps.get(tuple(sorted((a, b))))
        if cap is None:
            no_capacity.append(f"s{a}->s{b}")
            continue
        values = fc.at_quantile(q)
        basis = "point forecast" if values is fc.values else f"quantile {q:g}"  # at_quantile falls back to values
        # Step i is the mean rate over [origin + i*step, origin + (i+1)*step]: kept if it ends after now (the step
        # under way counts) and starts within the horizon.
        steps = [i for i in range(len(values)) if fc.origin_ts + (i + 1) * fc.step_s > now
                 and fc.origin_ts + i * fc.step_s < now + horizon * 60]
        if not steps:
            stale.append(f"s{a}->s{b}")
            continue
        peak = max(steps, key=lambda i: values[i])
        pct = 100.0 * values[peak] / (cap * 1e6)
        rows.append({"link": f"s{a}->s{b}", "src": a, "dst": b, "target": str(fc.target), "capacity_mbps": cap,
                     "peak_bps": values[peak], "peak_pct": round(pct, 2), "peak_ts": fc.origin_ts + peak * fc.step_s,
                     "origin_ts": fc.origin_ts, "step_s": fc.step_s, "basis": basis, "model": fc.model,
                     "exceeds": pct > threshold})
        edges = [fc.origin_ts + i * fc.step_s for i in steps] + [fc.origin_ts + (steps[-1] + 1) * fc.step_s]
        series[f"s{a}->s{b}"] = (edges, [values[i] for i in steps] + [values[steps[-1]]], cap, f"forecast, {basis}")
    hot = sorted((x for x in rows if x["exceeds"]), key=lambda x: -x["peak_pct"])
    head = (f"{len(hot)} of {len(rows)} forecast link(s) will exceed {threshold:g}% within {horizon:g} min"
            if rows else f"No forecast reaches into the next {horizon:g} min")
    lines = [head + ("" if not hot else ":")]
    lines += [f"  {x['link']}: peak {x['peak_pct']:.1f}% ({_mbps(x['peak_bps'])} of {x['capacity_mbps']:g} Mbit/s) "
              f"at {_clock(x['peak_ts'])}, {x['basis']} of the forecast from {_clock(x['origin_ts'])} ({x['model']})"
              for x in hot]
    if rows and not hot:
        top = max(rows, key=lambda x: x["peak_pct"])
        lines.append(f"  highest: {top['link']} at {top['peak_pct']:.1f}% ({top['basis']}, forecast from "
                     f"{_clock(top['origin_ts'])})")
    if no_capacity:
        lines.append(f"  no capacity known for {', '.join(no_capacity)}")
    if stale:
        lines.append(f"  forecasts ended before now (stale) for {', '.join(stale)}")
    plot = _plot(plot_dir, "forecast", series, threshold) if plot_dir else None
    return QueryAnswer(subject=subject, text="\n".join(lines), data=rows, plot=plot)


def _throughput(r, intent: HighLevelIntent, plot_dir: Path | None) -> QueryAnswer:
    subject = QuerySubject.link_throughput
    topo = _topology(r)
    if not topo.get("links"):
        return QueryAnswer(subject=subject, text=f"No topology in {bus.Keys.TOPOLOGY} (is the controller running?): "
                           "the link's ports are not known.", data={})
    view = NetworkView.from_redis(r)
    a, b = (view.dpid(n) for n in intent.link)
    ports = {(link["src"], link["port"]): link["dst"] for link in topo["links"] if {link["src"], link["dst"]} == {a, b}}
    if not ports:
        raise IntentError("unknown_entity", f"there is no link between {intent.link[0]} and {intent.link[1]}",
                          field="link")
    latest: dict[tuple[int, int], PortStats] = {}
    history: dict[tuple[int, int], list[PortStats]] = {p: [] for p in ports}
    for m in _newest(r, bus.Streams.TELEMETRY):
        if isinstance(m, PortStats) and (m.dpid, m.port_no) in ports:
            history[(m.dpid, m.port_no)].append(m)
            latest.setdefault((m.dpid, m.port_no), m)
            if len(latest) == len(ports) and (plot_dir is None or min(map(len, history.values())) >= PLOT_SAMPLES):
                break
    name = f"s{a}-s{b}"
    if not latest:
        return QueryAnswer(subject=subject, text=f"No port statistics for {name} on {bus.Streams.TELEMETRY} "
                           "(is the controller's monitor running?).", data={})
    now, cap = time.time(), _capacities_mbps(r).get(tuple(sorted((a, b))))
    rows = [{"dpid": d, "port_no": p, "towards": f"s{ports[(d, p)]}", "tx_bps": m.tx_bps, "rx_bps": m.rx_bps,
             "ts": m.ts, "age_s": round(now - m.ts, 3)} for (d, p), m in sorted(latest.items())]
    lines = [f"{name} throughput (latest port statistics" + (f", capacity {cap:g} Mbit/s)" if cap else ")") + ":"]
    lines += [f"  s{x['dpid']} port {x['port_no']} -> {x['towards']}: sends {_mbps(x['tx_bps'])}, receives "
              f"{_mbps(x['rx_bps'])} ({x['age_s']:.1f} s old)" for x in rows]
    missing = [f"s{d} port {p}" for d, p in ports if (d, p) not in latest]
    if missing:
        lines.append(f"  no statistics for {', '.join(missing)}")
    series = {f"s{d}->s{ports[(d, p)]}": ([m.ts for m in reversed(h)], [m.tx_bps for m in reversed(h)], cap,
                                           f"sent by s{d} port {p}") for (d, p), h in history.items() if h}
    plot = _plot(plot_dir, "throughput", series) if plot_dir else None
    return QueryAnswer(subject=subject, text="\n".join(lines), data={"link": name, "capacity_mbps": cap,
                                                                     "ports": rows}, plot=plot)


def _compute_load(r, intent: HighLevelIntent) -> QueryAnswer:
    """One node's load ("how loaded is mec1?"), or every live node's when the question names none ("the MEC
    servers")."""
    subject = QuerySubject.compute_load
    agents = bus.live_agents(r)
    note = ("Sessions: heartbeats carry no session count; the load is requests per second over the agent's recent "
            "window (load_rps), against the capacity it announces (capacity_rps).")
    if intent.node is None:
        if not agents:
            return QueryAnswer(subject=subject, text="No live heartbeat from any MEC node: their load is not known.",
                               data=[])
        rows = [_load(agents[n]) for n in sorted(agents)]
        return QueryAnswer(subject=subject, text="\n".join([line for line, _ in rows] + [note]),
                           data=[row for _, row in rows])
    hb: AgentHeartbeat | None = agents.get(intent.node)
    if hb is None:
        return QueryAnswer(subject=subject, text=f"No live heartbeat from {intent.node} (its agent is not running or "
                           "its heartbeat expired): its load is not known.", data={})
    line, row = _load(hb)
    return QueryAnswer(subject=subject, text="\n".join([line, note]), data=row)


def _load(hb: AgentHeartbeat) -> tuple[str, dict]:
    age = time.time() - hb.ts
    pct = 100.0 * hb.load_rps / hb.capacity_rps
    extras = f" (+ adapters {', '.join(hb.adapters)})" if hb.adapters else ""
    line = (f"{hb.node_id}: {hb.load_rps:.2f} of {hb.capacity_rps:g} requests/s ({pct:.0f}% of its announced "
            f"capacity); cells {', '.join(hb.cells) or 'none'}; models {', '.join(hb.models) or 'none'}{extras}; "
            f"heartbeat {age:.1f} s old.")
    return line, {"node_id": hb.node_id, "load_rps": hb.load_rps, "capacity_rps": hb.capacity_rps,
                  "load_pct": round(pct, 2), "cells": hb.cells, "models": hb.models, "adapters": hb.adapters,
                  "address": hb.address, "ts": hb.ts, "age_s": round(age, 3)}


def _flows(r, intent: HighLevelIntent, settings: Settings, timeout_s: float) -> QueryAnswer:
    subject = QuerySubject.flows
    view = NetworkView.from_redis(r)
    name = intent.node or ""
    dpid = view.dpid(name)
    mine = []
    for rec in IntentStore(r).active():
        entries = [f for c in rec.compiled for f in c.flows if f.get("dpid") == dpid]
        if entries:
            mine.append({"intent_id": rec.intent_id, "state": rec.state.value, "text": rec.text,
                         "entries": entries})
    url = f"http://127.0.0.1:{settings.ryu_api_port}/netgpt/flows"
    try:
        resp = httpx.get(url, timeout=timeout_s)
        resp.raise_for_status()
        controller, seen = resp.json().get(str(dpid), []), ""
    except (httpx.HTTPError, ValueError) as exc:
        controller, seen = None, f"unavailable ({type(exc).__name__})"
    lines = [f"{name} (dpid {dpid}): {len(mine)} active intent(s) with entries there (from the intent store)"
             + (":" if mine else ".")]
    lines += [f"  {x['intent_id']} ({x['state']}) {len(x['entries'])} entr{'y' if len(x['entries']) == 1 else 'ies'}:"
              f" {x['text']}" for x in mine]
    lines.append(f"The controller's flow statistics ({url}): " + (seen or f"{len(controller)} entries"))
    return QueryAnswer(subject=subject, text="\n".join(lines),
                       data={"switch": name, "dpid": dpid, "intents": mine, "controller": controller})


def _intent_status(r) -> QueryAnswer:
    subject = QuerySubject.intent_status
    records = IntentStore(r).all()
    if not records:
        return QueryAnswer(subject=subject, text=f"No intents in the store ({bus.Keys.INTENTS}).", data=[])
    rows = []
    for rec in records:
        last = rec.history[-1] if rec.history else None
        rows.append({"intent_id": rec.intent_id, "state": rec.state.value, "text": rec.text,
                     "last_event": last.model_dump(mode="json") if last else None})
    active = sum(rec.state in ACTIVE for rec in records)
    lines = [f"{len(records)} intent(s), {active} active:"]
    lines += [f"  {x['intent_id']} ({x['state']}) {x['text']}"
              + (f" — {x['last_event']['detail']} at {_clock(x['last_event']['ts'])}"
                 if x["last_event"] and x["last_event"]["detail"] else "") for x in rows]
    return QueryAnswer(subject=subject, text="\n".join(lines), data=rows)


# --- plots -----------------------------------------------------------------------------------------------------------


def _plot(plot_dir: Path, kind: str, series: dict[str, tuple[list, list, float | None, str]],
          threshold_pct: float | None = None) -> str | None:
    """One panel per link: its series (times, bit/s, held until the next time) against the link's capacity (and the
    question's threshold); the PNG's path."""
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    plot_dir.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(len(series), 1, figsize=(7, 2.2 * len(series)), squeeze=False, sharex=True)
    t0 = min(s[0][0] for s in series.values())
    for ax, (link, (ts, values, cap, label)) in zip(axes[:, 0], series.items()):
        ax.step([(t - t0) / 60 for t in ts], [v / 1e6 for v in values], where="post", label=label)
        if cap:
            ax.axhline(cap, color="red", linestyle="--", label=f"capacity {cap:g} Mbit/s")
            if threshold_pct is not None:
                ax.axhline(cap * threshold_pct / 100, color="orange", linestyle=":", label=f"{threshold_pct:g}%")
        ax.set_ylim(bottom=0)
        ax.set_title(link, fontsize=9)
        ax.set_ylabel("Mbit/s")
        ax.legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel(f"minutes after {_clock(t0)}")
    fig.tight_layout()
    path = plot_dir / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return str(path)
