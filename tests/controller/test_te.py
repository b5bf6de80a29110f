"""Traffic-engineering decisions, as one unit: the app with a fake forwarding app and monitor (no switches)."""
import time
from types import SimpleNamespace

import networkx as nx
import pytest

from controller.te import TrafficEngineering
from netgpt import bus
from netgpt.messages import Forecast, UserIntent
from netgpt.settings import Settings

UPPER, LOWER = [1, 2, 4], [1, 3, 4]


class FakeForwarding:
    """The diamond: 1 -> {2, 3} -> 4; port numbers = the neighbour's dpid."""

    def __init__(self):
        self.graph = nx.DiGraph()
        for a, b in ((1, 2), (2, 4), (1, 3), (3, 4)):
            self.graph.add_edge(a, b, port=b, weight=1.0)
            self.graph.add_edge(b, a, port=a, weight=1.0)
        self.hosts = {"s1": (1, 10), "u1": (4, 10), "s2": (1, 11), "u2": (4, 11)}
        self.arp_table = {"10.0.0.1": "s1", "10.0.0.101": "u1", "10.0.0.2": "s2", "10.0.0.102": "u2"}
        self.paths: dict = {}
        self.installed = []

    def shortest_path(self, src_mac, dst_mac, src_dpid, dst_dpid):
        return nx.shortest_path(self.graph, src_dpid, dst_dpid, weight="weight")

    def hops(self, path, dst_mac):
        return [(a, self.graph[a][b]["port"]) for a, b in zip(path, path[1:])] + [(path[-1], self.hosts[dst_mac][1])]

    def install_path(self, src, dst, path, barrier=None):
        self.paths[(src, dst)] = list(path)
        self.installed.append(((src, dst), list(path)))
        return self.hops(path, dst)


@pytest.fixture
def te(redis_client, redis_server, monkeypatch):
    app = TrafficEngineering.__new__(TrafficEngineering)  # no Ryu event loop: the decisions only
    app.settings = Settings(redis_port=redis_server["port"], te_mode="proactive", te_holddown_s=0)
    app.redis = redis_client
    app.flow_bytes, app.pair_rate, app.expected, app.link_forecast, app.moved_at = {}, {}, {}, {}, {}
    app.drops, app.moves, app.caps_cache, app.recent_moves = bus.DropCounter(), 0, (0.0, {}), []
    app.logger = SimpleNamespace(info=lambda *a: None, warning=lambda *a: None, exception=lambda *a: None)
    fwd, monitor = FakeForwarding(), SimpleNamespace(rates={})
    monkeypatch.setattr(TrafficEngineering, "fwd", property(lambda self: fwd))
    monkeypatch.setattr(TrafficEngineering, "monitor", property(lambda self: monitor))
    monkeypatch.setattr("controller.te.barrier", lambda app, dp: True)
    redis_client.hset(bus.Keys.LINK_CAPACITY, mapping={"1-2": 100, "2-4": 100, "1-3": 100, "3-4": 100})
    return app


def _measure(te, link_bps: dict, pair_bps: dict):
    now = time.time()
    for (a, b), bps in link_bps.items():
        te.monitor.rates[(a, te.fwd.graph[a][b]["port"])] = (now, 0.0, bps)
    te.pair_rate.update(pair_bps)
    te.flow_bytes.update({pair: (now, 0) for pair in pair_bps})  # the flow stats these rates came from


def test_reactive_moves_the_big_pair_off_a_hot_link_and_audits_it(te, redis_client):
    te.settings = te.settings.model_copy(update={"te_mode": "reactive"})
    te.fwd.paths = {("s1", "u1"): UPPER, ("s2", "u2"): UPPER}
    _measure(te, {(1, 2): 95e6, (2, 4): 95e6}, {("s1", "u1"): 60e6, ("s2", "u2"): 35e6})
    te.relieve_links()
    assert te.fwd.paths[("s1", "u1")] == LOWER and te.fwd.paths[("s2", "u2")] == UPPER
    audit = [m for _, m in bus.read_range(redis_client, bus.Streams.AUDIT)]
    assert [m.dpid for m in audit] == [4, 3, 1]  # downstream first: make before break
    assert audit[-1].previous_actions == [{"type": "OUTPUT", "port": 2}] and audit[-1].actions[0]["port"] == 3


def test_a_pair_is_not_moved_from_one_hot_path_to_another_for_a_few_points(te):
    """60 + 30 on one path, 60 on the other: every placement leaves a path at 90%. Moving the 30 over would gain
    6 points of measured noise and flap back a hold-down later."""
    te.settings = te.settings.model_copy(update={"te_mode": "reactive"})
    te.fwd.paths = {("s1", "u1"): UPPER, ("s2", "u2"): UPPER}
    _measure(te, {(1, 2): 93e6, (2, 4): 93e6, (1, 3): 57e6, (3, 4): 57e6}, {("s1", "u1"): 63e6, ("s2", "u2"): 30e6})
    te.relieve_links()
    assert te.fwd.installed == []
    # A heavily overloaded path is still relieved onto a busy one when that wins clearly (150% -> 120%).
    _measure(te, {(1, 2): 150e6, (2, 4): 150e6, (1, 3): 70e6, (3, 4): 70e6}, {("s1", "u1"): 120e6, ("s2", "u2"): 30e6})
    te.relieve_links()
    assert te.fwd.paths[("s2", "u2")] == LOWER


