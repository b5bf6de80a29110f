"""One classifier trained from the GENERATED data for the whole test session (embedding it is the slow part)."""
import pytest

from netgpt.edge_agent.user_intent.classifier import UserIntentClassifier


@pytest.fixture(scope="session")
def trained_classifier():
    return UserIntentClassifier.train_default()
