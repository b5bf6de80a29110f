"""Operator intents -> the network: the Ryu side. Ryu's events and the intent stream become calls on the lifecycle
(netgpt.intent.lifecycle.IntentLifecycle: install all-or-nothing, verify, withdraw on command or expiry, re-install
after a restart or a switch reconnect, recompile when the network changes, with the conflict check; its docstring
says how), which the installer (netgpt.controller.intent_installer) carries out over OpenFlow.

Reads OperatorIntent and IntentWithdrawal messages (consumer group 'controller-intents' on netgpt:operator_intents),
which the intent service (netgpt.intent.service) sends after compiling an operator's words against the network
(netgpt.intent.compile): every name is already a dpid, a port or an address, so the controller only installs.
"""
import time

from ryu.base import app_manager
from ryu.controller import ofp_event
from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
from ryu.lib import hub
from ryu.topology import event as topo_event

from netgpt.controller.base import NetgptApp
from netgpt.controller.intent_installer import IntentInstaller
from netgpt.core import bus
from netgpt.core.messages import IntentWithdrawal, MessageError, OperatorIntent
from netgpt.intent.lifecycle import IntentLifecycle
from netgpt.intent.store import IntentStore

app_manager.require_app("ryu.app.ofctl.service")

GROUP, CONSUMER = "controller-intents", "operator-intents"
VERIFY_EVERY_S = 5.0
RESTORE_WAIT_S = 30.0  # after a start, how long restoring waits for an intent's switches to connect


class OperatorIntents(NetgptApp):
    REDIS_TIMEOUT_S = 5.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.installer = IntentInstaller(self)
        self.lifecycle = IntentLifecycle(IntentStore(self.redis), self.installer, lock=hub.Semaphore(1),
                                         log=self.logger)

    def start(self):
        super().start()
        hub.spawn(self._clock_loop)
        hub.spawn(self._restore_then_consume)

    # what tests and tools look at
    active = property(lambda self: self.lifecycle.active)
    waiting = property(lambda self: self.lifecycle.waiting)
    meters = property(lambda self: self.installer.meters)

    def verify(self, intent_id: str) -> None:
        self.lifecycle.verify(intent_id)

    def recheck(self, retry: bool = False) -> None:
        self.lifecycle.recheck(retry=retry)

    def expire(self, now: float) -> None:
        self.lifecycle.expire(now)

    # --- Ryu events -----------------------------------------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error_msg_handler(self, ev):
        msg = ev.msg
        self.installer.error(msg.xid, f"OpenFlow error type {msg.type} code {msg.code}")

    @set_ev_cls(ofp_event.EventOFPStateChange, MAIN_DISPATCHER)
    def switch_connected_handler(self, ev):
        """A switch (re)connected with empty tables: give it back every active intent's entries."""
        dpid = ev.datapath.id
        for intent_id in self.lifecycle.on_switch(dpid):
            hub.spawn(self.lifecycle.reinstall, intent_id, f"switch {dpid} reconnected")

    @set_ev_cls(topo_event.EventLinkAdd)
    def link_add_handler(self, ev):
        """A link came (back): an avoid_link intent on it applies again (the forwarding app gives a new link the
        default weight). Later than the forwarding app's own handler of the same event, whose order is not fixed."""
        for intent_id in self.lifecycle.on_link(ev.link.src.dpid, ev.link.dst.dpid):
            hub.spawn_after(0.5, self._avoid_again, intent_id)

    def _avoid_again(self, intent_id: str) -> None:
        active = self.lifecycle.active.get(intent_id)
        if active is not None and self.installer.avoid_again(active[1]):
            self.logger.info("intent %s: link %s-%s is back, avoided again", intent_id, *active[1]["link"])

    # --- the stream, the clock, the restart -----------------------------------------------------------------------

    def handle_entry(self, _stream, entry_id, fields):
        try:
            msg = bus.decode_entry(fields)
        except MessageError as exc:
            self.drops.count(exc)
            self.logger.warning("dropped operator intent %s: %s", entry_id, exc)
            return
        if isinstance(msg, IntentWithdrawal):
            self.lifecycle.withdraw(msg.intent_id, msg.reason)
        elif isinstance(msg, OperatorIntent):
            self.lifecycle.deliver(msg)
        else:
            self.drops.add("unexpected kind")

    def _restore_then_consume(self):
        """What the store holds in force first, then the stream: an intent delivered while the controller was down
        is checked for conflicts against the restored ones (first come, first served, as at submit), not the other
        way round."""
        self._restore()
        self._consume()

    def _consume(self):
        bus.consume_forever(self.redis, GROUP, CONSUMER, [bus.Streams.OPERATOR_INTENTS], self.handle_entry)

    def _restore(self):
        """After a controller start: once an intent's switches are connected and discovered (in the topology it is
        compiled again against), re-install it; at most RESTORE_WAIT_S for all of them."""
        deadline = time.monotonic() + RESTORE_WAIT_S

        def wait_for_switches(needed: set[int]) -> None:
            fwd = self.forwarding
            while fwd is None or not needed <= set(fwd.datapaths) & set(fwd.graph):
                if time.monotonic() > deadline:
                    return
                hub.sleep(0.5)
                fwd = self.forwarding

        self.lifecycle.restore(wait_for_switches)

    def _clock_loop(self):
        last_verify = 0.0
        while True:
            hub.sleep(0.5)
            now = time.time()
            verify = now - last_verify >= VERIFY_EVERY_S
            self.lifecycle.tick(now, verify)
            if verify:
                last_verify = now
