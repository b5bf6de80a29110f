"""Queries (netgpt.intent.queries) answered from what a real Redis holds, and missing data said as such.

The fixtures here (settings that never open the LM reader, a small network view as the stack and the controller
write it) are test_api's too.
"""
from __future__ import annotations

import json
import time

import pytest

from netgpt.core import bus
from netgpt.core.messages import AgentHeartbeat, Forecast, ForecastQuantile, ForecastTarget, HighLevelIntent, PortStats
from netgpt.core.settings import get_settings
from netgpt.intent import IntentError
from netgpt.intent.queries import answer, link_of

# s1 - s2 - s3 in a line; u1 on s1 (cell c1), u3 on s3 (cell c3)
HOSTS = {"u1": {"ip": "10.0.0.1", "mac": "00:00:00:00:00:01", "cell": "c1", "dpid": 1, "port": 1},
         "u3": {"ip": "10.0.0.3", "mac": "00:00:00:00:00:03", "cell": "c3", "dpid": 3, "port": 1}}
LINKS = [{"src": 1, "dst": 2, "port": 2}, {"src": 2, "dst": 1, "port": 1},
         {"src": 2, "dst": 3, "port": 2}, {"src": 3, "dst": 2, "port": 2}]


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("NETGPT_INTENT_LM", "0")
    monkeypatch.setenv("NETGPT_RUN_DIR", str(tmp_path))
    monkeypatch.setenv("NETGPT_RYU_API_PORT", "1")  # nothing listens there: the controller is "not reachable"
    monkeypatch.delenv("NETGPT_OPERATOR_TOKEN", raising=False)
    get_settings.cache_clear()  # default_reader() reads get_settings(): it must see intent_lm off
    yield get_settings()
    get_settings.cache_clear()  # the next test reads the settings afresh (monkeypatch restores the environment)


@pytest.fixture
def network(redis_client):
    r = redis_client
    r.hset(bus.Keys.HOSTS, mapping={k: json.dumps(v) for k, v in HOSTS.items()})
    r.hset(bus.Keys.CELLS, mapping={"c1": json.dumps([[1, 1]]), "c3": json.dumps([[3, 1]])})
    r.hset(bus.Keys.SWITCHES, mapping={"s1": 1, "s2": 2, "s3": 3})
    r.set(bus.Keys.TOPOLOGY, json.dumps({"switches": [1, 2, 3], "links": LINKS, "hosts": {}, "arp": {}}))
    return r


def query(subject, **fields) -> HighLevelIntent:
    return HighLevelIntent(action="query", subject=subject, **fields)


def forecasts(r, now: float) -> None:
    """s1->s2 (a port target) reaches 95 Mbit/s at its 0.9 quantile in step 2 (point: 85); s2->s3 (a link target)
    stays at 40; capacity 100 Mbit/s each."""
    r.hset(bus.Keys.LINK_CAPACITY, mapping={"1-2": 100, "2-3": 100})
    old = Forecast(target="port:1:2:tx_bps", origin_ts=now - 600, step_s=300, values=[99e6] * 3, model="old")
    hot = Forecast(target="port:1:2:tx_bps", origin_ts=now, step_s=300, values=[50e6, 85e6, 60e6] + [10e6] * 20,
                   quantiles=[ForecastQuantile(q=0.5, values=[50e6, 85e6, 60e6] + [10e6] * 20),
                              ForecastQuantile(q=0.9, values=[60e6, 95e6, 70e6] + [99e6] * 20)], model="seasonal")
    cool = Forecast(target="link:2-3:tx_bps", origin_ts=now, step_s=300, values=[40e6] * 12, model="persistence")
    cell = Forecast(target="cell:c1:demand_bps", origin_ts=now, step_s=300, values=[1e9], model="x")
    bus.publish_many(r, bus.Streams.FORECASTS, [old, hot, cool, cell])


def test_utilization_forecast_names_the_links_over_the_threshold(network, settings, tmp_path):
    now = time.time()
    forecasts(network, now)
    a = answer(network, query("link_utilization_forecast", threshold_pct=75, horizon_min=10),
               plot_dir=tmp_path / "plots")
    rows = {x["link"]: x for x in a.data}
    assert set(rows) == {"s1->s2", "s2->s3"}
    hot = rows["s1->s2"]
    # the newest forecast, at the 0.9 quantile TE acts on, over the steps that start within 10 min: 0, 1 and 2 (the
    # 99 Mbit/s tail starts 15 min after the origin)
    assert hot["exceeds"] and hot["peak_pct"] == 95.0 and hot["basis"] == "quantile 0.9"
    assert hot["peak_ts"] == pytest.approx(now + 300) and hot["origin_ts"] == pytest.approx(now)
    assert hot["model"] == "seasonal"
    assert not rows["s2->s3"]["exceeds"] and rows["s2->s3"]["peak_pct"] == 40.0
    assert rows["s2->s3"]["basis"] == "point forecast"
    assert a.text.startswith("1 of 2 forecast link(s) will exceed 75% within 10 min")
    assert "s1->s2: peak 95.0%" in a.text
    assert a.plot and a.plot.endswith(".png") and (tmp_path / "plots").joinpath(a.plot.split("/")[-1]).stat().st_size


def test_utilization_forecast_default_threshold_and_horizon(network, settings):
    forecasts(network, time.time())
    a = answer(network, query("link_utilization_forecast"))  # 80% within 60 min: the 99 Mbit/s tail counts now
    assert {x["link"]: x["peak_pct"] for x in a.data if x["exceeds"]} == {"s1->s2": 99.0}
    assert "within 60 min" in a.text and a.plot is None


