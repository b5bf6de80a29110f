"""The operator's part of the demo: intents in words through `netgpt intent` (the CLI, against the operator REST API
with its token), their effect measured on the network, two questions, one withdrawal.

Each step's outcome (the command's exit code and output, and what was measured) is one JSON line in the run folder;
a measurement says whether the intent's effect `holds` (block: ping loses everything; cap: iperf under the cap;
avoid: a probe whose shortest path crosses the link leaves it idle and still arrives). The intents' lifecycle itself
is read from the intent store (Keys.INTENTS) by the report.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from netgpt.core import bus
from netgpt.core.messages import IntentRecord, IntentState
from netgpt.core.settings import Settings
from netgpt.demo.report_data import OPERATOR_FILE
from netgpt.intent.service import wait_for as wait_until
from netgpt.intent.store import IntentStore
from netgpt.stack import services
from netgpt.stack.network import NetworkError, iperf

BLOCK = "block traffic from u1 to u3"
CAP, CAP_MBPS = "cap video from cell 2 at 5 Mbit/s", 5.0
VIDEO_PORT = 5004  # the video class's port (netgpt.intent.compile), which the cap's iperf uses
QUERIES = ["which links will be above 80% in the next hour?", "what is the compute load of mec1?"]
# agg1's thin uplink (mininet_topos/mec.py), taken out of service; the deterministic reader names switches s<dpid>
# (core1 is dpid 1, agg1 dpid 2): "core1" in a link does not parse without the LM reader
AVOID_LINK = ("core1", "agg1")
AVOID = "avoid the link between s1 and s2"
# The avoid's probe: UDP from the cloud to u2, whose shortest path is core1 -> agg1 -> acc2
PROBE = ("cloud", "u2", 5603, 8.0, 3.0)  # sender, receiver, UDP port, Mbit/s, seconds
PROBE_ACCESS = "acc2"  # the receiver's access switch
PROBE_LEFT_ON_LINK = 0.05  # the avoided link may carry this share of the probe's rate (LLDP, stray packets)
PROBE_ARRIVED = 0.5  # and the receiver must get this share of it (userspace OVS on shared cores loses some UDP)
CAP_SLACK = 1.1  # iperf's measured rate may exceed the cap by 10% (the meter's burst)


ENDED = {IntentState.withdrawn, IntentState.failed}
WITHDRAW_WAIT_S = 10.0


def leftover_ids(r) -> list[str]:
    """The demo's own sentences that the store still holds active (installed, verified, waiting)."""
    return sorted(rec.intent_id for rec in IntentStore(r).all()
                  if rec.text in (BLOCK, CAP, AVOID) and rec.state not in ENDED)


def _ping_loss(net, a: str, b: str) -> float:
    out = net.get(a).cmd(f"ping -c 4 -W 1 -i 0.2 {net.get(b).IP()}")
    found = re.search(r"([\d.]+)% packet loss", out)
    return float(found.group(1)) if found else 100.0


def link_ports(net, a: str, b: str) -> list[tuple[str, int]]:
    """(switch, OpenFlow port) of both ends of the link between switches a and b: their tx counters are the link's
    two directions."""
    return [(intf.node.name, intf.node.ports[intf]) for link in net.linksBetween(net.get(a), net.get(b))
            for intf in (link.intf1, link.intf2)]


def tx_bytes(ports: list[tuple[str, int]]) -> int:
    """Bytes sent so far by these switch ports, from OVS's own counters (ovs-ofctl dump-ports)."""
    total = 0
    for switch, port in ports:
        out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-ports", switch, str(port)], capture_output=True,
                             text=True, timeout=10).stdout.replace(",", "")
        found = re.search(r"tx pkts=\S+ bytes=(\d+)", out)
        if not found:
            raise NetworkError(f"no tx counter for {switch} port {port}: {out.strip()[-200:]}")
        total += int(found.group(1))
    return total


