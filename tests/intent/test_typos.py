"""Typo tolerance (netgpt.intent.typos) and the sentences it lets both rule readers take: misspelt and abbreviated
keywords are read, real words and names are not changed, misspelt protocols are asked about; and flow sentences that
hold two rules. The sentences are written here, not taken from the evaluation sets."""
import pytest

from netgpt.intent import IntentError, translate_to_flows, understand
from netgpt.intent.flows import FLOW_WORDS
from netgpt.intent.rules import RULE_WORDS
from netgpt.intent.service import level_of
from netgpt.intent.typos import corrected, one_edit


def flow(dpid, priority, match, actions):
    return {"dpid": dpid, "table_id": 0, "priority": priority, "match": match, "actions": actions}


def out(port):
    return [{"type": "OUTPUT", "port": port}]


TCP, UDP = {"eth_type": 2048, "ip_proto": 6}, {"eth_type": 2048, "ip_proto": 17}


def test_one_edit_counts_a_swap_as_one():
    assert one_edit("swtich", "switch") and one_edit("limt", "limit") and one_edit("mode", "node")
    assert one_edit("blok", "block") and one_edit("ports", "port")
    assert not one_edit("unblocked", "blocked") and not one_edit("port", "port") and not one_edit("stiwch", "switch")


@pytest.mark.parametrize("text, fixed", [
    ("on swtich 8", "on switch 8"), ("forwrad it", "forward it"), ("out prot 4", "out port 4"),
    ("drpo udp", "drop udp"), ("with priorty 400", "with priority 400"), ("to the controler", "to the controller"),
    ("prio 250", "priority 250"), ("pri 120", "priority 120"), ("sw 3:", "switch 3:"), ("sw3 drop", "switch 3 drop"),
    ("fwd ipv4 thru port 2", "forward ipv4 through port 2")])
def test_misspelt_and_abbreviated_flow_words_are_read(text, fixed):
    assert corrected(text, FLOW_WORDS)[0] == fixed


@pytest.mark.parametrize("text", [
    "in mode 3", "none of it", "a slow link", "the server", "more traffic", "unblocked hosts", "note 2",
    "to 10.0.0.3", "mac aa:bb:cc:dd:ee:ff", "ipv4 and ipv6", "host h3", "port 2o", "swt 8",  # too short to guess
    "htpp", "tpc", "udpp", "telent", "dhcp"])  # protocols: a typo there is asked about, never corrected
def test_real_words_names_numbers_and_protocols_are_not_corrected(text):
    assert corrected(text, FLOW_WORDS) == (text, []) and corrected(text, RULE_WORDS) == (text, [])


def test_a_word_as_near_two_keywords_is_left_alone():
    assert corrected("blocc it", frozenset({"block", "bloch"})) == ("blocc it", [])


@pytest.mark.parametrize("text, flows", [
    ("On swich 2, forward tcp to 10.0.0.3 out prot 4",
     [flow(2, 100, {**TCP, "ipv4_dst": "10.0.0.3"}, out(4))]),
    ("sw 3: drpo udp from 10.0.0.9", [flow(3, 300, {**UDP, "ipv4_src": "10.0.0.9"}, [])]),
    ("On switch 1, fwd ipv4 to 10.0.0.7 thru port 2, pri 120",
     [flow(1, 120, {"eth_type": 2048, "ipv4_dst": "10.0.0.7"}, out(2))]),
    ("on node 5, block icmp to 10.0.0.1 with priorty 400",
     [flow(5, 400, {"eth_type": 2048, "ip_proto": 1, "ipv4_dst": "10.0.0.1"}, [])]),
    ("On switch 4, send arp to the controler", [flow(4, 100, {"eth_type": 2054}, out("CONTROLLER"))]),
    ("in_port 3 to controller on switch 7", [flow(7, 100, {"in_port": 3}, out("CONTROLLER"))]),
])
def test_flow_sentences_with_typos(text, flows):
    assert translate_to_flows(text) == flows


@pytest.mark.parametrize("text, option", [("On switch 2, drop htpp to 10.0.0.1", "http"),
                                          ("On switch 2, drop tpc to 10.0.0.1", "tcp"),
                                          ("On switch 1, drop smpt", "smtp")])
def test_a_misspelt_protocol_is_asked_about_not_dropped_from_the_match(text, option):
    with pytest.raises(IntentError) as err:
        translate_to_flows(text)
    assert err.value.kind == "ambiguous" and option in err.value.problem.options


def test_a_protocol_no_match_field_stands_for_is_asked_about():
    with pytest.raises(IntentError) as err:  # ignoring "dhcp" would drop everything on the switch
        translate_to_flows("On switch 2 drop dhcp")
    assert err.value.kind == "ambiguous" and err.value.problem.field == "ip_proto"


