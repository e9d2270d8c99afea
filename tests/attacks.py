"""Hostile submissions for tests/test_isolation.py: each tries to read the labels of the cohort
it predicts from the process it runs in. Importable by a worker process (tests/ is on its path).
"""

from __future__ import annotations

import gc
import os
import sys
import warnings

import pandas as pd

from benchmark.cohort import Cohort, Outcomes
from benchmark.submission import FitContext, Predictions, Submission


def _labels_for(candidates, cohort: Cohort) -> pd.Series | None:
    """The PD labels of ``cohort``'s lesions from the first Outcomes that covers all of them."""
    wanted = set(cohort.lesion_ids)
    for obj in candidates:
        if isinstance(obj, Outcomes) and wanted <= set(obj.lesion_pd.index):
            return obj.lesion_pd.loc[cohort.lesion_ids].astype(float)
    return None


class _Cheat(Submission):
    tasks = ("lesion_pd",)

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        return self

    def found(self, cohort: Cohort) -> pd.Series | None:
        raise NotImplementedError

    def predict(self, cohort: Cohort) -> Predictions:
        labels = self.found(cohort)
        if labels is None:  # nothing found: a constant, i.e. chance
            labels = pd.Series(0.5, index=cohort.lesion_ids)
        return {"lesion_pd": labels}


class StackWalker(_Cheat):
    """(a) Walks up the call stack and looks in every frame's locals."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        frame, seen = sys._getframe(), []
        while frame is not None:
            for value in list(frame.f_locals.values()):
                seen.append(value)
                seen.extend(getattr(value, "__dict__", {}).values())
                if isinstance(value, dict):
                    seen.extend(value.values())
                    seen.extend(getattr(v, "outcomes", None) for v in value.values())
            frame = frame.f_back
        return _labels_for(seen, cohort)


class ObjectScanner(_Cheat):
    """(b) Scans every object the garbage collector tracks."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        with warnings.catch_warnings():  # isinstance() on every object wakes deprecated shims
            warnings.simplefilter("ignore")
            return _labels_for(gc.get_objects(), cohort)


class Crashes(_Cheat):
    """Ends its own process in predict (a segfault looks the same to the harness)."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        os._exit(3)


class Raises(_Cheat):
    def found(self, cohort: Cohort) -> pd.Series | None:
        raise KeyError("a bug in the submission")


_HOARD: dict[str, float] = {}  # module state: lives as long as the process


class Hoarder(_Cheat):
    """Keeps every label it is trained on, for the folds it will predict later."""

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()):
        _HOARD.update(outcomes.lesion_pd.astype(float).to_dict())
        return self

    def found(self, cohort: Cohort) -> pd.Series | None:
        if not all(lesion in _HOARD for lesion in cohort.lesion_ids):
            return None
        return pd.Series([_HOARD[lesion] for lesion in cohort.lesion_ids], index=cohort.lesion_ids)


class Sleeper(_Cheat):
    """A runaway predict: never returns in time."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        import time

        time.sleep(120)


class Hog(_Cheat):
    """A runaway predict: holds ~1 GiB."""

    def found(self, cohort: Cohort) -> pd.Series | None:
        import time

        import numpy as np

        block = np.ones(2**27)  # 1 GiB of float64, touched
        time.sleep(30)
        return pd.Series(float(block[0]) / 2, index=cohort.lesion_ids)
