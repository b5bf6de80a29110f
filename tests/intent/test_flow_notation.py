"""Flow-level sentences in the ways operators write them (issue 11, the classes of failure found on the blind2 set):
switches and ports in words, arrows, terse transport ports, IPv6, ARP sender/target, two rules in one sentence, an
output per switch, a default rule that floods. The sentences are this test's own, not the evaluation set's.
"""
import pytest

from netgpt.intent import IntentError, translate_to_flows


def entry(dpid, priority, match, actions):
    return {"dpid": dpid, "table_id": 0, "priority": priority, "match": match, "actions": actions}


def out(*ports):
    return [{"type": "OUTPUT", "port": p} for p in ports]


def asks(text, kind="ambiguous"):
    with pytest.raises(IntentError) as err:
        translate_to_flows(text)
    assert err.value.kind == kind
    return err.value.problem


@pytest.mark.parametrize("text, want", [
    ("On switch eleven, forward UDP from 10.1.1.1 out port four.",
     [entry(11, 100, {"eth_type": 2048, "ip_proto": 17, "ipv4_src": "10.1.1.1"}, out(4))]),
    ("In node nineteen, traffic arriving on port seven goes out port twelve.",
     [entry(19, 100, {"in_port": 7}, out(12))]),
    ("switches two and three: drop telnet",
     [entry(d, 300, {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 23}, []) for d in (2, 3)]),
    ("On switch four, put ICMP to 10.0.0.8 in queue two on port five.",
     [entry(4, 200, {"eth_type": 2048, "ip_proto": 1, "ipv4_dst": "10.0.0.8"},
            [{"type": "SET_QUEUE", "queue_id": 2}, *out(5)])]),
])
def test_switches_ports_and_queues_in_words(text, want):
    assert translate_to_flows(text) == want


def test_number_words_elsewhere_stay_words():
    # "one" is no port here: nothing after a keyword, so the sentence reads as before
    assert translate_to_flows("switch 2: forward the one flow from 10.0.0.4 out port 1") == [
        entry(2, 100, {"eth_type": 2048, "ipv4_src": "10.0.0.4"}, out(1))]


@pytest.mark.parametrize("text, want", [
    ("dpid 2: udp to 10.0.0.8 -> queue 2 then port 5",
     [entry(2, 200, {"eth_type": 2048, "ip_proto": 17, "ipv4_dst": "10.0.0.8"},
            [{"type": "SET_QUEUE", "queue_id": 2}, *out(5)])]),
    ("switch 9: ssh from 10.0.0.1 => drop",
     [entry(9, 300, {"eth_type": 2048, "ip_proto": 6, "ipv4_src": "10.0.0.1", "tcp_dst": 22}, [])]),
    ("openflow 4: tcp from 10.0.0.1 \u2192 controller",
     [entry(4, 100, {"eth_type": 2048, "ip_proto": 6, "ipv4_src": "10.0.0.1"}, out("CONTROLLER"))]),
    ("switch 1: arp -> 3", [entry(1, 100, {"eth_type": 2054}, out(3))]),
    ("switch 6: udp from 10.0.0.2 -> out 7", [entry(6, 100, {"eth_type": 2048, "ip_proto": 17,
                                                               "ipv4_src": "10.0.0.2"}, out(7))]),
    ("On switch 2, send ARP out 3.", [entry(2, 100, {"eth_type": 2054}, out(3))]),
])
def test_arrow_notation(text, want):
    assert translate_to_flows(text) == want


@pytest.mark.parametrize("text, match", [
    ("switch 1: udp src 123 -> port 2", {"eth_type": 2048, "ip_proto": 17, "udp_src": 123}),
    ("On switch 1, tcp dst 8443 goes out port 2.", {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 8443}),
    ("switch 1: tcp_dst=22 -> port 2", {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 22}),
    ("On switch 1, send tcp traffic with destination 5353 out port 2.",
     {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 5353}),
])
def test_transport_port_without_the_word_port(text, match):
    assert translate_to_flows(text) == [entry(1, 100, match, out(2))]


