"""Operator intents in natural language: parsing, validation, conflict checks and compilation to OpenFlow."""
