"""The one exception of the intent layer: it carries an IntentProblem, the structured reason an operator sees."""
from __future__ import annotations

from netgpt.core.messages import IntentProblem


class IntentError(ValueError):
    def __init__(self, kind: str, message: str, *, field: str | None = None, question: str | None = None,
                 options: list[str] | None = None):
        self.problem = IntentProblem(kind=kind, message=message, field=field, question=question,
                                     options=options or [])
        super().__init__(message)

    @property
    def kind(self) -> str:
        return self.problem.kind


def ambiguous(message: str, question: str, field: str | None = None, options: list[str] | None = None) -> IntentError:
    """A clarification request: what is missing or unclear, and the question to ask the operator."""
    return IntentError("ambiguous", message, field=field, question=question, options=options)
