"""The demo's report writer on streams written into a real redis-server: the files, the figures recomputed from the
streams, the sections that say their data is missing, and entries of earlier runs left out."""
import json
import time

import pytest

from netgpt.core import bus
from netgpt.core.messages import (Allocation, FlowAction, Forecast, ForecastQuantile, IntentEvent, IntentRecord,
                                  PortStats, UserIntent)
from netgpt.demo.report import md_escape, write_report
from netgpt.demo.report_data import OPERATOR_FILE, REPLAY_FILE, RESPONSES_FILE, collect

CORE, AGG1, AGG2 = 1, 2, 3  # core1 port 2 -> agg1, core1 port 3 -> agg2


def _network(r) -> None:
    r.set(bus.Keys.TOPOLOGY, json.dumps({"switches": [1, 2, 3], "links": [
        {"src": CORE, "dst": AGG1, "port": 2, "weight": 1}, {"src": AGG1, "dst": CORE, "port": 1, "weight": 1},
        {"src": CORE, "dst": AGG2, "port": 3, "weight": 1}]}))
    r.hset(bus.Keys.SWITCHES, mapping={"core1": 1, "agg1": 2, "agg2": 3})
    r.hset(bus.Keys.LINK_CAPACITY, mapping={"1-2": 100.0, "1-3": 100.0})
    r.hset(bus.Keys.HOSTS, mapping={"cloud": json.dumps({"mac": "00:00:00:00:00:01"}),
                                    "u1": json.dumps({"mac": "00:00:00:00:00:04"})})


def _scenario(r, t0: float) -> None:
    """20 s of a rising load on core1->agg1, a flat one on core1->agg2, forecasts of the first, one TE move, a
    failover and its fail-back, user intents."""
    stats = []
    for i in range(20):
        stats.append(PortStats(source="controller", ts=t0 + i, dpid=CORE, port_no=2, rx_bytes=0, tx_bytes=i,
                               rx_packets=0, tx_packets=0, tx_bps=(10 + 3 * i) * 1e6, interval_s=1.0))
        stats.append(PortStats(source="controller", ts=t0 + i, dpid=CORE, port_no=3, rx_bytes=0, tx_bytes=i,
                               rx_packets=0, tx_packets=0, tx_bps=5e6, interval_s=1.0))
    bus.publish_many(r, bus.Streams.TELEMETRY, stats)
    bus.publish_many(r, bus.Streams.FORECASTS, [
        Forecast(source="forecast", ts=t0 + i, target=f"port:{CORE}:2:tx_bps", origin_ts=t0 + i - 0.5, step_s=1.0,
                 values=[(12 + 3 * i) * 1e6] * 3, model="forecast:ridge",
                 quantiles=[ForecastQuantile(q=0.9, values=[(15 + 3 * i) * 1e6] * 3)]) for i in range(15)])
    bus.publish_many(r, bus.Streams.AUDIT, [
        FlowAction(source="controller:te", ts=t0 + 12 + k * 0.01, action_id=f"a{k}", op="add", dpid=dpid,
                   match={"eth_src": "00:00:00:00:00:01", "eth_dst": "00:00:00:00:00:04"},
                   reason="path [1, 2] -> [1, 3, 2]", cause_id="link 1-2 at 91% (forecast)")
        for k, dpid in enumerate((3, 1))] + [
        Allocation(source="controller:allocation", ts=t0 + 0.5, cell="c1", node_id="mec1", vip="10.0.0.200",
                   reason="c1 new -> mec1 (home node)"),
        Allocation(source="controller:allocation", ts=t0 + 0.6, cell="c3", node_id="mec2", vip="10.0.0.200",
                   reason="c3 new -> mec2 (home node)"),
        Allocation(source="controller:allocation", ts=t0 + 8, cell="c1", node_id="mec2", vip="10.0.0.200",
                   reason="c1 failed on mec1 -> mec2 (most headroom)", previous_node_id="mec1"),
        Allocation(source="controller:allocation", ts=t0 + 16, cell="c1", node_id="mec1", vip="10.0.0.200",
                   reason="c1 back to home node mec1 from mec2", previous_node_id="mec2")])
    bus.publish_many(r, bus.Streams.USER_INTENTS, [
        UserIntent(request_id=f"r{i}", user="u1", cell="c1", service_class="web_chat", confidence=0.8,
                   bandwidth_mbps=1, duration_s=10, latency_class="best_effort") for i in range(7)])


