"""The `complete` task's generator (models/complete_task.py): seeded, its targets state only facts of the generated
cell and only the relevant ones, the user's words stay in the prompt, and the format is the one the edge renders."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from netgpt.models import complete_task, tasks


def test_the_generator_is_seeded():
    a, b = complete_task.completion_examples(50, seed=3), complete_task.completion_examples(50, seed=3)
    assert a == b
    assert [e.prompt for e in complete_task.completion_examples(50, seed=4)] != [e.prompt for e in a]
    # the registry serves the same examples as (prompt, target) pairs
    assert [(e.prompt, e.target) for e in a] == [(e.prompt, e.target) for e in tasks.make_examples("complete", 50, 3)]


def test_targets_state_only_true_facts_of_the_generated_cell():
    for e in complete_task.completion_examples(400, seed=0):
        cell, prompt, target = e.cell, e.prompt, e.target
        assert prompt.startswith(f"Location: {cell.city}, {cell.country}.\n") and prompt.endswith(f"Request: {e.request}")
        assert target.startswith(f" I am in {cell.city}, {cell.country}") and target.endswith(".")
        assert "\n" not in target
        if e.place is not None:  # a listed place, and one offering what the request wants
            assert e.place in {name for name, _, _ in cell.places} and f", near {e.place}" in target
            assert f"- {e.place}: " in prompt
        else:
            assert " near " not in target
        now = re.search(r"\nNow: (\w+) (\d\d:\d\d)\.\n", prompt)
        if e.clock is not None:
            assert e.clock == (now.group(1), now.group(2)) and target.endswith(f"; it is {now.group(1)} {now.group(2)}.")
        else:
            assert "; it is " not in target
        # every capitalised word and number of the target comes from the prompt: nothing is added from elsewhere
        for token in re.findall(r"\b(?:[A-Z][\w'-]*|\d[\d:]*)", target):
            assert token == "I" or token in prompt, (token, e)


def test_the_clock_is_the_cells_local_time_on_a_real_time_zone():
    e = next(x for x in complete_task.completion_examples(200, seed=1) if x.clock)
    assert ZoneInfo(e.cell.tz)  # a real IANA zone of the real city
    weekday, clock = e.clock
    assert weekday in {datetime(2026, 1, d, tzinfo=timezone.utc).strftime("%A") for d in range(5, 12)}
    assert re.fullmatch(r"[0-2]\d:[0-5]\d", clock)


def test_places_are_chosen_by_what_the_request_wants():
    food = frozenset({"food"})
    cell = complete_task.GenCell("Lyon", "France", "Europe/Paris", (
        ("Amo Tower", "observation deck", frozenset({"views", "sights"})),
        ("Ka Market", "food market", frozenset({"food", "shopping"}))))
    import random
    assert complete_task.best_place(food, cell, random.Random(0)) == "Ka Market"
    assert complete_task.best_place(frozenset({"kids"}), cell, random.Random(0)) is None  # nothing fits: no place
    # relevance is not always "a place": requests that want none get none, and about a third get no clock
    examples = complete_task.completion_examples(400, seed=0)
    assert 0.1 < sum(e.place is None for e in examples) / len(examples) < 0.6
    assert 0.1 < sum(e.clock is None for e in examples) / len(examples) < 0.6


def test_the_complete_task_is_time_capped_on_a_shared_machine():
    from netgpt.models.lora import LoraTaskConfig

    cfg = LoraTaskConfig(task="complete")
    assert cfg.max_minutes and cfg.top_layers == 8 and cfg.n_eval <= 40 and cfg.n_generate <= 12
    assert LoraTaskConfig(task="intent").max_minutes is None and LoraTaskConfig(task="intent").n_eval == 200


def test_a_time_capped_run_stops_and_adapts_only_the_top_blocks(load_tiny, tmp_path):
    """The cap shortens the run to the steps that fit (the card says how many ran), and top_layers puts LoRA weights
    in the last blocks only. The tiny 2-layer LLaMA with the `complete` task: its prompts are cut to 128 tokens."""
    from netgpt.models.lora import LoraTaskConfig, train_adapter

    model, tokenizer = load_tiny("llama")
    cfg = LoraTaskConfig(task="complete", steps=100000, batch_size=2, n_train=20, n_eval=4, n_generate=1,
                         max_len=96, top_layers=1, max_minutes=0.02)
    result = train_adapter(model, tokenizer, cfg, tmp_path / "complete", progress=False)
    assert 4 <= result["card"]["steps"] < 100000
    adapted = {n.split(".layers.")[1].split(".")[0] for n, _ in result["model"].named_parameters() if "lora_" in n}
    assert adapted == {"1"}  # the top block of two
