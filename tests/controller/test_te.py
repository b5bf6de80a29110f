"""Traffic engineering: the path choice on plain numbers, then the app on the real forwarding app over stand-in
switches (the diamond 1 -> {2, 3} -> 4), with link rates as the monitor reports them (EventPortRates)."""
import time

import pytest
from ryu.controller import ofp_event
from ryu.ofproto import ofproto_v1_3_parser as parser

from netgpt.controller.monitor import EventPortRates, PortRate
from netgpt.controller.shortest_path import ShortestPathForwarding
from netgpt.controller.path_choice import HOT_MOVE_GAIN, hot_links, least_loaded_path, peak_utilisation, worth_moving
from netgpt.controller.te import TrafficEngineering
from netgpt.core import bus
from netgpt.core.messages import Forecast, ForecastQuantile, UserIntent
from netgpt.core.settings import Settings
from tests.controller.fakes import FakeNetwork, out_port

UPPER, LOWER = [1, 2, 4], [1, 3, 4]
S1, U1, S2, U2, S3, U3 = (f"00:00:00:00:00:{i:02x}" for i in (1, 0x65, 2, 0x66, 3, 0x67))
HOSTS = {S1: ("10.0.0.1", 1, 10), U1: ("10.0.0.101", 4, 10), S2: ("10.0.0.2", 1, 11), U2: ("10.0.0.102", 4, 11),
         S3: ("10.0.0.3", 1, 12), U3: ("10.0.0.103", 4, 12)}


# --- the choice, on plain numbers ------------------------------------------------------------------------------------

def test_peak_utilisation_moves_the_pairs_demand_off_its_current_path():
    caps = {(1, 2): 100e6, (2, 4): 100e6, (1, 3): 100e6, (3, 4): 100e6}
    loads = {(1, 2): 90e6, (2, 4): 90e6, (1, 3): 20e6}
    assert peak_utilisation(UPPER, loads, caps, demand=60e6, current=UPPER) == pytest.approx(0.9)
    assert peak_utilisation(LOWER, loads, caps, demand=60e6, current=UPPER) == pytest.approx(0.8)
    assert peak_utilisation([1, 5, 4], loads, caps, demand=60e6) == 0.0  # links without a capacity are not managed


def test_the_least_loaded_path_must_win_clearly_and_only_k_candidates_count():
    caps = {(1, 2): 100e6, (2, 4): 100e6, (1, 3): 100e6, (3, 4): 100e6}
    hot = {(1, 2): 95e6, (2, 4): 95e6}
    assert least_loaded_path([UPPER, LOWER], UPPER, hot, caps, 60e6, UPPER, k=2) == LOWER
    assert least_loaded_path([UPPER, LOWER], UPPER, hot, caps, 60e6, UPPER, k=1) == UPPER
    close = {(1, 2): 60e6, (2, 4): 60e6, (1, 3): 57e6, (3, 4): 57e6}  # 3 points better: not worth a move
    assert least_loaded_path([UPPER, LOWER], UPPER, close, caps, 0.0, UPPER, k=2) == UPPER


def test_hot_links_are_the_managed_ones_over_the_threshold_hottest_first():
    caps = {(1, 2): 100e6, (2, 4): 100e6, (1, 3): 100e6}
    loads = {(1, 2): 85e6, (2, 4): 95e6, (1, 3): 80e6, (3, 4): 500e6}
    assert hot_links(loads, caps, 0.8) == [(2, 4), (1, 2)]


def test_a_move_between_hot_paths_needs_a_big_gain():
    assert worth_moving(before=0.95, after=0.5, threshold=0.8)
    assert not worth_moving(before=0.93, after=0.87, threshold=0.8)
    assert worth_moving(before=1.5, after=1.5 - HOT_MOVE_GAIN - 0.01, threshold=0.8)


# --- the app ---------------------------------------------------------------------------------------------------------

