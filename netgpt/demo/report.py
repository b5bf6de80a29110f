"""The demo's report: report.md, a self-contained report.html (the plots embedded as base64) and the PNG plots, in the
run folder, from what netgpt.demo.report_data read of the run. A section whose data is missing says so.

    data = collect(r, since_ms, run_dir, end_ts)     # while Redis and the network are still up
    write_report(data, run_dir, summary_rows)        # -> run_dir / "report.md"
"""
from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: the demo runs without a display
import matplotlib.pyplot as plt  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402

from netgpt.core.messages import IntentState  # noqa: E402
from netgpt.demo.report_data import (  # noqa: E402
    RunData, answered_netgpt, busy_ports, figures, is_echo, measured_effect, one_step_errors, reached, te_moves)

SAMPLE_PROMPTS = 6


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)  # markdown paragraphs
    image: str | None = None  # PNG file name in the run folder


def md_escape(text: str) -> str:
    """User and model text inside markdown: no markup of its own, no raw HTML."""
    text = text.replace("&", "&amp;").replace("<", "&lt;")  # '>' stays readable: no line starts here
    for ch in "\\`*_[]|#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def md_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _rel(data: RunData, ts: float) -> float:
    return ts - data.t0


def _mark_te_moves(ax, data: RunData) -> None:
    """TE moves as dashed red lines; the demo's own steps (the day starting, mec1 stopping) as dotted grey ones."""
    for i, move in enumerate(te_moves(data.te_actions)):
        ax.axvline(_rel(data, move[0].ts), color="red", ls="--", lw=1, label="TE move" if i == 0 else None)
    for label, ts in data.marks.items():
        ax.axvline(_rel(data, ts), color="grey", ls=":", lw=1)
        ax.annotate(label, (_rel(data, ts), 1.0), xycoords=("data", "axes fraction"), fontsize=6, color="grey",
                    rotation=90, va="top", ha="right")


def plot_utilisation(data: RunData, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 4))
    scaled = all(p in data.capacity_bps for p in data.rates)
    for port, series in sorted(data.rates.items(), key=lambda kv: data.port_names[kv[0]]):
        if max(bps for _, bps in series) < 1e5:  # idle links (LLDP only) would only crowd the legend
            continue
        div = data.capacity_bps[port] / 100 if scaled else 1e6
        ax.plot([_rel(data, t) for t, _ in series], [bps / div for _, bps in series], lw=1,
                label=data.port_names[port])
    _mark_te_moves(ax, data)
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("utilisation (% of capacity)" if scaled else "Mbit/s sent")
    ax.set_title("Link utilisation (controller telemetry, per sending port)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_forecasts(data: RunData, ports: list, path: Path) -> None:
    fig, axes = plt.subplots(len(ports), 1, figsize=(9, 2.8 * len(ports)), squeeze=False)
    for ax, port in zip(axes[:, 0], ports):
        series = data.rates[port]
        ax.plot([_rel(data, t) for t, _ in series], [b / 1e6 for _, b in series], lw=1, color="black",
                label="measured")
        steps = one_step_errors(series, data.forecasts[port])
        ax.plot([_rel(data, t) for t, _, _ in steps], [f / 1e6 for _, f, _ in steps], lw=1, color="tab:blue",
                label="forecast, 1 step ahead")
        q = [(f.origin_ts + f.step_s, f.quantiles[-1].q, f.quantiles[-1].values[0]) for f in data.forecasts[port]
             if f.quantiles]
        if q:
            ax.plot([_rel(data, t) for t, _, _ in q], [v / 1e6 for _, _, v in q], lw=0.8, ls=":", color="tab:blue",
                    label=f"forecast q{q[0][1]:g}")
        _mark_te_moves(ax, data)
        top = 1.5 * max(b for _, b in series) / 1e6
        if any(f / 1e6 > top for _, f, _ in steps):  # a runaway forecast would flatten the measured series
            ax.set_ylim(bottom=0, top=top)
            ax.annotate("forecasts above the top are cut (see the table)", (0.01, 0.9), xycoords="axes fraction",
                        fontsize=7, color="tab:blue")
        ax.set_title(data.port_names[port], fontsize=9)
        ax.set_ylabel("Mbit/s")
        ax.legend(fontsize=7)
    axes[-1, 0].set_xlabel("seconds since the run started")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_allocations(data: RunData, path: Path) -> None:
    cells = sorted({a.cell for a in data.allocations})
    nodes = sorted({a.node_id for a in data.allocations})
    colors = {n: plt.cm.tab10(i) for i, n in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(cells) + 1.5))
    for y, cell in enumerate(cells):
        mine = sorted((a for a in data.allocations if a.cell == cell), key=lambda a: a.ts)
        ends = [a.ts for a in mine[1:]] + [data.end_ts]
        for a, end in zip(mine, ends):
            ax.broken_barh([(_rel(data, a.ts), end - a.ts)], (y - 0.35, 0.7), color=colors[a.node_id])
            if " failed on " in a.reason:
                ax.annotate("failover", (_rel(data, a.ts), y + 0.4), fontsize=7, color="red")
    _mark_te_moves(ax, data)
    ax.set_yticks(range(len(cells)), cells)
    ax.set_xlabel("seconds since the run started")
    ax.set_title("Cell -> MEC node (allocation records on the audit stream)")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()], labels=list(colors),
              fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _missing(title: str, what: str) -> Section:
    return Section(title, [f"**No data:** {what}"])


