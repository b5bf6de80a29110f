"""Operator intents in natural language: parsing, validation, conflict checks and compilation to OpenFlow.

    parse_intent(text) -> HighLevelIntent          high-level intents (parse.py: rules, then the LM reader)
    translate_to_flows(text) -> list[dict]         flow-level intents as ofctl_rest entries (flows.py)
    classify_conflict(installed, new) -> str|None  the conflict type between two flow entries (conflicts.py)

Every failure is an IntentError whose `.problem` (netgpt.core.messages.IntentProblem) says what to ask the operator.
"""
from netgpt.core.messages import HighLevelIntent, IntentProblem
from netgpt.intent.conflicts import classify_conflict
from netgpt.intent.errors import IntentError
from netgpt.intent.flows import translate_to_flows
from netgpt.intent.parse import parse_intent, understand

__all__ = ["HighLevelIntent", "IntentError", "IntentProblem", "classify_conflict", "parse_intent",
           "translate_to_flows", "understand"]