@pytest.fixture
def diamond(redis_client, redis_server):
    """make(**settings) -> (te, net): a fresh diamond (port numbers = the neighbour's dpid; hosts on ports 10-12) with
    its forwarding app and a TE app, nothing installed yet."""
    redis_client.hset(bus.Keys.LINK_CAPACITY, mapping={"1-2": 100, "2-4": 100, "1-3": 100, "3-4": 100})

    def make(**overrides):
        settings = Settings(redis_port=redis_server["port"], **{"te_mode": "proactive", "te_holddown_s": 0,
                                                                 **overrides})
        fwd = ShortestPathForwarding(settings=settings, redis=redis_client)
        net = FakeNetwork(fwd)
        for dpid, neighbours in {1: [2, 3], 2: [1, 4], 3: [1, 4], 4: [2, 3]}.items():
            net.switch(dpid, neighbours + [10, 11, 12])
        for a, b in ((1, 2), (2, 4), (1, 3), (3, 4)):
            net.link(a, b, b, a)
        for mac, (ip, dpid, port) in HOSTS.items():
            net.host(mac, ip, dpid, port)
        te = TrafficEngineering(settings=settings, redis=redis_client, forwarding=fwd)
        net.clear()
        return te, net

    return make


def _place(te, net, paths: dict):
    """Pairs already on their paths, as the forwarding app installed them."""
    for (src, dst), path in paths.items():
        te.forwarding.install_path(src, dst, path)
    net.clear()


def _measure(te, link_bps: dict, pair_bps: dict, age_s: float = 0.0):
    """Link rates as the monitor reports them, and each pair's rate from two readings of its byte counter."""
    now = time.time() - age_s
    by_switch: dict[int, dict] = {}
    for (a, b), bps in link_bps.items():
        by_switch.setdefault(a, {})[te.forwarding.graph[a][b]["port"]] = PortRate(now, 0.0, bps)
    for dpid, rates in by_switch.items():
        te.port_rates_handler(EventPortRates(dpid, rates))
    for pair, bps in pair_bps.items():
        te.count_pair_bytes(pair, now - 1.0, 0)
        te.count_pair_bytes(pair, now, int(bps / 8))


def test_reactive_moves_the_big_pair_off_a_hot_link_make_before_break_and_audits_it(diamond, redis_client):
    te, net = diamond(te_mode="reactive")
    _place(te, net, {(S1, U1): UPPER, (S2, U2): UPPER})
    _measure(te, {(1, 2): 95e6, (2, 4): 95e6}, {(S1, U1): 60e6, (S2, U2): 35e6})
    te.relieve_links()
    assert te.forwarding.paths[(S1, U1)] == LOWER and te.forwarding.paths[(S2, U2)] == UPPER
    # Make before break, on the switches: each switch of the new path gets its flow and confirms it (barrier) before
    # the switch upstream of it is changed; the ingress switch, which switches the traffic over, comes last.
    sent = [(dpid, type(m).__name__, out_port(m) if isinstance(m, parser.OFPFlowMod) else None) for dpid, m in net.log]
    assert sent == [(4, "OFPFlowMod", 10), (4, "OFPBarrierRequest", None), (3, "OFPFlowMod", 4),
                    (3, "OFPBarrierRequest", None), (1, "OFPFlowMod", 3), (1, "OFPBarrierRequest", None)]
    assert all(m.match["eth_src"] == S1 and m.match["eth_dst"] == U1 for _, m in net.flow_mods())
    audit = [m for _, m in bus.read_range(redis_client, bus.Streams.AUDIT)]
    assert [m.dpid for m in audit] == [4, 3, 1]  # in the order they were installed
    assert audit[-1].previous_actions == [{"type": "OUTPUT", "port": 2}] and audit[-1].actions[0]["port"] == 3


