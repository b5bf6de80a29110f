"""Operator intents in natural language: parsing, validation, conflict checks and compilation to OpenFlow.

Built so far: `classify_conflict` (conflicts.py), the conflict type between two OpenFlow flow entries.
"""
from netgpt.intent.conflicts import classify_conflict

__all__ = ["classify_conflict"]