def test_a_mistyped_number_is_not_guessed():
    with pytest.raises(IntentError) as err:
        translate_to_flows("On switch 1, forward to 10.0.0.3 out port 2O")
    assert err.value.kind == "ambiguous"
    with pytest.raises(IntentError):
        translate_to_flows("On mode 3, drop arp")  # "mode" is a word, not a misspelt "node"


@pytest.mark.parametrize("text, flows", [
    ("On switch 1, drop ARP and forward everything else to port 2.",
     [flow(1, 300, {"eth_type": 2054}, []), flow(1, 50, {}, out(2))]),
    ("On switch 3, forward TCP to 10.0.0.5 out port 1, then drop UDP from 10.0.0.6.",
     [flow(3, 100, {**TCP, "ipv4_dst": "10.0.0.5"}, out(1)), flow(3, 300, {**UDP, "ipv4_src": "10.0.0.6"}, [])]),
    ("On switch 2, block ssh from 10.0.0.8; send http to 10.0.0.9 out port 3",
     [flow(2, 300, {**TCP, "ipv4_src": "10.0.0.8", "tcp_dst": 22}, []),
      flow(2, 100, {**TCP, "ipv4_dst": "10.0.0.9", "tcp_dst": 80}, out(3))]),
    ("On switch 5, packets to 10.0.0.1 out port 2, and packets to 10.0.0.2 are dropped",
     [flow(5, 100, {"ipv4_dst": "10.0.0.1", "eth_type": 2048}, out(2)),
      flow(5, 300, {"ipv4_dst": "10.0.0.2", "eth_type": 2048}, [])]),
    ("On switch 6, drop all traffic from 10.0.0.1 and forward the rest out port 1",
     [flow(6, 300, {"ipv4_src": "10.0.0.1", "eth_type": 2048}, []), flow(6, 50, {}, out(1))]),
    ("On switch 1, drop telnet and ssh to 10.0.0.4",
     [flow(1, 300, {**TCP, "ipv4_dst": "10.0.0.4", "tcp_dst": 23}, []),
      flow(1, 300, {**TCP, "ipv4_dst": "10.0.0.4", "tcp_dst": 22}, [])]),
    ("On switch 3, drop packets from 10.0.0.1 and forward those from 10.0.0.2 out port 2",
     [flow(3, 300, {"ipv4_src": "10.0.0.1", "eth_type": 2048}, []),
      flow(3, 100, {"ipv4_src": "10.0.0.2", "eth_type": 2048}, out(2))]),
    # the second verb acts on the same traffic: one rule
    ("On switch 1, mark TCP to 10.0.0.2 with DSCP 10 and forward it out port 3",
     [flow(1, 100, {**TCP, "ipv4_dst": "10.0.0.2"},
           [{"type": "SET_FIELD", "field": "ip_dscp", "value": 10}, *out(3)])]),
])
def test_flow_sentences_with_two_rules(text, flows):
    assert translate_to_flows(text) == flows


def test_drop_and_forward_of_the_same_traffic_is_still_a_question():
    with pytest.raises(IntentError) as err:
        translate_to_flows("On switch 1, forward TCP to 10.0.0.3 out port 2 and drop it")
    assert err.value.kind == "ambiguous" and err.value.problem.field == "actions"


class _NoLM:
    def read(self, t):
        raise AssertionError("the LM was asked")


@pytest.mark.parametrize("text, fields", [
    ("throtle video in cell 3 to 2 mbit/s", {"action": "rate_limit", "traffic_class": "video_streaming",
                                             "scope": ["c3"], "rate_mbps": 2}),
    ("blokc web for u4", {"action": "block", "traffic_class": "web_chat", "scope": ["u4"]}),
    ("avod the link s1-s2", {"action": "avoid_link", "link": ["s1", "s2"]}),
    ("prioritse gaming in cell 1", {"action": "prioritize", "traffic_class": "gaming", "scope": ["c1"]}),
])
def test_high_level_typos_are_read_by_the_rules_without_the_lm(text, fields):
    u = understand(text, lm=_NoLM())
    assert u.by == "rules" and u.intent.model_dump(exclude_none=True, mode="json") == fields
    assert u.corrected and 0 < u.confidence < 1  # read, less surely than a sentence spelt right


def test_an_imperative_forecast_is_a_query():
    got = understand("forecast the utilisation of link s1-s3 over the next 2 hours", lm=None).intent
    assert got.action == "query" and got.subject == "link_utilization_forecast" and got.link == ["s1", "s3"]
    assert got.horizon_min == 120


def test_a_misspelt_switch_still_makes_a_flow_level_sentence():
    assert level_of("pls drop all ipv6 on swtich 8") == "flow" and level_of("sw 3: drop arp") == "flow"