def test_one_move_that_relieves_a_hot_path_is_the_only_one(diamond):
    """Both links of the upper path are hot; moving the big pair relieves both. The second hot link, no longer hot,
    must not have a pair moved too because the other path now looks a little emptier (seen in bench/loop.py)."""
    te, net = diamond(te_mode="reactive")
    rates = {(S1, U1): 35e6, (S2, U2): 25e6, (S1, U2): 20e6, (S3, U3): 10e6}
    _place(te, net, dict.fromkeys(rates, UPPER))
    _measure(te, {(1, 2): 90e6, (2, 4): 90e6}, rates)
    te.relieve_links()  # after the first move: upper 55%, lower 35%; the 10 would make it 45% / 45%
    assert net.pairs_installed() == [((S1, U1), [4, 3, 1])] and te.forwarding.paths[(S3, U3)] == UPPER


def test_a_pair_is_not_moved_from_one_hot_path_to_another_for_a_few_points(diamond):
    """60 + 30 on one path, 60 on the other: every placement leaves a path at 90%. Moving the 30 over would gain
    6 points of measured noise and flap back a hold-down later."""
    te, net = diamond(te_mode="reactive")
    _place(te, net, {(S1, U1): UPPER, (S2, U2): UPPER})
    _measure(te, {(1, 2): 93e6, (2, 4): 93e6, (1, 3): 57e6, (3, 4): 57e6}, {(S1, U1): 63e6, (S2, U2): 30e6})
    te.relieve_links()
    assert net.flow_mods() == []
    # A heavily overloaded path is still relieved onto a busy one when that wins clearly (150% -> 120%).
    _measure(te, {(1, 2): 150e6, (2, 4): 150e6, (1, 3): 70e6, (3, 4): 70e6}, {(S1, U1): 120e6, (S2, U2): 30e6})
    te.relieve_links()
    assert te.forwarding.paths[(S2, U2)] == LOWER and net.pairs_installed() == [((S2, U2), [4, 3, 1])]


def test_a_move_counts_before_the_measurements_show_it(diamond):
    """Rates lag a move by a stats interval or two: the next tick must not see the old path as hot as before and move
    a second pair after the first."""
    te, net = diamond(te_mode="reactive", te_holddown_s=5)
    _place(te, net, {(S1, U1): UPPER, (S2, U2): UPPER, (S3, U3): UPPER})
    stale = ({(1, 2): 130e6, (2, 4): 130e6}, {(S1, U1): 60e6, (S2, U2): 40e6, (S3, U3): 30e6})
    _measure(te, *stale)
    te.relieve_links()
    assert net.pairs_installed() == [((S1, U1), [4, 3, 1])]
    _measure(te, *stale)  # the next tick, before the rates have caught up
    te.relieve_links()
    assert net.pairs_installed() == [((S1, U1), [4, 3, 1])]


def test_a_move_is_not_counted_again_once_the_measurements_show_it(diamond):
    """A sample taken a stats interval after the move has the pair on its new path already: adding the move again
    would double it there, the new path would look hot and a pair would be moved back."""
    te, net = diamond(te_mode="reactive", te_holddown_s=5)
    _place(te, net, {(S1, U1): UPPER, (S2, U2): UPPER, (S3, U3): UPPER})
    _measure(te, {(1, 2): 130e6, (2, 4): 130e6}, {(S1, U1): 60e6, (S2, U2): 40e6, (S3, U3): 30e6})
    te.relieve_links()
    assert net.pairs_installed() == [((S1, U1), [4, 3, 1])]
    half = te.settings.stats_interval_s / 2  # a sample half an interval after the move shows half of it
    _measure(te, {(1, 2): 130e6 - 30e6, (1, 3): 30e6}, {(S1, U1): 60e6, (S2, U2): 40e6, (S3, U3): 30e6}, age_s=-half)
    loads = te.measured_loads(time.time())
    assert loads[(1, 3)] == pytest.approx(60e6, rel=0.05) and loads[(1, 2)] == pytest.approx(70e6, rel=0.05)
    later = -1.1 * te.settings.stats_interval_s  # and one a whole interval after it, all of it
    _measure(te, {(1, 2): 70e6, (2, 4): 70e6, (1, 3): 60e6, (3, 4): 60e6},
             {(S1, U1): 60e6, (S2, U2): 40e6, (S3, U3): 30e6}, age_s=later)
    loads = te.measured_loads(time.time())
    assert loads[(1, 3)] == pytest.approx(60e6) and loads[(1, 2)] == pytest.approx(70e6)
    te.relieve_links()
    assert net.pairs_installed() == [((S1, U1), [4, 3, 1])]  # nothing else moved


