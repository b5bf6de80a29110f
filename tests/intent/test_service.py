"""The intent service on the real redis-server: which conflicts refuse an intent and which are only recorded, refused
attempts kept on record, and questions never read as flow-level intents."""
import json

import pytest

from netgpt.core import bus
from netgpt.intent import IntentError
from netgpt.intent.service import level_of, submit
from netgpt.intent.store import IntentStore
from tests.intent.test_queries import network, settings  # noqa: F401  (fixtures)


def test_a_cap_inside_a_block_is_accepted_with_the_overlap_recorded(network, settings):  # noqa: F811
    block = submit(network, "block traffic from u1 to u3", lm=None)
    cap = submit(network, "cap video in cell 1 at 5 Mbit/s", lm=None)  # overlaps the block at a lower priority
    assert {c["with"] for c in cap.measured["conflicts"]} == {block.intent_id}
    assert {c["type"] for c in cap.measured["conflicts"]} == {"correlation"}
    assert cap.state.value == "compiled"


def test_the_same_intent_twice_is_refused_and_the_attempt_kept(network, settings):  # noqa: F811
    first = submit(network, "block traffic from u1 to u3", lm=None)
    with pytest.raises(IntentError) as err:
        submit(network, "Block traffic from u1 to u3.", lm=None)
    problem = err.value.problem
    assert problem.kind == "conflict" and problem.options == [f"{first.intent_id}:redundancy"]
    kept = IntentStore(network).get(problem.intent_id)
    assert kept.state.value == "failed" and kept.history[-1].detail == problem.message


@pytest.mark.parametrize("text, level", [("Show flows on switch 2.", "high"), ("What flows does switch 2 have?", "high"),
                                         ("On switch 2, drop ARP.", "flow"), ("block traffic from u1 to u3", "high")])
def test_questions_are_never_flow_level(text, level):
    assert level_of(text) == level


def test_traffic_from_a_server_to_a_cell_is_matched_by_the_servers_port(network, settings):  # noqa: F811
    """'downloads from the cloud ... in cell 1': at the cloud's access switch, to cell 1's users, the class's server
    port as the source port."""
    from netgpt.core.messages import HighLevelIntent
    from netgpt.intent.compile import NetworkView, traffic_flows

    network.hset(bus.Keys.HOSTS, "cloud", json.dumps({"ip": "10.0.0.100", "mac": "00:00:00:00:00:64", "cell": None,
                                                     "dpid": 2, "port": 9}))
    view = NetworkView.from_redis(network)
    intent = HighLevelIntent(action="rate_limit", traffic_class="file_transfer", scope=["c1"], src="cloud",
                             rate_mbps=10)
    flows = traffic_flows(intent, view)
    cell1 = {h["ip"] for h in view.hosts.values() if h.get("cell") == "c1"}
    assert flows and {f["match"]["ipv4_dst"] for f in flows} == cell1
    assert all(f["dpid"] == view.hosts["cloud"]["dpid"] and "tcp_src" in f["match"] for f in flows)


def test_a_sentence_that_names_switches_but_holds_no_flow_rule_is_read_as_high_level(network, settings):  # noqa: F811
    record = submit(network, "avoid the link between switch 1 and switch 2", lm=None)
    assert record.level == "high" and record.intent.action.value == "avoid_link" and record.intent.link == ["s1", "s2"]
    with pytest.raises(IntentError) as err:  # nothing either reader can act on: still a structured error
        submit(network, "switch 2 is lovely today", lm=None)
    assert err.value.kind == "not_understood"
