"""The stable model API submissions import: cohorts, outcomes and the submission contract."""

from benchmark.api.cohort import TASKS, Cohort, Outcomes
from benchmark.api.submission import (
    FitContext,
    LesionCache,
    Network,
    Predictions,
    Submission,
    SubmissionError,
)

__all__ = [
    "Cohort",
    "FitContext",
    "LesionCache",
    "Network",
    "Outcomes",
    "Predictions",
    "Submission",
    "SubmissionError",
    "TASKS",
]