def test_no_move_without_a_real_gain_and_cold_links_are_left_alone(diamond):
    te, net = diamond(te_mode="reactive")
    _place(te, net, {(S1, U1): UPPER, (S2, U2): LOWER})
    _measure(te, {(1, 2): 90e6, (2, 4): 90e6, (1, 3): 90e6, (3, 4): 90e6}, {(S1, U1): 90e6, (S2, U2): 90e6})
    te.relieve_links()
    assert net.flow_mods() == []
    _measure(te, {(1, 2): 50e6, (2, 4): 50e6, (1, 3): 0, (3, 4): 0}, {(S1, U1): 50e6})
    te.relieve_links()
    assert net.flow_mods() == []


INTENT = UserIntent(request_id="r9", user="u2", cell="c2", service_class="video_streaming", confidence=0.9,
                    bandwidth_mbps=60, duration_s=30, latency_class="best_effort", user_ip="10.0.0.102",
                    server_ip="10.0.0.2")


def test_proactive_places_an_intent_before_its_traffic(diamond, redis_client):
    te, net = diamond()
    _place(te, net, {(S1, U1): UPPER})
    _measure(te, {(1, 2): 60e6, (2, 4): 60e6}, {(S1, U1): 60e6})
    te.on_user_intent(INTENT)
    assert te.forwarding.paths[(S2, U2)] == LOWER and net.pairs_installed() == [((S2, U2), [4, 3, 1])]
    assert {m.cause_id for _, m in bus.read_range(redis_client, bus.Streams.AUDIT)} == {"intent:r9"}


def test_an_intent_placed_before_its_traffic_counts_once_on_its_new_path(diamond):
    """The placement is a move the measurements do not show yet, but what they will shift is what the pair carries
    (nothing yet): its announced 60 Mbit/s count once on the lower path, not once as pending and again as the move."""
    te, net = diamond()
    _place(te, net, {(S1, U1): UPPER})
    _measure(te, {(1, 2): 60e6, (2, 4): 60e6}, {(S1, U1): 60e6})
    te.on_user_intent(INTENT)
    loads = te.link_loads()
    assert loads[(1, 3)] == pytest.approx(60e6) and loads[(1, 2)] == pytest.approx(60e6)


def test_a_pairs_measured_rate_replaces_its_intents_announcement_once_established(diamond):
    """Announced 60 Mbit/s, sends 20: while the traffic is new the announcement counts (the first readings cover part
    of an interval); two stats intervals after it showed up, the path carries 20, not 60. A ping's few kbit/s are not
    the session's traffic."""
    te, net = diamond()
    te.on_user_intent(INTENT)
    pair, now = (S2, U2), time.time()
    te.count_pair_bytes(pair, now - 4.0, 0)
    te.count_pair_bytes(pair, now - 3.0, 1_000)  # 8 kbit/s: a ping
    assert te.demand(pair) == 60e6 and pair not in te.arrived_at
    te.count_pair_bytes(pair, now - 2.0, 1_000 + int(20e6 / 8))  # the session's traffic arrives
    first_link = tuple(te.forwarding.paths[pair][:2])  # where the intent placed it (no link measured: 0 + pending)
    assert te.demand(pair) == 60e6 and te.link_loads()[first_link] == pytest.approx(40e6)
    te.count_pair_bytes(pair, now, 1_000 + int(3 * 20e6 / 8))
    assert te.demand(pair) == pytest.approx(20e6) and te.link_loads()[first_link] == 0.0  # no pending: measured only
    te.on_user_intent(INTENT)  # a new announcement for the pair counts again
    assert te.demand(pair) == 60e6


