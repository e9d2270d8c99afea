"""Bootstrap confidence intervals (benchmark.evaluation.metrics): 1000 patient-level resamples."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.evaluation.metrics import lesion_pd_metrics, survival_metrics

pytestmark = pytest.mark.benchmark


def _lesions(seed: int, n_patients: int = 76, n_lesions: int = 300, signal: float = 0.2):
    rng = np.random.default_rng(seed)
    pid = np.array([f"P{i:03d}" for i in rng.integers(0, n_patients, n_lesions)], dtype=object)
    y = (rng.random(n_lesions) < 0.35).astype(int)
    p = np.clip(0.35 + signal * y + rng.normal(0, 0.2, n_lesions), 0, 1)
    return y, p, pid


def _survival(seed: int, n: int = 100, scale: float = 10.0):
    rng = np.random.default_rng(seed)
    t_true = rng.exponential(scale, n)
    cens = rng.exponential(2 * scale, n)
    return np.minimum(t_true, cens), t_true <= cens, -t_true + rng.normal(0, scale / 2, n)


def test_benchmark_lesion_bootstrap(benchmark):
    """Speed is measured, not asserted: `pytest -m benchmark --benchmark-enable`."""
    y, p, pid = _lesions(0)
    result = benchmark(lesion_pd_metrics, y, p, pid, n_boot=1000)
    assert result["auc"].ci95 is not None


def test_benchmark_survival_bootstrap(benchmark):
    t, e, r = _survival(0)
    result = benchmark(survival_metrics, t, e, r, train_time=t, train_event=e, n_boot=1000)
    assert result["c_index"].ci95 is not None
