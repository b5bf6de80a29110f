"""Which MEC node serves which cell: the allocation app's decision, as one unit (no switches, no Redis)."""
import time
from collections import deque
from types import SimpleNamespace

from controller.allocation import FAILBACK_AFTER_S, ComputeAllocation
from netgpt.messages import AgentHeartbeat, Allocation


def hb(node, cells, capacity=10.0, load=0.0):
    return AgentHeartbeat(node_id=node, address=f"10.0.0.{50 + int(node[-1])}:8100", cells=cells,
                          capacity_rps=capacity, load_rps=load)


def app(allocations=None, seen_s=60.0):
    a = ComputeAllocation.__new__(ComputeAllocation)
    a.allocations = {c: Allocation(cell=c, node_id=n, vip="10.0.0.200") for c, n in (allocations or {}).items()}
    a.intent_times, a.logger = {}, SimpleNamespace(info=lambda *x: None)
    a.first_seen = {"mec1": time.time() - seen_s, "mec2": time.time() - seen_s}
    return a


def nodes(decision):
    return {c: n for c, (n, _) in decision.items()}


def test_new_cells_go_home_and_a_failed_node_hands_its_cells_over():
    agents = {"mec1": hb("mec1", ["c1", "c2"]), "mec2": hb("mec2", ["c3", "c4"])}
    a = app()
    assert nodes(a.decide(["c1", "c2", "c3", "c4"], agents)) == {"c1": "mec1", "c2": "mec1", "c3": "mec2",
                                                                 "c4": "mec2"}
    a = app({"c1": "mec1", "c3": "mec2"})
    decision = a.decide(["c1", "c3"], {"mec2": agents["mec2"]})
    assert nodes(decision) == {"c1": "mec2", "c3": "mec2"} and "failed on mec1" in decision["c1"][1]


def test_an_overloaded_node_sheds_its_cell_to_the_node_with_most_headroom():
    agents = {"mec1": hb("mec1", ["c1"], capacity=2, load=2.5), "mec2": hb("mec2", ["c3"], capacity=10, load=1),
              "mec3": hb("mec3", ["c4"], capacity=10, load=6)}
    decision = app({"c1": "mec1"}).decide(["c1"], agents)
    assert nodes(decision) == {"c1": "mec2"} and "overloaded" in decision["c1"][1]


def test_predicted_demand_counts_against_headroom():
    agents = {"mec2": hb("mec2", [], capacity=10, load=0), "mec3": hb("mec3", [], capacity=10, load=0)}
    a = app()
    a.intent_times = {"c1": deque([time.time()] * 540)}  # 9 requests/s predicted for c1
    decision = nodes(a.decide(["c1", "c2"], agents))
    assert decision["c1"] != decision["c2"]  # c2 does not go where c1 already takes 9 of 10


def test_fail_back_waits_until_the_home_node_has_been_up_a_while_and_pins_win():
    agents = {"mec1": hb("mec1", ["c1"]), "mec2": hb("mec2", ["c3"])}
    a = app({"c1": "mec2"}, seen_s=0.0)  # mec1 just came back
    assert nodes(a.decide(["c1"], agents)) == {"c1": "mec2"}
    a.first_seen["mec1"] = time.time() - FAILBACK_AFTER_S - 0.1
    assert nodes(a.decide(["c1"], agents)) == {"c1": "mec1"}
    assert nodes(a.decide(["c1"], agents, pins={"c1": "mec2"})) == {"c1": "mec2"}
    assert nodes(a.decide(["c1"], agents, pins={"c1": "mec9"})) == {"c1": "mec1"}  # a dead pin is ignored
