"""Fake submissions for tests/models/test_submissions.py: an honest one, and broken ones that each
must fail the contract (benchmark/runner/contract.py) with a message naming the rule.

They run where submissions run, in the sandbox's workers (``_target_: fakes.<Class>``), so
each bends the contract the way a worker can: what it sends back, what it opens, what it writes.
"""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.api.submission import FitContext, Submission


class Honest(Submission):
    """Fast, label-free predictions from clinical columns: the base the broken fakes bend."""

    tasks = ("lesion_pd", "os", "pfs")

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()) -> Honest:
        self.mean_age_ = float(cohort.patients["age"].mean())
        return self

    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        lesions = cohort.lesions
        p = 0.2 + 0.01 * lesions["mask_label"].to_numpy()
        risk = cohort.patients["age"].fillna(self.mean_age_).to_numpy(float) / 100
        return {
            "lesion_pd": pd.Series(np.clip(p, 0, 1), index=lesions.index),
            "os": pd.Series(risk, index=cohort.patients.index),
            "pfs": pd.Series(-risk, index=cohort.patients.index),
        }


class MissingLesion(Honest):
    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = super().predict(cohort)
        out["lesion_pd"] = out["lesion_pd"].iloc[1:]
        return out


class DuplicatePatient(Honest):
    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = super().predict(cohort)
        out["os"] = pd.concat([out["os"], out["os"].iloc[:1]])
        return out


class ProbabilityAboveOne(Honest):
    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = super().predict(cohort)
        out["lesion_pd"] = out["lesion_pd"] + 1.0
        return out


class NanRisk(Honest):
    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = super().predict(cohort)
        out["pfs"].iloc[0] = np.nan
        return out


class UnknownTask(Honest):
    tasks = ("lesion_pd", "response")  # type: ignore[assignment]


class Unseeded(Honest):
    """Draws its weights from an unseeded generator: two fits differ."""

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()) -> Honest:
        self.weight_ = np.random.default_rng().normal()
        return super().fit(cohort, outcomes)

    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = super().predict(cohort)
        out["os"] = out["os"] * self.weight_
        return out


class NoisyPredict(Honest):
    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = super().predict(cohort)
        out["os"] = out["os"] + np.random.default_rng().normal(0, 1, len(out["os"]))
        return out


class MutatesCohort(Honest):
    """Writes into an image of the view it predicts (a worker's copy of the cohort object is
    its own; the files behind it are not): the next model, or fold, would read other data."""

    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        image = Path(next(iter(cohort.images.values())))
        with image.open("r+b") as f:
            f.seek(-1, io.SEEK_END)
            last = f.read(1)
            f.seek(-1, io.SEEK_END)
            f.write(bytes([last[0] ^ 0xFF]))
        return super().predict(cohort)


class Peeker(Honest):
    """Knows where the data lie (``root``) and reads the held-out cohort's labels."""

    def __init__(self, root: str, seed: int = 0) -> None:
        super().__init__(seed)
        self.root = root

    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = super().predict(cohort)
        labels = pd.read_csv(Path(self.root) / cohort.name / "lesions.csv", index_col="lesion_id")
        out["lesion_pd"] = labels["pd"].astype(float).loc[out["lesion_pd"].index]
        return out


class ShellPeeker(Peeker):
    """Reads the labels through a child process and carries on when it finds none: nothing
    fails, so only the predictions tell whether it saw them."""

    def predict(self, cohort: Cohort) -> dict[str, pd.Series]:
        out = Honest.predict(self, cohort)
        path = Path(self.root) / cohort.name / "lesions.csv"
        text = subprocess.run(["cat", str(path)], capture_output=True, text=True).stdout
        if text:
            labels = pd.read_csv(io.StringIO(text), index_col="lesion_id")
            out["lesion_pd"] = labels["pd"].astype(float).loc[out["lesion_pd"].index] * 0.5 + 0.25
        return out
