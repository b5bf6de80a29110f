"""The network view the compiler reads (NetworkView.from_redis): where a host is (the controller's learned location
over the inventory's), its cell from its port, and what is absent."""
import json

import pytest

from netgpt.core import bus
from netgpt.intent import IntentError, parse_intent
from netgpt.intent.compile import NetworkView, compile_intent

U1, U2 = "00:00:00:00:00:01", "00:00:00:00:00:02"
LINKS = [{"src": 1, "dst": 2, "port": 2}, {"src": 2, "dst": 1, "port": 2}]


@pytest.fixture
def r(redis_client):
    redis_client.hset(bus.Keys.HOSTS, mapping={
        "u1": json.dumps({"ip": "10.0.0.1", "mac": U1, "cell": "c1", "dpid": 1, "port": 1}),
        "u2": json.dumps({"ip": "10.0.0.2", "mac": U2, "cell": "c2", "dpid": 2, "port": 1})})
    redis_client.hset(bus.Keys.CELLS, mapping={"c1": json.dumps([[1, 1]]), "c2": json.dumps([[2, 1]])})
    return redis_client


def topology(r, hosts: dict, switches=(1, 2)) -> None:
    r.set(bus.Keys.TOPOLOGY, json.dumps({"switches": list(switches), "links": LINKS, "hosts": hosts, "arp": {}}))


def test_the_controllers_location_wins_and_the_cell_follows_the_port(r):
    topology(r, {U1: [2, 4]})  # u1 was seen on switch 2 port 4: another port of cell c2's access switch
    view = NetworkView.from_redis(r, nodes=False)
    assert (view.hosts["u1"]["dpid"], view.hosts["u1"]["port"], view.hosts["u1"]["cell"]) == (2, 4, "c2")
    assert view.hosts["u2"]["cell"] == "c2" and sorted(view.cell_ports("c2")) == [(2, 1), (2, 4)]
    block = compile_intent(parse_intent("block traffic from u1 to u2", lm=None), view, "x")
    assert [f["dpid"] for f in block.flows] == [2]


def test_a_host_seen_on_an_inter_switch_port_is_where_the_inventory_says(r):
    topology(r, {U1: [1, 2]})  # port 1:2 is a link's: a packet that raced discovery, not the host
    assert NetworkView.from_redis(r, nodes=False).hosts["u1"]["dpid"] == 1


def test_hosts_and_cells_on_a_switch_that_is_not_connected_are_absent(r):
    topology(r, {}, switches=(1,))
    view = NetworkView.from_redis(r, nodes=False)
    assert "u2" not in view.hosts and "c2" not in view.cells
    with pytest.raises(IntentError) as err:
        compile_intent(parse_intent("block traffic from u2 to u1", lm=None), view, "x")
    assert err.value.kind == "unknown_entity" and "not attached to the network now" in err.value.problem.message
    with pytest.raises(IntentError) as err:
        view.cell_ports("c2")
    assert "no access switch in the network now" in err.value.problem.message


def test_without_a_topology_the_inventory_is_taken_as_it_is(r):
    view = NetworkView.from_redis(r, nodes=False)  # the controller has published nothing yet
    assert {n: (h["dpid"], h["cell"]) for n, h in view.hosts.items()} == {"u1": (1, "c1"), "u2": (2, "c2")}


def test_a_reservation_on_a_link_is_refused_not_compiled_without_its_link(r):
    topology(r, {})
    view = NetworkView.from_redis(r, nodes=False)
    for text in ("reserve 300 Mbps on the link between switch 1 and switch 2", "reserve 5 Mbps for gaming on s1-s2"):
        with pytest.raises(IntentError) as err:
            compile_intent(parse_intent(text, lm=None), view, "x")
        assert err.value.kind == "invalid" and err.value.problem.field == "link"


def test_compute_goes_to_cells_and_a_user_or_a_class_alone_is_refused(r):
    topology(r, {})
    view = NetworkView.from_redis(r, nodes=False)
    view.nodes = {"mec1"}
    assert compile_intent(parse_intent("serve cell 2 from mec1", lm=None), view, "x").selector == {"cells": ["c2"]}
    # the whole network: every cell (before: no cell at all, silently)
    assert compile_intent(parse_intent("allocate compute on mec1 for all cells", lm=None), view,
                          "x").selector == {"cells": ["c1", "c2"]}
    for text in ("spin up compute on mec1 for user 1", "allocate compute on mec1 for gaming"):
        with pytest.raises(IntentError) as err:
            compile_intent(parse_intent(text, lm=None), view, "x")
        assert err.value.kind == "invalid" and err.value.problem.field == "scope"