def section_links(data: RunData, fig: dict, out: Path) -> Section:
    title = "Link utilisation over time"
    if not data.rates:
        return _missing(title, "no port statistics of inter-switch links on netgpt:telemetry in this run.")
    plot_utilisation(data, out / "link_utilisation.png")
    util = (f", {fig['busiest_link_peak_util_pct']}% of its capacity" if fig["busiest_link_peak_util_pct"] is not None
            else " (its capacity is not in netgpt:link_capacity)")
    text = [f"{fig['telemetry_entries']} telemetry entries; {fig['links_measured']} directed links measured. "
            f"Busiest: {fig['busiest_link']}, peak {fig['busiest_link_peak_mbps']} Mbit/s{util}."]
    if (fig["busiest_link_peak_util_pct"] or 0) > 100:
        text.append("The capacities are the topology's figures; this run's links are not shaped, so a link can "
                    "carry more than its capacity.")
    return Section(title, text, "link_utilisation.png")


def section_forecasts(data: RunData, fig: dict, out: Path) -> Section:
    title = "Forecast vs actual on the busiest links"
    ports = busy_ports(data)
    if not ports:
        return _missing(title, "no forecast of a measured link's port on netgpt:forecasts in this run.")
    plot_forecasts(data, ports, out / "forecast_vs_actual.png")
    rows = [[name, len(data.forecasts[p]), "-" if fig["one_step_mae_mbps"][name] is None
             else fig["one_step_mae_mbps"][name]] for p, name in ((p, data.port_names[p]) for p in ports)]
    moves = te_moves(data.te_actions)
    text = [md_table(["link", "forecasts", "1-step MAE (Mbit/s)"], rows)]
    if moves:
        text.append(md_table(["t (s)", "TE move", "cause"], [
            [f"{m[0].ts - data.t0:.1f}", md_escape(m[0].reason), md_escape(m[0].cause_id or "")] for m in moves]))
    else:
        text.append("**No TE move** on netgpt:audit in this run (dashed red lines would mark them).")
    return Section(title, text, "forecast_vs_actual.png")


def section_allocations(data: RunData, fig: dict, out: Path) -> Section:
    title = "Cell -> MEC allocation over time"
    if not data.allocations:
        return _missing(title, "no allocation record on netgpt:audit in this run.")
    plot_allocations(data, out / "allocation.png")
    rows = [[f"{a.ts - data.t0:.1f}", a.cell, a.previous_node_id or "-", a.node_id, md_escape(a.reason)]
            for a in sorted(data.allocations, key=lambda a: a.ts)]
    apart = [f"{data.setup_allocations} before every cell was on its home node at the start (cells an earlier run "
             "left elsewhere, moved while the agents started)"] if data.setup_allocations else []
    apart += [f"{data.teardown_allocations} while the edge agents were stopped at the end"] \
        if data.teardown_allocations else []
    note = f" Not counted or shown: {'; '.join(apart)}." if apart else ""
    return Section(title, [f"{fig['allocation_changes']} changes, {fig['failovers']} of them failovers.{note}",
                           md_table(["t (s)", "cell", "from", "to", "reason"], rows)], "allocation.png")


