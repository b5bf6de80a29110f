"""One classifier trained from the GENERATED data for the whole test session (embedding it is the slow part)."""
import pytest


@pytest.fixture(scope="session")
def trained_classifier():
    from edge_agent.user_intent import UserIntentClassifier

    return UserIntentClassifier.train_default()
