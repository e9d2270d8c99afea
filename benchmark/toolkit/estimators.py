"""scikit-learn estimators as submissions use them: a fold with one class, one thread to predict.

A small training fold (the tiny cohorts, a rare outcome) can hold lesions of one class only; a
classifier then cannot be fitted, or predicts a column that is not p(PD). Tree ensembles
predicted with several threads sum their trees in finishing order, which changes the last bits
of the probabilities from run to run, and the benchmark's rule is same seed, same predictions.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np

E = TypeVar("E")


def two_classes(y: np.ndarray) -> bool:
    """Whether the labels ``y`` hold both classes, i.e. whether a classifier can be fitted."""
    return len(np.unique(y)) == 2


def prevalence(y: np.ndarray) -> float:
    """The share of positives in ``y`` (0.5 for no label): the prediction of a one-class fold."""
    return float(np.mean(y)) if len(y) else 0.5


def positive_proba(model: Any, x: np.ndarray) -> np.ndarray:
    """p(class 1) of a fitted scikit-learn classifier, found by its ``classes_``."""
    proba = model.predict_proba(x)
    return proba[:, list(model.classes_).index(1)]


def one_thread(model: E) -> E:
    """``model`` with ``n_jobs = 1`` where it has that parameter, so that its predictions do not
    depend on the order threads finish in (forests sum their trees as they come)."""
    if "n_jobs" in model.get_params(deep=False):  # type: ignore[attr-defined]
        model.set_params(n_jobs=1)  # type: ignore[attr-defined]
    return model


__all__ = ["one_thread", "positive_proba", "prevalence", "two_classes"]