def test_a_pair_placed_before_its_traffic_may_move_once_its_rate_is_established(diamond):
    """The hold-down guards traffic against being moved back and forth; a placement on an intent, before the first
    packet, guarded none. Once the measured rate has replaced the announcement, the pair is judged on it at once."""
    te, net = diamond(te_holddown_s=60)
    _place(te, net, {(S1, U1): UPPER, (S3, U3): LOWER})
    _measure(te, {(1, 2): 60e6, (2, 4): 60e6}, {(S1, U1): 60e6})
    te.on_user_intent(INTENT.model_copy(update={"bandwidth_mbps": 10}))  # announced 10: fits beside S3 -> U3
    pair = (S2, U2)
    assert te.forwarding.paths[pair] == LOWER and pair in te.moved_at
    first = te.moved_at[pair] + 1.0  # its first packets come after the placement
    for i in range(4):  # it sends 60, not 10
        te.count_pair_bytes(pair, first + i, i * int(60e6 / 8))
    assert pair not in te.moved_at and te.demand(pair) == pytest.approx(60e6)
    _measure(te, {(1, 2): 5e6, (2, 4): 5e6, (1, 3): 90e6, (3, 4): 90e6}, {(S1, U1): 5e6, (S3, U3): 30e6}, age_s=-3)
    te.relieve_links()  # the biggest pair on the hot lower path is the placed one: it moves, not S3 -> U3
    assert te.forwarding.paths[pair] == UPPER and te.forwarding.paths[(S3, U3)] == LOWER


def test_reactive_mode_does_not_act_on_intents(diamond):
    te, net = diamond(te_mode="reactive")
    _place(te, net, {(S1, U1): UPPER})
    _measure(te, {(1, 2): 60e6, (2, 4): 60e6}, {(S1, U1): 60e6})
    te.on_user_intent(INTENT)
    assert (S2, U2) not in te.forwarding.paths and net.flow_mods() == []


def test_forecast_of_a_link_counts_as_load_in_proactive_mode(diamond):
    te, net = diamond()
    _place(te, net, {(S1, U1): UPPER})
    te.on_forecast(Forecast(target="link:1-2:tx_bps", origin_ts=time.time(), step_s=60, values=[30e6, 95e6],
                            model="test"))
    assert te.link_loads()[(1, 2)] == 95e6
    te.on_forecast(Forecast(target="port:1:3:tx_bps", origin_ts=time.time(), step_s=60, values=[70e6], model="t"))
    assert te.link_loads()[(1, 3)] == 70e6


def test_proactive_te_acts_on_the_configured_upper_quantile(diamond):
    """A forecast with quantiles counts at Settings.forecast_act_quantile, not at its point values; the one without
    that quantile falls back to the point values."""
    bands = [ForecastQuantile(q=0.5, values=[30e6, 40e6]), ForecastQuantile(q=0.9, values=[60e6, 85e6]),
             ForecastQuantile(q=0.975, values=[70e6, 99e6])]
    fc = Forecast(target="link:1-2:tx_bps", origin_ts=time.time(), step_s=60, values=[30e6, 40e6], quantiles=bands,
                  model="test")
    te, _ = diamond()
    te.on_forecast(fc)
    assert te.link_loads()[(1, 2)] == 85e6
    te, _ = diamond(forecast_act_quantile=0.975)
    te.on_forecast(fc)
    assert te.link_loads()[(1, 2)] == 99e6
    te.on_forecast(fc.model_copy(update={"quantiles": bands[:2]}))  # no 0.975 band: the point values
    assert te.link_loads()[(1, 2)] == 40e6


def test_malformed_stale_and_unknown_inputs_are_counted_and_dropped(diamond):
    te, net = diamond()
    te.handle_entry("s", "1-0", {"kind": "user_intent", "v": "1", "data": "{not json"})
    old = UserIntent(ts=time.time() - 3600, request_id="r", user="u", cell="c", service_class="gaming",
                     confidence=0.5, bandwidth_mbps=5, duration_s=10, latency_class="low")
    te.handle_entry("s", "2-0", {"kind": "user_intent", "v": "1", "data": old.model_dump_json()})
    stranger = old.model_copy(update={"ts": time.time(), "user_ip": "10.9.9.9", "server_ip": "10.0.0.1"})
    te.handle_entry("s", "3-0", {"kind": "user_intent", "v": "1", "data": stranger.model_dump_json()})
    assert te.drops.counts == {"not JSON": 1, "stale": 1, "unknown hosts": 1}
    assert net.flow_mods() == []


