"""`netgpt demo --quick` interrupted by Ctrl-C in the middle of its scenario: every process of the run is gone, no
bridge or host interface of the MEC topology is left, and the report is still written, saying it was interrupted.

Ctrl-C is the terminal's SIGINT to the demo's whole process group (the demo starts in a session of its own here).
A process "of the run" is any whose environment names the run folder: the services `netgpt up` starts, the Mininet
hosts' shells and what runs in them inherit it."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netgpt.stack.services import free_port

pytestmark = pytest.mark.integration

MEC_SWITCHES = {"core1", "agg1", "agg2", "acc1", "acc2", "acc3", "acc4"}


def _processes_naming(path: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if path.encode() in (proc / "environ").read_bytes():
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")[:120].decode(errors="replace")
                found.append(f"{proc.name}: {cmdline}")
        except OSError:  # gone meanwhile, or a kernel thread
            continue
    return found


def _bridges() -> set[str]:
    return set(subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True).stdout.split())


def test_ctrl_c_mid_run_leaves_nothing_and_still_writes_the_report(tmp_path):
    from netgpt.stack.network import require_root

    reason = require_root()
    if reason:
        pytest.skip(reason)
    if MEC_SWITCHES & _bridges():
        pytest.skip("another MEC topology is running on this machine")
    from netgpt.core.settings import Settings

    if not (Settings().cache_dir / "models" / "cloud-default").is_dir():
        pytest.skip("the models are not built (netgpt models prepare)")
    run_dir = tmp_path / "run"
    env = {**os.environ, "NETGPT_RUN_DIR": str(run_dir), "NETGPT_REDIS_PORT": str(free_port()),
           "NETGPT_OFP_PORT": str(free_port()), "NETGPT_RYU_API_PORT": str(free_port()),
           "NETGPT_OPERATOR_API_PORT": str(free_port())}
    demo = subprocess.Popen([sys.executable, "-m", "netgpt.cli", "demo", "--quick", "--seed", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines, deadline = [], time.monotonic() + 400
    try:
        for line in demo.stdout:  # until the scenario has run a while
            lines.append(line)
            if "time-compressed day" in line or time.monotonic() > deadline:
                break
        assert any("time-compressed day" in x for x in lines), "".join(lines[-20:])
        time.sleep(15)
        os.killpg(demo.pid, signal.SIGINT)
        rest, _ = demo.communicate(timeout=180)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
    output = "".join(lines) + rest
    assert "Traceback" not in output, output[-3000:]
    assert demo.returncode == 1, output[-2000:]  # an interrupted run is not a success
    reports = list(run_dir.glob("demo-*/report.md"))
    assert len(reports) == 1, output[-2000:]
    assert "interrupted (Ctrl-C)" in reports[0].read_text()
    assert (reports[0].parent / "report.html").exists()
    time.sleep(1)
    assert not _processes_naming(str(run_dir)), _processes_naming(str(run_dir))
    assert not MEC_SWITCHES & _bridges()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not [x for x in MEC_SWITCHES if f" {x}-eth" in links], links
