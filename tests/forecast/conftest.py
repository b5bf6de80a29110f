"""Shared fixtures for the forecasting tests: a small generated series (period 48: half-hour steps) keeps them fast."""
import numpy as np
import pytest

from netgpt.edge_agent.forecast.data import synthetic_link_trace

PERIOD = 48


@pytest.fixture(scope="session")
def diurnal() -> np.ndarray:
    """Four weeks of a generated diurnal + weekly series with AR noise, bursts and level shifts."""
    return synthetic_link_trace(n_days=28, period=PERIOD, seed=7)