def _intents(r, run_dir, t0: float) -> None:
    """A block verified then withdrawn, a cap verified, and a record of an earlier run (left out)."""
    def record(iid, text, states, ts):
        return IntentRecord(intent_id=iid, text=text, ts=ts, state=states[-1],
                            history=[IntentEvent(state=st, ts=ts + k) for k, st in enumerate(states)])
    done = ["submitted", "compiled", "installed", "verified"]
    recs = [record("b1", "block traffic from u1 to u3", done + ["withdrawn"], t0 + 5),
            record("k1", "cap video from cell 2 at 5 Mbit/s", done, t0 + 7),
            record("old", "block traffic from u2 to u4", done, t0 - 3600)]
    r.hset(bus.Keys.INTENTS, mapping={x.intent_id: x.model_dump_json() for x in recs})
    steps = [{"step": "measure", "text": "block traffic from u1 to u3", "what": "ping u1 -> u3 loss %",
              "before": 0.0, "after": 100.0, "holds": True},
             {"step": "measure", "text": "block traffic from u1 to u3", "what": "ping after the withdrawal",
              "after": 0.0, "holds": True, "withdrawal": True},
             {"step": "measure", "text": "cap video from cell 2 at 5 Mbit/s", "what": "iperf Mbit/s", "after": 7.5,
              "holds": False},
             {"step": "ask", "text": "which links will be busy?", "answer": "none above 80%", "rc": 0},
             {"step": "ask", "text": "what is the load?", "answer": None, "rc": 1, "error": "no data"}]
    (run_dir / OPERATOR_FILE).write_text("".join(json.dumps(x) + "\n" for x in steps))


def _responses(run_dir, t0: float) -> None:
    """Three prompts the NetGPT way (one unanswered more), the first two cloud-only too; u1 is in Lyon (c1)."""
    def line(text, mode, ms, answer, done):
        return {"user": "u1", "cell": "c1", "text": text, "mode": mode, "asked_ts": t0, "status": 200,
                "response": {"source": "edge:mec1", "answered_by": "cloud", "total_ms": ms, "completed_prompt": done,
                             "edge_lm_draft": "near Les Halles" if mode == "netgpt" else "", "answer": answer,
                             "cloud_tokens_in": 40 if mode == "netgpt" else 20, "cloud_tokens_out": 30}}
    texts = ["Any <b>good</b> place for dinner?", "Where is a good coffee", "What to see?"]
    lines = [line(t, "netgpt", ms, "Try the market stalls in Lyon.", f"{t} I am in Lyon, near Les Halles.")
             for t, ms in zip(texts, (1000.0, 2000.0, 3000.0))]
    lines += [line(texts[0], "cloud-only", 500.0, "Try a local market.", texts[0]),
              line(texts[1], "cloud-only", 700.0, "Where is a good coffee", texts[1])]  # an echo
    lines.append({"user": "u3", "cell": "c3", "text": "hi", "mode": "netgpt", "status": 0,
                  "response": {"error": "timed out"}})
    (run_dir / RESPONSES_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))
    replay = [{"user": "u2", "cell": "c2", "t": 1.0 + i, "status": 200 if i else 0, "source": "edge:mec1",
               "retries": 0} for i in range(5)]
    (run_dir / REPLAY_FILE).write_text("".join(json.dumps(x) + "\n" for x in replay))