def _completed(resp: dict) -> str:
    """The completed prompt with the edge LM's own words in bold (the rest is the user's text and the rules')."""
    done, draft = resp.get("completed_prompt", ""), resp.get("edge_lm_draft", "")
    if draft and draft in done:
        head, _, tail = done.partition(draft)
        return f"{md_escape(head)}**{md_escape(draft)}**{md_escape(tail)}"
    return md_escape(done)


def section_prompts(data: RunData, fig: dict) -> Section:
    title = "Users' questions, completed at the edge, answered by the cloud"
    answered = answered_netgpt(data.responses)
    if not answered:
        return _missing(title, "no prompt was answered in this run (no 200 response saved in responses.jsonl).")
    text = [f"{fig['prompts_answered']} of {fig['prompts_asked']} prompts answered, {fig['answered_by_cloud']} by "
            f"the cloud ({fig['cloud_echoes']} of them mostly an echo of what the cloud was sent); latency p50 "
            f"{fig['latency_p50_ms']} ms, p95 {fig['latency_p95_ms']} ms (the agents' total_ms). In the completed "
            "prompts, **bold** is what the edge LM wrote."]
    for x in answered[:SAMPLE_PROMPTS]:
        resp = x["response"]
        text.append(f"- **{md_escape(x['user'])}** in {md_escape(x['cell'])} asks: {md_escape(x['text'])}  \n"
                    f"  completed at {md_escape(resp.get('source', '?'))}: {_completed(resp)}  \n"
                    f"  answer ({resp['answered_by']}, {resp['total_ms']:.0f} ms"
                    f"{', an echo' if resp['answered_by'] == 'cloud' and is_echo(x) else ''}): "
                    f"{md_escape(resp['answer'])}")
    return Section(title, text)


def section_modes(data: RunData, fig: dict) -> Section:
    title = "NetGPT vs cloud-only on the same prompts"
    modes = fig["modes"]
    if len(modes) < 2:
        return _missing(title, "no prompt of this run was answered by the cloud both ways (netgpt and cloud-only).")
    keys = ["prompts", "facts_used", "echoes", "latency_p50_ms", "latency_p95_ms", "cloud_tokens_in",
            "cloud_tokens_out"]
    return Section(title, [
        "facts_used: share of the location facts (city, country, local time, a place of the cell) named in the "
        "cloud's own text, true for the cell when asked; echoes: answers that mostly repeat what the cloud was sent.",
        md_table(["mode", *keys], [[mode, *(modes[mode][k] for k in keys)] for mode in ("netgpt", "cloud-only")])])


def section_load(data: RunData, fig: dict) -> Section:
    title = "Trace-shaped prompt load and inferred user intents"
    if not data.replay:
        return _missing(title, "no trace-shaped prompt was sent in this run (replay.jsonl is empty).")
    return Section(title, [f"{fig['replay_answered']} of {fig['replay_prompts']} prompts answered; "
                           f"{fig['user_intents']} user intents inferred on netgpt:user_intents; "
                           f"{fig['forecasts']} forecasts published on netgpt:forecasts."])


def section_intents(data: RunData, fig: dict) -> Section:
    title = "Operator intents: lifecycle and measured effect"
    if not data.intents and not data.operator:
        return _missing(title, "no operator intent in the intent store (netgpt:intents) from this run.")
    rows = []
    for rec in data.intents:
        events = " → ".join(f"{e.state.value} {e.ts - data.t0:.1f}" for e in rec.history) or rec.state.value
        measured = "; ".join(f"{x['what']}: " + (f"{x['before']:g} before, " if "before" in x else "")
                             + f"{x['after']:g}" + (f", {x['arrived']:g} arrived" if "arrived" in x else "")
                             + ("" if "holds" not in x else " (holds)" if x["holds"] else " (does not hold)")
                             for x in data.operator if x["step"] == "measure" and x.get("text") == rec.text)
        rows.append([md_escape(rec.text), rec.state.value, md_escape(events), md_escape(measured or "not measured")])
    text = [f"{fig['intents_submitted']} intents submitted, {fig['intents_verified']} verified, "
            f"{fig['intents_withdrawn']} withdrawn (times: seconds since the run started).",
            md_table(["sentence", "state", "lifecycle", "measured"], rows) if rows else
            "**No data:** no intent record of this run in netgpt:intents."]
    for x in (x for x in data.operator if x["step"] == "ask"):
        text.append(f"- operator asks: {md_escape(x['text'])}  \n  answer: "
                    + (md_escape(x["answer"]) if x.get("answer") else f"none ({md_escape(x.get('error') or '-')})"))
    return Section(title, text)


