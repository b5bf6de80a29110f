"""Flow-level sentences of the classes found on the blind3 set (issue 11): a switch per clause (each clause's rules go
to its own switch, and an unclear one is asked, never put on every switch), reserved ports as output targets, an arrow
between two addresses. The sentences are this test's own, not the evaluation set's.
"""
import pytest

from netgpt.intent import IntentError, translate_to_flows

ARP, SSH = {"eth_type": 2054}, {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 22}


def entry(dpid, priority, match, actions):
    return {"dpid": dpid, "table_id": 0, "priority": priority, "match": match, "actions": actions}


def out(*ports):
    return [{"type": "OUTPUT", "port": p} for p in ports]


def test_a_switch_opening_each_clause_gets_that_clause_only():
    # before: both outputs on both switches (four entries, silently wrong)
    assert translate_to_flows("On switch 7, send ARP to the controller; on switch 8, flood ARP.") == [
        entry(7, 100, ARP, out("CONTROLLER")), entry(8, 100, ARP, out("FLOOD"))]
    assert translate_to_flows("On switches 1 and 2, drop ssh; on switch 3 drop telnet from 10.0.0.1") == [
        entry(1, 300, SSH, []), entry(2, 300, SSH, []),
        entry(3, 300, {"eth_type": 2048, "ip_proto": 6, "ipv4_src": "10.0.0.1", "tcp_dst": 23}, [])]


def test_a_clause_about_the_same_traffic_takes_its_match():
    match = {"ipv4_dst": "10.0.0.8", "eth_type": 2048}
    assert translate_to_flows("On switch 4 send traffic to 10.0.0.8 out port 2, and on switch 5 send it out "
                              "port 9.") == [entry(4, 100, match, out(2)), entry(5, 100, match, out(9))]
    assert translate_to_flows("On switch 4, forward traffic to 10.0.0.8 out port 2, and on switch 5 drop it.") == [
        entry(4, 100, match, out(2)), entry(5, 300, match, [])]


def test_a_switch_closing_each_clause():
    assert translate_to_flows("send ARP to the controller on switch 1 and flood it on switch 2") == [
        entry(1, 100, ARP, out("CONTROLLER")), entry(2, 100, ARP, out("FLOOD"))]
    assert translate_to_flows("drop ssh on switch 1 and telnet on switch 2") == [
        entry(1, 300, SSH, []), entry(2, 300, {**SSH, "tcp_dst": 23}, [])]
    assert translate_to_flows("send arp out port 2 on switch 1 and port 3 on switch 2") == [
        entry(1, 100, ARP, out(2)), entry(2, 100, ARP, out(3))]


def test_one_list_of_switches_still_gives_every_rule_to_each():
    assert translate_to_flows("Drop ssh on switch 1 and on switch 2.") == [entry(1, 300, SSH, []),
                                                                           entry(2, 300, SSH, [])]


@pytest.mark.parametrize("text", [
    "On switch 2, send SSH to 10.0.0.4 out port 2 on switch 1 and out port 3 on switch 2",  # whose is port 2?
    "On switch 5, drop ARP and forward the rest out port 1, and on switch 6 send it out port 2",  # which "it"?
])
def test_which_output_goes_to_which_switch_is_asked_when_unclear(text):
    with pytest.raises(IntentError) as err:
        translate_to_flows(text)
    assert err.value.kind == "ambiguous"


@pytest.mark.parametrize("text, port", [
    ("On switch 6, send what arrives on port 2 back out its ingress port.", "IN_PORT"),
    ("switch 6: traffic from port 2 goes back to the input port (in_port)", "IN_PORT"),
    ("On switch 6, send whatever enters on port 2 to the reserved port ALL.", "ALL"),
    ("On switch 6, send packets arriving on port 2 out of every port.", "ALL"),
    ("On switch 6, traffic arriving on port 2 is flooded.", "FLOOD"),
    ("On switch 6, send traffic arriving on port 2 to port LOCAL.", "LOCAL"),
])
def test_reserved_ports_as_output_targets(text, port):
    assert translate_to_flows(text) == [entry(6, 100, {"in_port": 2}, out(port))]


def test_an_unknown_reserved_port_is_asked():
    with pytest.raises(IntentError) as err:
        translate_to_flows("On switch 6, send ARP to the reserved port TABLE.")
    assert err.value.kind == "ambiguous"


def test_an_arrow_between_two_addresses_is_source_and_destination():
    assert translate_to_flows("switch 9: mac 0a:00:00:00:00:01 -> 0a:00:00:00:00:02 out port 7") == [
        entry(9, 100, {"eth_src": "0a:00:00:00:00:01", "eth_dst": "0a:00:00:00:00:02"}, out(7))]
    assert translate_to_flows("switch 9: drop 10.1.0.0/16 -> 10.2.0.9") == [
        entry(9, 300, {"ipv4_src": "10.1.0.0/16", "eth_type": 2048, "ipv4_dst": "10.2.0.9"}, [])]
    assert translate_to_flows("switch 9: arp 10.1.0.1 -> 10.1.0.2 -> controller") == [
        entry(9, 100, {"eth_type": 2054, "arp_spa": "10.1.0.1", "arp_tpa": "10.1.0.2"}, out("CONTROLLER"))]


def test_a_priority_outside_every_clause_is_asked_and_one_inside_a_clause_is_its_own():
    with pytest.raises(IntentError) as err:  # before: priority 400 on switch 7's entry only
        translate_to_flows("Send ARP out port 4 on switch 3 and out port 1 on switch 7 with priority 400")
    assert err.value.kind == "ambiguous"
    with pytest.raises(IntentError) as err:  # the same traffic on switch 7: at priority 400 too?
        translate_to_flows("Send ARP with priority 400 out port 4 on switch 3 and out port 1 on switch 7")
    assert err.value.kind == "ambiguous"
    assert translate_to_flows("On switch 1 drop ARP with priority 400; on switch 2 flood ARP") == [
        entry(1, 400, ARP, []), entry(2, 100, ARP, out("FLOOD"))]