def test_utilization_forecast_missing_data_says_so(network, settings):
    a = answer(network, query("link_utilization_forecast"))
    assert a.data == [] and "No link forecasts" in a.text
    bus.publish(network, bus.Streams.FORECASTS, Forecast(target="link:1-2:tx_bps", origin_ts=time.time(), step_s=60,
                                                         values=[1e6], model="m"))
    a = answer(network, query("link_utilization_forecast"))
    assert a.data == [] and "No link capacities" in a.text


def test_a_forecast_that_ended_before_now_is_stale(network, settings):
    network.hset(bus.Keys.LINK_CAPACITY, "1-2", 100)
    bus.publish(network, bus.Streams.FORECASTS, Forecast(target="link:1-2:tx_bps", origin_ts=time.time() - 3600,
                                                         step_s=60, values=[99e6] * 5, model="m"))
    a = answer(network, query("link_utilization_forecast"))
    assert a.data == [] and "stale" in a.text and "s1->s2" in a.text


def test_forecast_targets():
    topo = {"links": LINKS}
    link = ForecastTarget.model_validate
    assert link_of(link("link:1-2:tx_bps"), topo) == (1, 2)
    assert link_of(link("port:2:2:tx_bps"), topo) == (2, 3)
    assert link_of(link("port:1:1:tx_bps"), topo) is None  # an access port
    assert link_of(link("cell:c1:demand_bps"), topo) is None


def test_link_throughput_reads_both_ports(network, settings, tmp_path):
    now = time.time()
    samples = [PortStats(dpid=2, port_no=2, rx_bytes=0, tx_bytes=0, rx_packets=0, tx_packets=0, tx_bps=1e6 * i,
                         rx_bps=2e6, ts=now - 10 + i) for i in range(5)]
    samples.append(PortStats(dpid=3, port_no=2, rx_bytes=0, tx_bytes=0, rx_packets=0, tx_packets=0, tx_bps=2e6,
                             rx_bps=4e6, ts=now - 1))
    bus.publish_many(network, bus.Streams.TELEMETRY, samples)
    a = answer(network, query("link_throughput", link=["s2", "s3"]), plot_dir=tmp_path)
    ports = {(p["dpid"], p["port_no"]): p for p in a.data["ports"]}
    assert ports[(2, 2)]["tx_bps"] == 4e6 and ports[(2, 2)]["towards"] == "s3"  # the newest sample
    assert ports[(3, 2)]["rx_bps"] == 4e6 and ports[(3, 2)]["age_s"] == pytest.approx(1, abs=0.5)
    assert "s2 port 2 -> s3: sends 4.0 Mbit/s" in a.text and a.plot


def test_link_throughput_missing_and_unknown(network, settings):
    a = answer(network, query("link_throughput", link=["s1", "s2"]))
    assert a.data == {} and "No port statistics" in a.text
    with pytest.raises(IntentError) as err:
        answer(network, query("link_throughput", link=["s1", "s3"]))
    assert err.value.kind == "unknown_entity"
    network.delete(bus.Keys.TOPOLOGY)
    assert "No topology" in answer(network, query("link_throughput", link=["s1", "s2"])).text


def test_compute_load_from_the_heartbeat(network, settings):
    a = answer(network, query("compute_load", node="mec2"))
    assert a.data == {} and "No live heartbeat from mec2" in a.text
    bus.write_heartbeat(network, AgentHeartbeat(node_id="mec2", address="10.0.0.12:8100", cells=["c3"],
                                                capacity_rps=2.0, load_rps=1.5, models=["gpt2-edge"]), ttl_s=5)
    a = answer(network, query("compute_load", node="mec2"))
    assert a.data["load_rps"] == 1.5 and a.data["load_pct"] == 75.0 and a.data["cells"] == ["c3"]
    assert "1.50 of 2 requests/s" in a.text and "no session count" in a.text


def test_flows_and_intent_status_from_the_store(network, settings):
    from netgpt.intent import service

    assert answer(network, query("intent_status")).data == []
    record = service.submit(network, "block traffic from u1 to u3", lm=None)
    a = answer(network, query("flows", node="s1"))
    assert [x["intent_id"] for x in a.data["intents"]] == [record.intent_id]
    assert a.data["controller"] is None and "unavailable" in a.text  # no controller REST API in this test
    assert answer(network, query("flows", node="s2")).data["intents"] == []
    status = answer(network, query("intent_status"))
    assert [(x["intent_id"], x["state"]) for x in status.data] == [(record.intent_id, "compiled")]
    assert status.data[0]["last_event"]["state"] == "compiled" and "1 intent(s), 1 active" in status.text


def test_compute_load_of_every_node_when_none_is_named(network, settings):
    a = answer(network, query("compute_load"))
    assert a.data == [] and "any MEC node" in a.text
    for node, load in (("mec2", 1.0), ("mec1", 0.5)):
        bus.write_heartbeat(network, AgentHeartbeat(node_id=node, address="10.0.0.12:8100", cells=["c3"],
                                                    capacity_rps=2.0, load_rps=load, models=["gpt2-edge"]), ttl_s=5)
    a = answer(network, query("compute_load"))
    assert [(x["node_id"], x["load_pct"]) for x in a.data] == [("mec1", 25.0), ("mec2", 50.0)]
    assert "mec1: 0.50 of 2 requests/s" in a.text and "mec2: 1.00 of 2" in a.text