def section_actions(data: RunData, fig: dict) -> Section:
    """What acted on the network in this run, counted: TE moves, allocation changes, the operator's intents."""
    title = "What changed the network in this run"
    moves = te_moves(data.te_actions)
    in_day = "" if fig["te_moves_in_day"] is None else f" ({fig['te_moves_in_day']} during the day)"
    text = [f"{fig['te_moves']} TE moves{in_day}, {fig['allocation_changes']} "
            f"allocation changes ({fig['failovers']} failovers), {fig['intents_submitted']} operator intents: "
            f"{fig['intents_verified']} verified by the controller, {fig['intents_verified_by_measurement']} of them "
            f"confirmed by a measurement in this run, {fig['intents_withdrawn']} withdrawn."]
    if moves:
        text.append(md_table(["t (s)", "pair", "path", "cause"], [
            [f"{m[0].ts - data.t0:.1f}", md_escape(" -> ".join(data.host_names.get(mac, mac) or "?" for mac in
                                                               (m[0].match.get("eth_src"), m[0].match.get("eth_dst")))),
             md_escape(m[0].reason), md_escape(m[0].cause_id or "")] for m in moves]))
    rows = [[md_escape(rec.text), "yes" if reached(rec, IntentState.verified) else "no",
             {True: "holds", False: "does not hold", None: "not measured"}[measured_effect(rec.text, data.operator)],
             "yes" if reached(rec, IntentState.withdrawn) else "no"] for rec in data.intents]
    if rows:
        text.append(md_table(["intent", "verified (controller)", "effect measured", "withdrawn"], rows))
    return Section(title, text)


def build_sections(data: RunData, out: Path, fig: dict | None = None) -> tuple[list[Section], dict]:
    fig = figures(data) if fig is None else fig
    return [section_actions(data, fig), section_links(data, fig, out), section_forecasts(data, fig, out), section_allocations(data, fig, out),
            section_intents(data, fig), section_load(data, fig), section_prompts(data, fig),
            section_modes(data, fig)], fig


def render_md(title: str, summary: list[tuple[str, str]], sections: list[Section], embed: Path | None = None) -> str:
    """The report as markdown; with `embed`, images become data URIs of the PNGs in that folder (for the HTML)."""
    parts = [f"# {md_escape(title)}", md_table(["", ""], [[md_escape(k), md_escape(v)] for k, v in summary])]
    for sec in sections:
        parts.append(f"## {sec.title}")
        parts += sec.text
        if sec.image:
            src = sec.image
            if embed is not None:
                src = "data:image/png;base64," + base64.b64encode((embed / sec.image).read_bytes()).decode()
            parts.append(f"![{sec.title}]({src})")
    return "\n\n".join(parts) + "\n"


def write_report(data: RunData, out: Path, summary: list[tuple[str, str]], fig: dict | None = None,
                 title: str = "NetGPT demo report") -> Path:
    """Write report.md, report.html, report.json (the figures: `fig`, computed here if not given) and the PNGs into
    `out`; returns report.md's path."""
    out.mkdir(parents=True, exist_ok=True)
    sections, fig = build_sections(data, out, fig)
    (out / "report.md").write_text(render_md(title, summary, sections))
    body = MarkdownIt("commonmark").enable("table").render(render_md(title, summary, sections, embed=out))
    (out / "report.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}img{max-width:100%}</style></head>"
        f"<body>{body}</body></html>")
    (out / "report.json").write_text(json.dumps({"since_ms": data.since_ms, "figures": fig,
                                                 "allocations_counted": data.allocations_counted}, indent=1))
    return out / "report.md"
