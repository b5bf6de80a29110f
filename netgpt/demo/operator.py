"""The operator's part of the demo: intents in words through `netgpt intent` (the CLI, against the operator REST API
with its token), their effect measured on the network, two questions, one withdrawal.

Each step's outcome (the command's exit code and output, and what was measured) is one JSON line in the run folder;
the intents' lifecycle itself is read from the intent store (Keys.INTENTS) by the report.
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
from netgpt.intent.store import IntentStore
from netgpt.stack import services
from netgpt.stack.network import NetworkError, iperf

BLOCK = "block traffic from u1 to u3"
CAP = "cap video from cell 2 at 5 Mbit/s"
VIDEO_PORT = 5004  # the video class's port (netgpt.intent.compile), which the cap's iperf uses
QUERIES = ["which links will be above 80% in the next hour?", "what is the compute load of mec1?"]


ENDED = {IntentState.withdrawn, IntentState.failed}


def leftover_ids(r) -> list[str]:
    """The demo's own sentences that the store still holds active (installed, verified, waiting)."""
    return sorted(rec.intent_id for rec in IntentStore(r).all() if rec.text in (BLOCK, CAP) and rec.state not in ENDED)


def _ping_loss(net, a: str, b: str) -> float:
    out = net.get(a).cmd(f"ping -c 4 -W 1 -i 0.2 {net.get(b).IP()}")
    found = re.search(r"([\d.]+)% packet loss", out)
    return float(found.group(1)) if found else 100.0


class Operator:
    def __init__(self, net, s: Settings, run_dir: Path, log):
        self.net, self.s, self.run_dir, self.log = net, s, run_dir, log
        self.env = services.settings_env(s)
        self.store = IntentStore(bus.connect(s))
        self.ids: dict[str, str] = {}  # sentence -> intent id

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
        self._save("measure", text=BLOCK, what="ping u1 -> u3 loss %", before=before, after=after)

    def cap(self) -> None:
        self.submit(CAP)
        try:
            mbps = iperf(self.net, "u2", "cloud", seconds=3, port=VIDEO_PORT)
        except NetworkError as exc:
            self.log(f"  iperf on the video port: {exc}")
            return
        self.log(f"  iperf u2 -> cloud on the video port: {mbps:.2f} Mbit/s (capped at 5)")
        self._save("measure", text=CAP, what="TCP iperf u2 -> cloud, video port, Mbit/s", after=mbps)

    def ask(self) -> None:
        for question in QUERIES:
            done = self._cli("ask", question, "--json")
            try:
                answer = json.loads(done.stdout)["text"] if done.returncode == 0 else None
            except (ValueError, KeyError):
                answer = None
            self.log(f"  operator asks {question!r}: {(answer or done.stderr.strip() or '-')[:160]}")
            self._save("ask", text=question, rc=done.returncode, answer=answer, error=done.stderr.strip()[-300:])

    def withdraw_block(self) -> None:
        intent_id = self.ids.get(BLOCK)
        if intent_id is None:
            self.log("  operator: nothing to withdraw (the block has no record)")
            return
        done = self._cli("withdraw", intent_id)
        time.sleep(1.0)  # the controller removes the entries and records the withdrawal
        after = _ping_loss(self.net, "u1", "u3")
        self.log(f"  operator withdraws the block: ping u1 -> u3 {after:.0f}% loss")
        self._save("withdraw", text=BLOCK, intent_id=intent_id, rc=done.returncode)
        self._save("measure", text=BLOCK, what="ping u1 -> u3 loss % after the withdrawal", after=after)