def _forecast_entry(target: str, values: list[float]) -> dict:
    fc = Forecast(source="t", target=target, origin_ts=time.time(), step_s=10, values=values, model="test")
    return bus.entry_fields(fc)


def test_forecasts_te_cannot_place_are_counted_drops_and_other_apps_targets_are_left_alone(diamond, redis_client):
    """Unknown links, ports and cells are drops, counted by reason in the app and in Redis (netgpt:drops); a name of
    switches instead of dpids does not even parse. A cell's requests/s (allocation's) and an access port are not
    drops and change nothing."""
    redis_client.hset(bus.Keys.CELLS, mapping={"c1": "[[4, 10]]"})
    te, _ = diamond()
    te.handle_entry("f", "1-0", _forecast_entry("link:1-9:tx_bps", [1e6]))
    te.handle_entry("f", "2-0", _forecast_entry("port:7:1:tx_bps", [1e6]))
    te.handle_entry("f", "3-0", _forecast_entry("cell:c9:demand_bps", [1e6]))
    bad = {**_forecast_entry("port:1:2:tx_bps", [1e6])}
    bad["data"] = bad["data"].replace('{"kind":"port","metric":"tx_bps","dpid":1,"port_no":2,"link":null,"cell":null}',
                                      '"link:s1-s2:tx_bps"')
    te.handle_entry("f", "4-0", bad)
    te.handle_entry("f", "5-0", _forecast_entry("cell:c1:requests_rps", [5.0]))
    te.handle_entry("f", "6-0", _forecast_entry("port:4:10:tx_bps", [1e6]))  # u1's access port
    assert te.drops.counts == {"unknown forecast target": 3, "invalid forecast": 1}
    assert redis_client.hget(bus.Keys.DROPS, "TrafficEngineering:unknown forecast target") == "3"
    assert te.link_forecast == {} and te.cell_forecast == {}


def test_a_cells_forecast_demand_lands_on_the_links_into_it_beyond_what_its_pairs_carry(diamond, redis_client):
    """c1 (u1 behind switch 4) is forecast 50 Mbit/s; its one pair carries 20 on the upper path: 30 more on (2, 4).
    A cell with no pair yet has its demand split over every link into its switch."""
    redis_client.hset(bus.Keys.CELLS, mapping={"c1": "[[4, 10]]", "c2": "[[4, 11]]"})
    te, net = diamond()
    _place(te, net, {(S1, U1): UPPER})
    _measure(te, {(1, 2): 20e6, (2, 4): 20e6}, {(S1, U1): 20e6})
    te.handle_entry("f", "1-0", _forecast_entry("cell:c1:demand_bps", [10e6, 50e6]))
    loads = te.link_loads()
    assert loads[(2, 4)] == pytest.approx(50e6) and loads[(3, 4)] == 0.0 and loads[(1, 2)] == pytest.approx(20e6)
    te.handle_entry("f", "2-0", _forecast_entry("cell:c2:demand_bps", [40e6]))
    loads = te.link_loads()
    assert loads[(2, 4)] == pytest.approx(70e6) and loads[(3, 4)] == pytest.approx(20e6)
    te_reactive, _ = diamond(te_mode="reactive")
    te_reactive.on_forecast(Forecast(target="cell:c2:demand_bps", origin_ts=time.time(), step_s=10, values=[40e6],
                                     model="t"))
    assert te_reactive.link_loads()[(3, 4)] == 0.0  # reactive acts on measurements only