def test_a_move_counts_before_the_measurements_show_it(te):
    """Rates lag a move by a stats interval or two: the next tick must not see the old path as hot as before and move
    a second pair after the first."""
    te.settings = te.settings.model_copy(update={"te_mode": "reactive", "te_holddown_s": 5})
    te.fwd.hosts["s3"], te.fwd.hosts["u3"] = (1, 12), (4, 12)
    te.fwd.paths = {("s1", "u1"): UPPER, ("s2", "u2"): UPPER, ("s3", "u3"): UPPER}
    stale = ({(1, 2): 130e6, (2, 4): 130e6}, {("s1", "u1"): 60e6, ("s2", "u2"): 40e6, ("s3", "u3"): 30e6})
    _measure(te, *stale)
    te.relieve_links()
    assert te.fwd.installed == [(("s1", "u1"), LOWER)]
    _measure(te, *stale)  # the next tick, before the rates have caught up
    te.relieve_links()
    assert len(te.fwd.installed) == 1


def test_no_move_without_a_real_gain_and_cold_links_are_left_alone(te):
    te.settings = te.settings.model_copy(update={"te_mode": "reactive"})
    te.fwd.paths = {("s1", "u1"): UPPER, ("s2", "u2"): LOWER}
    _measure(te, {(1, 2): 90e6, (2, 4): 90e6, (1, 3): 90e6, (3, 4): 90e6}, {("s1", "u1"): 90e6, ("s2", "u2"): 90e6})
    te.relieve_links()
    assert te.fwd.installed == []
    _measure(te, {(1, 2): 50e6, (2, 4): 50e6, (1, 3): 0, (3, 4): 0}, {("s1", "u1"): 50e6})
    te.relieve_links()
    assert te.fwd.installed == []


def test_proactive_places_an_intent_before_its_traffic(te, redis_client):
    te.fwd.paths = {("s1", "u1"): UPPER}
    _measure(te, {(1, 2): 60e6, (2, 4): 60e6}, {("s1", "u1"): 60e6})
    intent = UserIntent(request_id="r9", user="u2", cell="c2", service_class="video_streaming", confidence=0.9,
                        bandwidth_mbps=60, duration_s=30, latency_class="best_effort", user_ip="10.0.0.102",
                        server_ip="10.0.0.2")
    te.on_user_intent(intent)
    assert te.fwd.paths[("s2", "u2")] == LOWER
    reactive = te.settings.model_copy(update={"te_mode": "reactive"})
    te.settings = reactive
    te.fwd.paths.pop(("s2", "u2"))
    te.on_user_intent(intent)
    assert ("s2", "u2") not in te.fwd.paths  # reactive mode does not act on intents


def test_forecast_of_a_link_counts_as_load_in_proactive_mode(te):
    te.fwd.paths = {("s1", "u1"): UPPER}
    te.on_forecast(Forecast(target="link:1-2:bps", origin_ts=time.time(), step_s=60, values=[30e6, 95e6],
                            model="test"))
    assert te.link_loads()[(1, 2)] == 95e6
    te.on_forecast(Forecast(target="port:1:3:tx_bps", origin_ts=time.time(), step_s=60, values=[70e6], model="t"))
    assert te.link_loads()[(1, 3)] == 70e6


def test_malformed_stale_and_unknown_inputs_are_counted_and_dropped(te):
    te._handle_entry("s", "1-0", {"kind": "user_intent", "v": "1", "data": "{not json"})
    old = UserIntent(ts=time.time() - 3600, request_id="r", user="u", cell="c", service_class="gaming",
                     confidence=0.5, bandwidth_mbps=5, duration_s=10, latency_class="low")
    te._handle_entry("s", "2-0", {"kind": "user_intent", "v": "1", "data": old.model_dump_json()})
    stranger = old.model_copy(update={"ts": time.time(), "user_ip": "10.9.9.9", "server_ip": "10.0.0.1"})
    te._handle_entry("s", "3-0", {"kind": "user_intent", "v": "1", "data": stranger.model_dump_json()})
    assert te.drops.counts == {"not JSON": 1, "stale": 1, "unknown hosts": 1}
    assert te.fwd.installed == []


def test_a_forecast_naming_switches_instead_of_dpids_is_a_message_error(te):
    from netgpt.messages import MessageError

    fc = Forecast(source="t", target="link:s1-s2:tx_bps", origin_ts=time.time(), step_s=1, values=[1e6],
                  model="test")
    with pytest.raises(MessageError, match="dpids"):
        te.on_forecast(fc)


def test_a_pair_whose_flow_stopped_reporting_is_not_moved(te):
    te.settings = te.settings.model_copy(update={"te_mode": "reactive"})
    te.fwd.paths = {("s1", "u1"): UPPER, ("s2", "u2"): UPPER}
    _measure(te, {(1, 2): 95e6, (2, 4): 95e6}, {("s1", "u1"): 60e6, ("s2", "u2"): 35e6})
    te.flow_bytes[("s1", "u1")] = (time.time() - 60, 0)  # its flow idled out a minute ago: the 60 Mbit/s is history
    te.relieve_links()
    assert te.fwd.paths[("s1", "u1")] == UPPER and te.fwd.paths[("s2", "u2")] == LOWER