@pytest.fixture
def run(redis_client, tmp_path):
    r = redis_client
    bus.publish(r, bus.Streams.AUDIT, Allocation(cell="c9", node_id="old", vip="x", previous_node_id="older",
                                                 reason="c9 failed on older -> old (home node)"))  # an earlier run
    time.sleep(0.01)
    since_ms, t0 = int(time.time() * 1000), time.time()
    _network(r)
    _scenario(r, t0)
    _responses(tmp_path, t0)
    _intents(r, tmp_path, t0)
    data = collect(r, since_ms, tmp_path, end_ts=t0 + 20)
    data.marks = {"day starts": t0 + 10}
    write_report(data, tmp_path, [("seed", "7")])
    return r, since_ms, tmp_path


def test_report_files_are_written_and_the_html_is_self_contained(run):
    _, _, out = run
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    for png in ("link_utilisation.png", "forecast_vs_actual.png", "allocation.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({png})" in md
    assert page.count('src="data:image/png;base64,') == 3 and ".png\"" not in page
    assert "No data" not in md
    assert "ping u1 -&gt; u3 loss %: 0 before, 100" not in md and "ping u1 -> u3 loss %: 0 before, 100" in md
    assert "verified 8.0 → withdrawn 9.0" in md and "u2 to u4" not in md
    assert "core1->agg1" in md and "failover" in md.lower() and "link 1-2 at 91% (forecast)" in md
    assert "1 TE moves (1 during the day), 2 allocation changes (1 failovers), 2 operator intents: 2 verified" in md
    assert "1 of them confirmed by a measurement in this run, 1 withdrawn" in md
    assert "| cap video from cell 2 at 5 Mbit/s | yes | does not hold | no |" in md
    assert "| cloud -> u1 | path \\[1, 2\\] -> \\[1, 3, 2\\] |" in md  # the pair by its hosts' names
    # the LM's words are marked, the user's HTML is shown as text, never rendered
    assert "<strong>near Les Halles</strong>" in page and "<b>good</b>" not in page and "&lt;b&gt;good" in page


def test_two_figures_recomputed_from_the_streams(run):
    r, since_ms, out = run
    fig = json.loads((out / "report.json").read_text())["figures"]
    # the busiest link's peak, straight from the telemetry entries of this run
    peak = max(json.loads(f["data"])["tx_bps"] for _, f in r.xrange(bus.Streams.TELEMETRY, min=f"{since_ms}-0")
               if f["kind"] == "port_stats")
    assert fig["busiest_link_peak_mbps"] == pytest.approx(peak / 1e6) == pytest.approx(67.0)
    assert fig["busiest_link"] == "core1->agg1" and fig["busiest_link_peak_util_pct"] == pytest.approx(67.0)
    # allocation changes: allocation entries of this run that name a previous node (the earlier run's is left out)
    changes = [json.loads(f["data"]) for _, f in r.xrange(bus.Streams.AUDIT, min=f"{since_ms}-0")
               if f["kind"] == "allocation" and json.loads(f["data"])["previous_node_id"]]
    assert fig["allocation_changes"] == len(changes) == 2 and fig["failovers"] == 1
    assert fig["te_moves"] == 1 and fig["user_intents"] == 7 and fig["forecasts"] == 15
    # the forecasts were 2 Mbit/s above the measured step each time
    assert fig["one_step_mae_mbps"]["core1->agg1"] == pytest.approx(2.0)
    assert (fig["prompts_asked"], fig["prompts_answered"], fig["latency_p50_ms"]) == (4, 3, 2000.0)
    assert (fig["replay_prompts"], fig["replay_answered"]) == (5, 4)
    assert (fig["intents_submitted"], fig["intents_verified"], fig["intents_withdrawn"]) == (2, 2, 1)
    assert fig["operator_queries_answered"] == 1 and fig["cloud_echoes"] == 0
    # the block's ping found its effect, the cap's iperf did not (7.5 Mbit/s through a 5 Mbit/s cap); TE moved at 12 s,
    # after the day began at 10 s
    assert fig["intents_verified_by_measurement"] == 1 and fig["te_moves_in_day"] == 1
    # netgpt vs cloud-only: only the two prompts asked both ways; Lyon named once in each netgpt answer (1 of 4 kinds)
    ng, co = fig["modes"]["netgpt"], fig["modes"]["cloud-only"]
    assert (ng["prompts"], ng["facts_used"], ng["echoes"], ng["latency_p50_ms"]) == (2, 0.25, 0, 1500.0)
    assert (co["prompts"], co["facts_used"], co["echoes"], co["cloud_tokens_in"]) == (2, 0.0, 1, 20.0)


def test_allocation_changes_of_the_start_and_the_teardown_are_counted_apart(run, tmp_path):
    """The controller moves the cells an earlier run left elsewhere while the agents start, and fails cells over while
    the demo stops them: those changes (here, c1's first placement at t0 + 0.5 and, from t0 + 12 on, the fail-back)
    are not the run's changes or failovers, and the section says how many were left out."""
    r, since_ms, _out = run
    t0 = since_ms / 1000
    data = collect(r, since_ms, tmp_path, end_ts=t0 + 20, allocations_counted=(t0 + 0.55, t0 + 12))
    assert [a.cell for a in data.allocations] == ["c3", "c1"]
    assert (data.setup_allocations, data.teardown_allocations) == (1, 1)
    md = write_report(data, tmp_path / "teardown", []).read_text()
    fig = json.loads((tmp_path / "teardown" / "report.json").read_text())["figures"]
    assert (fig["allocation_changes"], fig["failovers"]) == (1, 1)
    assert ("1 changes, 1 of them failovers. Not counted or shown: 1 before every cell was on its home node at the "
            "start") in md and "; 1 while the edge agents were stopped at the end." in md


def test_sections_without_data_say_so(redis_client, tmp_path):
    since_ms = int(time.time() * 1000)
    data = collect(redis_client, since_ms, tmp_path, end_ts=time.time())
    write_report(data, tmp_path, [("seed", "1")])
    md = (tmp_path / "report.md").read_text()
    assert md.count("**No data:**") == 7
    assert not list(tmp_path.glob("*.png"))
    fig = json.loads((tmp_path / "report.json").read_text())["figures"]
    assert fig["busiest_link_peak_mbps"] is None and fig["latency_p50_ms"] is None


def test_markdown_escape_leaves_no_markup():
    assert md_escape("a*b_c|d <i>") == "a\\*b\\_c\\|d &lt;i>"


def test_busy_links_are_ranked_by_their_median_rate_not_a_spike():
    from netgpt.demo.report_data import RunData, busy_ports

    spike, steady = (1, 2), (1, 3)
    data = RunData(since_ms=0, rates={spike: [(0.0, 500e6), (1.0, 500e6)] + [(t, 1e5) for t in range(2, 10)],
                                      steady: [(float(t), 20e6) for t in range(10)]})
    data.forecasts = {p: [Forecast(target=f"port:{p[0]}:{p[1]}:tx_bps", origin_ts=0.0, step_s=1.0, values=[1.0],
                                   model="m")] for p in (spike, steady)}
    assert busy_ports(data, top=1) == [steady]


def test_an_intent_is_confirmed_only_by_measurements_that_all_hold():
    from netgpt.demo.report_data import measured_effect

    steps = [{"step": "measure", "text": "a", "holds": True}, {"step": "measure", "text": "a", "holds": False},
             {"step": "measure", "text": "b", "holds": True},
             {"step": "measure", "text": "b", "holds": False, "withdrawal": True},  # after the withdrawal: not its effect
             {"step": "measure", "text": "c", "after": 1.0}, {"step": "ask", "text": "d", "holds": True}]
    assert [measured_effect(t, steps) for t in "abcd"] == [False, True, None, None]