def test_a_bare_transport_number_is_asked_about_not_dropped():
    # before, "destination 5353" was left unread and the rule dropped all traffic
    assert "TCP or UDP" in asks("On switch 2, drop traffic to destination 5353.").question


@pytest.mark.parametrize("text, want", [
    ("switch 8: ipv6 from fe80::1 to fe80::2 -> port 4",
     [entry(8, 100, {"eth_type": 34525, "ipv6_src": "fe80::1", "ipv6_dst": "fe80::2"}, out(4))]),
    ("switch 8: tcp to 2001:db8:0:1::/64 out port 2",
     [entry(8, 100, {"eth_type": 34525, "ip_proto": 6, "ipv6_dst": "2001:db8:0:1::/64"}, out(2))]),
    ("On switch 8, drop traffic between 2001:db8::1 and 2001:db8::2.",
     [entry(8, 300, {"eth_type": 34525, "ipv6_src": a, "ipv6_dst": b}, [])
      for a, b in (("2001:db8::1", "2001:db8::2"), ("2001:db8::2", "2001:db8::1"))]),
])
def test_ipv6_addresses(text, want):
    assert translate_to_flows(text) == want


def test_ipv6_mistakes_are_refused_not_widened():
    assert asks("switch 8: drop traffic from 2001:db8::zz", kind="invalid").field == "ipv6"
    asks("switch 8: drop traffic from 2001:db8::1 to 10.0.0.2")  # IPv4 or IPv6?
    asks("switch 8: drop ipv4 traffic from 2001:db8::1")


@pytest.mark.parametrize("text, match, actions, prio", [
    ("On switch 3, ARP requests whose sender IP is 10.0.0.7 go to the controller.",
     {"eth_type": 2054, "arp_spa": "10.0.0.7"}, out("CONTROLLER"), 100),
    ("On switch 3, send ARP with target address 10.0.0.9 out port 2.",
     {"eth_type": 2054, "arp_tpa": "10.0.0.9"}, out(2), 100),
    ("On switch 3, drop ARP from 10.0.0.5.", {"eth_type": 2054, "arp_spa": "10.0.0.5"}, [], 300),
])
def test_arp_sender_and_target(text, match, actions, prio):
    assert translate_to_flows(text) == [entry(3, prio, match, actions)]


def test_sender_or_target_without_arp_is_still_asked():
    asks("On switch 3, drop packets whose target IP is 10.0.0.4.")


def test_two_rules_that_differ_by_address_and_output():
    assert translate_to_flows("On switch 6, forward DNS to 10.0.0.53 out port 1 and DNS to 10.0.0.54 out port 2.") == [
        entry(6, 100, {"eth_type": 2048, "ip_proto": 17, "ipv4_dst": "10.0.0.53", "udp_dst": 53}, out(1)),
        entry(6, 100, {"eth_type": 2048, "ip_proto": 17, "ipv4_dst": "10.0.0.54", "udp_dst": 53}, out(2))]
    assert translate_to_flows("On switch 6, packets from 10.0.0.1 leave via port 2, and the replies from 10.0.0.2 "
                              "leave via port 1.") == [
        entry(6, 100, {"ipv4_src": "10.0.0.1", "eth_type": 2048}, out(2)),
        entry(6, 100, {"ipv4_src": "10.0.0.2", "eth_type": 2048}, out(1))]


def test_between_stays_one_pair_of_rules():
    assert translate_to_flows("On switch 6, forward traffic between 10.0.0.1 and 10.0.0.2 out port 3.") == [
        entry(6, 100, {"ipv4_src": a, "ipv4_dst": b, "eth_type": 2048}, out(3))
        for a, b in (("10.0.0.1", "10.0.0.2"), ("10.0.0.2", "10.0.0.1"))]


