"""The intent lifecycle without Ryu: IntentLifecycle over a stand-in for the controller's installer (what it was asked
to do, and switches that hold what they were given), on the real intent store (Redis)."""
import pytest

from netgpt.core.messages import OperatorIntent
from netgpt.intent.lifecycle import IntentLifecycle, Rejected
from netgpt.intent.store import IntentStore

DROP_ARP = {"dpid": 1, "table_id": 0, "priority": 300, "match": {"eth_type": 2054}, "actions": []}


class Switches:
    """Holds what it applied, per switch; refuses what `refuse` names."""

    def __init__(self, refuse: str = ""):
        self.calls: list[tuple[str, str]] = []
        self.held: dict[str, int] = {}
        self.refuse = refuse

    def ready(self) -> bool:
        return True

    def apply(self, intent):
        self.calls.append(("apply", intent.intent_id))
        if self.refuse:
            raise Rejected(self.refuse)
        self.held[intent.intent_id] = len(intent.flows)
        return {"flows": [(1, 0, None)], "id": intent.intent_id}

    def undo(self, state):
        self.calls.append(("undo", state["id"]))
        self.held.pop(state["id"], None)

    def replace(self, intent_id, state, old, fresh):
        raise AssertionError("flow-level intents are not recompiled")

    def read(self, state):
        return {1: (self.held.get(state["id"], 0), 0, 0)}


@pytest.fixture
def store(redis_client):
    return IntentStore(redis_client)


def test_delivered_verified_and_withdrawn_without_ryu(store):
    switches = Switches()
    lifecycle = IntentLifecycle(store, switches)
    intent = OperatorIntent(intent_id="L1", action="flows", flows=[DROP_ARP])
    lifecycle.deliver(intent)
    lifecycle.deliver(intent)  # delivered twice: applied once
    assert switches.calls == [("apply", "L1")] and store.get("L1").state.value == "verified"
    assert store.get("L1").measured["1"]["entries"] == 1
    switches.held.clear()  # the switch lost its entry: verification sees it
    lifecycle.verify("L1")
    assert store.get("L1").state.value == "installed" and "holds 0/1 entries" in store.get("L1").history[-1].detail
    lifecycle.withdraw("L1", "withdrawn by the operator")
    assert switches.calls[-1] == ("undo", "L1") and store.get("L1").state.value == "withdrawn"
    lifecycle.deliver(intent)  # again after its withdrawal: not applied
    assert switches.calls.count(("apply", "L1")) == 1 and lifecycle.active == {}


def test_a_refused_intent_fails_with_the_reason_and_is_not_active(store):
    lifecycle = IntentLifecycle(store, Switches(refuse="switch 1 refused: OpenFlow error type 5 code 0"))
    lifecycle.deliver(OperatorIntent(intent_id="L2", action="flows", flows=[DROP_ARP]))
    record = store.get("L2")
    assert record.state.value == "failed" and record.history[-1].detail == \
        "rejected: switch 1 refused: OpenFlow error type 5 code 0"
    assert lifecycle.active == {}


def test_an_expired_intent_is_undone_by_the_clock(store):
    switches = Switches()
    lifecycle = IntentLifecycle(store, switches)
    lifecycle.deliver(OperatorIntent(intent_id="L3", action="flows", flows=[DROP_ARP], expires_ts=2e9))
    lifecycle.tick(now=2e9 + 1, verify=False)
    assert switches.calls == [("apply", "L3"), ("undo", "L3")] and store.get("L3").state.value == "withdrawn"
