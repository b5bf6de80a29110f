"""The demo scenario's plan: seeded prompt order, its own prompt set, trace windows that fit, the senders' lines saved."""
import json
import subprocess

from netgpt.demo.report_data import REPLAY_FILE
from netgpt.demo.run import FULL_STEPS, QUICK_STEPS
from netgpt.demo.scenario import (BACKGROUND, DEMO_PROMPTS, HISTORY_STEPS, PROMPT_PEAK_RPS, WC98_DAY, Plan,
                                  _save_replay)
from netgpt.stack.workload import PromptReplay, TraceReplay, TRACES_DIR, load_trace


def test_the_seed_fixes_the_prompt_order():
    assert Plan(72, seed=3).prompts() == Plan(240, seed=3).prompts()
    assert Plan(72, seed=3).prompts() != Plan(72, seed=4).prompts()
    assert sorted(Plan(72, seed=3).prompts()) == sorted(DEMO_PROMPTS)


def test_demo_prompts_are_not_in_the_benchmarks_sets():
    root = TRACES_DIR.parents[1]
    bench = set()
    for path in (root / "edge_agent/data/collab_heldout.jsonl", root / "bench/collab_dev_prompts.jsonl"):
        bench |= {json.loads(line)["text"].strip().lower().rstrip("?") for line in path.read_text().splitlines()
                  if line.strip()}
    assert bench and not bench & {p.lower().rstrip("?") for p in DEMO_PROMPTS}


def test_trace_windows_fit_with_their_warm_start_history():
    for steps in (QUICK_STEPS, FULL_STEPS):
        for name, start, *_ in BACKGROUND:
            rep = TraceReplay(load_trace(name), start, steps, 1.0, 60e6)
            assert len(rep.history(HISTORY_STEPS)) == HISTORY_STEPS and rep.rates_bps().max() == 60e6
        prompts = PromptReplay(load_trace("wc98"), WC98_DAY, steps, 1.0, PROMPT_PEAK_RPS)
        assert 0 < len(prompts.send_times(0.0)) < PROMPT_PEAK_RPS * steps + 1


def test_sender_lines_are_saved_per_user(tmp_path):
    procs = [subprocess.Popen(["printf", out], stdout=subprocess.PIPE, text=True)
             for out in ("1.5 200 edge:mec1 0\n2.5 0 ReadTimeout 3\n", "3.0 200 edge:mec2 1\n", "", "")]
    _save_replay(procs, tmp_path, timeout_s=5)
    lines = [json.loads(x) for x in (tmp_path / REPLAY_FILE).read_text().splitlines()]
    assert [(x["user"], x["cell"], x["status"], x["source"], x["retries"]) for x in lines] == [
        ("u1", "c1", 200, "edge:mec1", 0), ("u1", "c1", 0, "ReadTimeout", 3), ("u2", "c2", 200, "edge:mec2", 1)]


def test_only_the_demos_own_active_intents_count_as_leftovers(redis_client):
    from netgpt.core import bus
    from netgpt.core.messages import IntentRecord
    from netgpt.demo.operator import BLOCK, CAP, leftover_ids

    recs = [IntentRecord(intent_id="a", text=CAP, state="verified"),
            IntentRecord(intent_id="b", text=BLOCK, state="withdrawn"),
            IntentRecord(intent_id="c", text=BLOCK, state="installed"),
            IntentRecord(intent_id="d", text="block traffic from u2 to u4", state="verified"),  # the operator's own
            IntentRecord(intent_id="e", text=CAP, state="failed")]
    redis_client.hset(bus.Keys.INTENTS, mapping={x.intent_id: x.model_dump_json() for x in recs})
    redis_client.hset(bus.Keys.INTENTS, "junk", "not json")
    assert leftover_ids(redis_client) == ["a", "c"]


def test_warm_start_histories_of_earlier_runs_are_dropped(redis_client):
    from netgpt.core import bus
    from netgpt.demo.scenario import drop_stale_history

    redis_client.hset(bus.Keys.FORECAST_HISTORY, mapping={
        "cell:c1:requests_rps": json.dumps({"step_s": 1.0, "end_ts": 100.0, "values": [1.0]}),
        "port:1:2:tx_bps": json.dumps({"step_s": 1.0, "end_ts": 300.0, "values": [1.0]}),
        "port:1:3:tx_bps": "not json"})
    assert sorted(drop_stale_history(redis_client, 200.0)) == ["cell:c1:requests_rps", "port:1:3:tx_bps"]
    assert list(redis_client.hkeys(bus.Keys.FORECAST_HISTORY)) == ["port:1:2:tx_bps"]
