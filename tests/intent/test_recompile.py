"""The plain decisions of recompilation: the make-before-break plan between two sets of entries."""
from netgpt.intent.recompile import plan_replacement

A1 = {"dpid": 1, "table_id": 0, "priority": 300, "match": {"ipv4_src": "10.0.0.1"}, "actions": []}
A2 = {**A1, "dpid": 2}
B2 = {**A1, "dpid": 2, "match": {"ipv4_src": "10.0.0.9"}}
C3 = {**A1, "dpid": 3}


def test_the_plan_adds_only_what_is_new_and_deletes_only_what_is_gone():
    plan = plan_replacement([A1, A2], [A2, B2, C3])  # leaves switch 1, keeps A2, adds B2 and switch 3
    assert plan.add == {2: [B2], 3: [C3]} and plan.delete == {1: [A1]}
    assert plan.joined == [3] and plan.left == [1] and plan.switches == [2, 3]
    same = plan_replacement([A1, A2], [A2, A1])
    assert same.add == {} and same.delete == {} and same.joined == same.left == []


def test_an_old_entry_a_new_one_replaces_in_its_slot_is_not_deleted():
    """Same switch, table, priority and match, other actions: the new ADD replaces it on the switch, and a strict
    delete of the old one (selected by table, priority, match and the intent's cookie) would delete the new one."""
    queued = {**A1, "actions": [{"type": "SET_QUEUE", "queue_id": 1}, {"type": "OUTPUT", "port": 2}]}
    plan = plan_replacement([A1], [queued])
    assert plan.add == {1: [queued]} and plan.delete == {}


def test_accepted_conflicts_are_those_submit_recorded_either_way_round():
    from netgpt.core.messages import IntentRecord
    from netgpt.intent.recompile import accepted_conflicts

    first = IntentRecord(intent_id="a", measured={"conflicts": [{"with": "x", "type": "generalization"}]})
    forced = IntentRecord(intent_id="b", measured={"conflicts": [{"with": "a", "type": "shadowing"},
                                                                 {"with": "c", "type": "correlation",
                                                                  "at": "recompilation"}]})
    assert accepted_conflicts("a", [first, forced]) == {("x", "generalization"), ("b", "shadowing")}
    assert accepted_conflicts("b", [first, forced]) == {("a", "shadowing")}  # a refused recompilation's: not
