"""Shared fixtures of the analytics tests: small generated sets, one OpenMP thread.

One thread because this suite runs beside other suites on two cores: OpenMP's
spin-waiting under contention made gradient boosting ~10x slower than serial.
"""
from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from analytics.data.sgcc import generate_sgcc_with_truth


@pytest.fixture(scope="session", autouse=True)
def _single_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="session")
def sgcc_train():
    """2,500 customers x 1,035 days from province seed 11 (frame, truth)."""
    return generate_sgcc_with_truth(2_500, seed=11)


@pytest.fixture(scope="session")
def sgcc_holdout():
    """1,500 other customers from another seed: the held-out set of every floor."""
    return generate_sgcc_with_truth(1_500, seed=12)