def probe(net, watch: dict[str, list[tuple[str, int]]]) -> dict[str, float]:
    """Send PROBE (UDP at a fixed rate, iperf started and stopped by PID) and return the Mbit/s that each watched set
    of switch ports sent meanwhile."""
    src, dst, port, mbps, seconds = PROBE
    server = net.get(dst).popen(["iperf", "-s", "-u", "-p", str(port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)  # the server listens by then
        before, t0 = {k: tx_bytes(v) for k, v in watch.items()}, time.monotonic()
        client = net.get(src).popen(["iperf", "-c", net.get(dst).IP(), "-u", "-p", str(port), "-b", f"{mbps:g}M",
                                     "-l", "1400", "-t", f"{seconds:g}", "--no-udp-fin"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            client.wait(timeout=seconds + 10)
        finally:
            services.stop_child(client, timeout_s=2)
        time.sleep(0.2)  # the last datagrams through the switches
        elapsed = time.monotonic() - t0
        return {k: round((tx_bytes(v) - before[k]) * 8 / elapsed / 1e6, 3) for k, v in watch.items()}
    finally:
        services.stop_child(server, timeout_s=2)


class Operator:
    def __init__(self, net, s: Settings, run_dir: Path, log):
        self.net, self.s, self.run_dir, self.log = net, s, run_dir, log
        self.env = services.settings_env(s)
        self.store = IntentStore(bus.connect(s))
        self.ids: dict[str, str] = {}  # sentence -> intent id
        if [int(net.get(x).dpid, 16) for x in AVOID_LINK] != [1, 2]:
            raise NetworkError(f"{AVOID!r} is meant for {'-'.join(AVOID_LINK)}, which are not switches 1 and 2 here")

    def _cli(self, *args: str, timeout_s: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "netgpt.cli", "intent", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout_s)

    def _save(self, step: str, **fields) -> None:
        with open(self.run_dir / OPERATOR_FILE, "a") as f:
            f.write(json.dumps({"step": step, "ts": time.time(), **fields}) + "\n")

    def _record(self, text: str, since: float) -> IntentRecord | None:
        """The store's newest record of this sentence submitted since `since`."""
        mine = [rec for rec in self.store.all() if rec.text == text and rec.ts >= since - 1]  # all(): oldest first
        return mine[-1] if mine else None

    def _withdraw(self, ids: list[str], why: str) -> None:
        for intent_id in ids:
            done = self._cli("withdraw", intent_id)
            self.log(f"  operator: {intent_id} withdrawn ({why})" if done.returncode == 0 else
                     f"  operator: {intent_id} not withdrawn: {(done.stdout + done.stderr).strip()[-200:]}")

    def clear_leftovers(self) -> None:
        """The intent store outlives a run (Redis keeps it): the demo's own sentences still active from an earlier,
        interrupted run would conflict with this run's, so they go first."""
        self._withdraw(leftover_ids(self.store.r), "left active by an earlier demo run")

    def withdraw_own(self) -> None:
        """At the end of the day: what this run submitted and still holds, so the next run starts clean."""
        active = {rec.intent_id for rec in self.store.all() if rec.state not in ENDED}
        self._withdraw([i for i in self.ids.values() if i in active], "the demo's day is over")

    def submit(self, text: str) -> IntentRecord | None:
        since = time.time()
        done = self._cli("submit", text, "--wait")
        rec = self._record(text, since)
        if rec is not None:
            self.ids[text] = rec.intent_id
        state = rec.state.value if rec else "not in the store"
        self.log(f"  operator: {text!r} -> {state}")
        self._save("submit", text=text, rc=done.returncode, output=(done.stdout + done.stderr)[-400:],
                   intent_id=rec.intent_id if rec else None)
        return rec

    def block(self) -> None:
        before = _ping_loss(self.net, "u1", "u3")
        self.submit(BLOCK)
        after = _ping_loss(self.net, "u1", "u3")
        self.log(f"  ping u1 -> u3: {before:.0f}% loss before the block, {after:.0f}% after")
        self._save("measure", text=BLOCK, what="ping u1 -> u3 loss %", before=before, after=after,
                   holds=before < 100 and after == 100)

    def cap(self) -> None:
        self.submit(CAP)
        try:
            mbps = iperf(self.net, "u2", "cloud", seconds=3, port=VIDEO_PORT)
        except NetworkError as exc:
            self.log(f"  iperf on the video port: {exc}")
            return
        self.log(f"  iperf u2 -> cloud on the video port: {mbps:.2f} Mbit/s (capped at {CAP_MBPS:g})")
        self._save("measure", text=CAP, what="TCP iperf u2 -> cloud, video port, Mbit/s", after=mbps,
                   holds=0 < mbps <= CAP_MBPS * CAP_SLACK)

    def avoid(self) -> None:
        """Take agg1's uplink out of service; a probe whose shortest path crosses it, before and after, must leave
        it idle afterwards and still arrive (over the aggregation ring)."""
        src, dst, _port, mbps, seconds = PROBE
        access = PROBE_ACCESS  # the receiver's switch: its port toward the receiver counts what arrived
        watch = {"link": link_ports(self.net, *AVOID_LINK),
                 "arrived": [(sw, n) for sw, n in link_ports(self.net, access, dst) if sw == access]}
        before = probe(self.net, watch)
        rec = self.submit(AVOID)
        if rec is not None and rec.state not in ENDED | {IntentState.verified}:  # --wait may stop at installed
            rec = wait_until(self.store.r, rec.intent_id, ENDED | {IntentState.verified}, WITHDRAW_WAIT_S)
        if rec is None or rec.state != IntentState.verified:
            self.log("  operator: the avoid was not applied, nothing to measure")
            return
        after = probe(self.net, watch)
        holds = after["link"] <= PROBE_LEFT_ON_LINK * mbps and after["arrived"] >= PROBE_ARRIVED * mbps
        self.log(f"  probe {src} -> {dst} at {mbps:g} Mbit/s: {'-'.join(AVOID_LINK)} carried {before['link']:.2f} "
                 f"Mbit/s before the avoid, {after['link']:.2f} after; {after['arrived']:.2f} Mbit/s arrived")
        self._save("measure", text=AVOID, what=f"UDP probe {src} -> {dst} {mbps:g} Mbit/s for {seconds:g} s: Mbit/s "
                   f"on {'-'.join(AVOID_LINK)} (both ways, switch counters)", before=before["link"],
                   after=after["link"], arrived=after["arrived"], holds=holds)

    def ask(self) -> None:
        for question in QUERIES:
            done = self._cli("ask", question, "--json")
            try:
                answer = json.loads(done.stdout)["text"] if done.returncode == 0 else None
            except (ValueError, KeyError):
                answer = None
            lines = (answer or done.stderr.strip() or "-").splitlines()  # the numbers first; the report has it all
            self.log(f"  operator asks {question!r}: " + "\n    ".join(line[:200] for line in lines[:2]))
            self._save("ask", text=question, rc=done.returncode, answer=answer, error=done.stderr.strip()[-300:])

    def withdraw_block(self) -> None:
        intent_id = self.ids.get(BLOCK)
        if intent_id is None:
            self.log("  operator: nothing to withdraw (the block has no record)")
            return
        done = self._cli("withdraw", intent_id)
        # the controller removes the entries (acknowledged by each switch), then records the withdrawal
        rec = wait_until(self.store.r, intent_id, {IntentState.withdrawn}, WITHDRAW_WAIT_S)
        if rec is None or rec.state != IntentState.withdrawn:
            self.log(f"  operator: the block is {rec.state.value if rec else 'gone'} {WITHDRAW_WAIT_S:g} s after "
                     "its withdrawal")
        after = _ping_loss(self.net, "u1", "u3")
        self.log(f"  operator withdraws the block: ping u1 -> u3 {after:.0f}% loss")
        self._save("withdraw", text=BLOCK, intent_id=intent_id, rc=done.returncode)
        self._save("measure", text=BLOCK, what="ping u1 -> u3 loss % after the withdrawal", after=after,
                   holds=after < 100, withdrawal=True)