def test_an_output_per_switch():
    match = {"eth_type": 2048, "ip_proto": 6, "ipv4_dst": "10.0.0.9", "tcp_dst": 443}
    assert translate_to_flows("Forward HTTPS to 10.0.0.9 out port 4 on switch 3 and out port 1 on switch 7.") == [
        entry(3, 100, match, out(4)), entry(7, 100, match, out(1))]
    # one switch, one output: as before
    assert translate_to_flows("Forward HTTPS to 10.0.0.9 out port 4 on switch 3.") == [entry(3, 100, match, out(4))]


def test_protocols_listed_give_a_rule_each_and_mixed_ones_are_asked():
    assert translate_to_flows("On switch 2, drop tcp and udp from 10.0.0.1.") == [
        entry(2, 300, {"eth_type": 2048, "ip_proto": p, "ipv4_src": "10.0.0.1"}, []) for p in (6, 17)]
    asks("switch 2: drop tcp src port 99 and udp dst 53")  # which port is whose?
    asks("On switch 2, drop http and udp from 10.0.0.1.")  # http is TCP


@pytest.mark.parametrize("text, port", [
    ("switch 4: anything not matched by a higher-priority rule goes to the controller", "CONTROLLER"),
    ("switch 4: unmatched traffic is flooded", "FLOOD"),
    ("switch 4: flood packets matching no other rule", "FLOOD"),
    ("On switch 4, whatever does not match any other rule should be flooded.", "FLOOD"),
])
def test_flood_or_forward_as_the_default_rule(text, port):
    assert translate_to_flows(text) == [entry(4, 50, {}, out(port))]


def test_flooding_specific_traffic_stays_a_specific_forward():
    assert translate_to_flows("On switch 4, flood ARP.") == [entry(4, 100, {"eth_type": 2054}, out("FLOOD"))]


@pytest.mark.parametrize("text", ["On switch five, drop ICMP.", "node twelve: arp -> 2"])
def test_a_switch_named_in_words_is_flow_level(text):
    from netgpt.intent.service import level_of
    assert level_of(text) == "flow"


def test_tens_in_words_and_numbers_too_big_to_read_in_words():
    assert translate_to_flows("On switch twenty-one, drop UDP to 10.0.0.20 port forty two.") == [
        entry(21, 300, {"eth_type": 2048, "ip_proto": 17, "ipv4_dst": "10.0.0.20", "udp_dst": 42}, [])]
    # before, "fifty" was left unread and the drop covered all UDP to the host
    assert translate_to_flows("On switch 7, drop UDP to 10.0.0.20 port fifty.")[0]["match"]["udp_dst"] == 50
    assert "digits" in asks("On switch 2, forward arp out port two hundred.").question


def test_ofctl_style_fields_with_equals_or_colon():
    assert translate_to_flows("switch 1: in_port=3 -> 4") == [entry(1, 100, {"in_port": 3}, out(4))]
    assert translate_to_flows("dpid=5 udp_src=68 udp_dst=67 -> controller") == [
        entry(5, 100, {"eth_type": 2048, "ip_proto": 17, "udp_src": 68, "udp_dst": 67}, out("CONTROLLER"))]
    asks("hello switch 4, how is the controller?", kind="not_understood")


def test_a_part_takes_the_protocol_named_before_it_not_after_it():
    assert translate_to_flows("On switch 2, traffic to 10.0.0.1 goes out port 5 and ARP goes out port 6.") == [
        entry(2, 100, {"ipv4_dst": "10.0.0.1", "eth_type": 2048}, out(5)), entry(2, 100, {"eth_type": 2054}, out(6))]
    assert translate_to_flows("On switch 2, ARP from 10.0.0.1 goes out port 5, and from 10.0.0.2 out port 6.") == [
        entry(2, 100, {"eth_type": 2054, "arp_spa": a}, out(p)) for a, p in (("10.0.0.1", 5), ("10.0.0.2", 6))]