def test_a_move_for_a_forecast_overload_says_so(diamond, redis_client):
    """Measured 70% (under the 80% threshold), forecast 95% at the 90% quantile: the big pair moves before the
    overload, and the audit record's cause names the forecast."""
    te, net = diamond()
    _place(te, net, {(S1, U1): UPPER, (S2, U2): UPPER})
    _measure(te, {(1, 2): 70e6, (2, 4): 70e6}, {(S1, U1): 45e6, (S2, U2): 25e6})
    te.on_forecast(Forecast(target="port:1:2:tx_bps", origin_ts=time.time(), step_s=10, values=[75e6, 80e6],
                            quantiles=[ForecastQuantile(q=0.9, values=[85e6, 95e6])], model="t"))
    te.relieve_links()
    assert te.forwarding.paths[(S1, U1)] == LOWER and te.forwarding.paths[(S2, U2)] == UPPER
    causes = {m.cause_id for _, m in bus.read_range(redis_client, bus.Streams.AUDIT) if m.kind == "flow_action"}
    assert causes == {"proactive:link 1-2 at 95% (forecast)"}


def test_a_forecast_made_before_a_move_counts_the_pair_on_its_new_path(diamond):
    """The forecast of (1, 2) saw S1->U1's 45 Mbit/s there; once TE has moved the pair, that forecast must not keep the
    45 on (1, 2) (TE would then see both paths loaded and move pairs back and forth). A forecast made after the move
    is taken as it is."""
    te, net = diamond()
    _place(te, net, {(S1, U1): UPPER, (S2, U2): UPPER})
    _measure(te, {(1, 2): 70e6, (2, 4): 70e6}, {(S1, U1): 45e6, (S2, U2): 25e6})
    te.on_forecast(Forecast(target="port:1:2:tx_bps", origin_ts=time.time() - 0.5, step_s=10, values=[95e6], model="t"))
    te.relieve_links()
    assert te.forwarding.paths[(S1, U1)] == LOWER
    loads = te.link_loads()
    assert loads[(1, 2)] == pytest.approx(95e6 - 45e6) and loads[(1, 3)] == pytest.approx(45e6)
    te.on_forecast(Forecast(target="port:1:2:tx_bps", origin_ts=time.time() + 0.1, step_s=10, values=[90e6], model="t"))
    assert te.link_loads()[(1, 2)] == pytest.approx(90e6)


def test_a_pair_whose_flow_stopped_reporting_is_not_moved(diamond):
    te, net = diamond(te_mode="reactive")
    _place(te, net, {(S1, U1): UPPER, (S2, U2): UPPER})
    _measure(te, {(1, 2): 95e6, (2, 4): 95e6}, {(S2, U2): 35e6})
    _measure(te, {}, {(S1, U1): 60e6}, age_s=60)  # its flow idled out a minute ago: the 60 Mbit/s is history
    te.relieve_links()
    assert te.forwarding.paths[(S1, U1)] == UPPER and te.forwarding.paths[(S2, U2)] == LOWER


def test_pair_rates_are_counted_at_the_pairs_first_switch_only(diamond):
    te, net = diamond(te_mode="reactive")
    _place(te, net, {(S1, U1): UPPER})

    def reply(dpid, byte_count):
        st = parser.OFPFlowStats(table_id=1, duration_sec=1, duration_nsec=0, priority=10, idle_timeout=300,
                                 hard_timeout=0, flags=0, cookie=0, packet_count=1, byte_count=byte_count,
                                 match=parser.OFPMatch(eth_src=S1, eth_dst=U1), instructions=[])
        te.flow_stats_reply_handler(ofp_event.EventOFPFlowStatsReply(
            parser.OFPFlowStatsReply(net.datapaths[dpid], body=[st])))

    reply(1, 0)
    time.sleep(0.05)
    reply(1, 1_000_000)
    rate = te.measured_rate((S1, U1))
    assert 0 < rate <= 1_000_000 * 8 / 0.05
    reply(4, 10**9)  # the last switch of the path counts the same packets: not counted again
    reply(1, 500)  # a counter that went down (the flow was re-installed) is a new baseline, not a negative rate
    assert te.measured_rate((S1, U1)) == rate
