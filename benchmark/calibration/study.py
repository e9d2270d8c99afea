"""What the simulator is calibrated to: the study's headline figures and the trials' reports.

Every number here is published; the source is given beside it. Where a trial did not publish a
figure (NIVORAD's medians, MDACC's overall survival), nothing is invented: the target is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

STUDY = "Kothari et al., Scientific Reports 2026 (PEMBRO-RT development; NIVORAD, MDACC external)"

# The study's development-cohort figures (PEMBRO-RT, per-lesion PD AUC; OS / PFS Harrell's C).
STUDY_FIGURES = {
    "rf_radiomics_auc": 0.57,
    "deep_learning_auc": 0.92,
    "rsf_c_os": 0.63,
    "rsf_c_pfs": 0.59,
    "rsf_clinical_c_os": 0.67,
    "rsf_clinical_c_pfs": 0.65,
}


@dataclass(frozen=True)
class PublishedMedian:
    """A trial arm's Kaplan-Meier median with its 95% CI (months; ``hi=None``: not reached)."""

    cohort: str
    arm: str
    endpoint: str
    median: float
    lo: float
    hi: float | None
    source: str

    def holds(self, value: float) -> bool:
        """Whether ``value`` lies inside the published 95% CI (NaN: not reached, outside)."""
        return value == value and self.lo <= value and (self.hi is None or value <= self.hi)


_PEMBRO_RT = "Theelen et al., JAMA Oncol 2019;5:1276-82"
_MDACC = "Welsh et al., J Immunother Cancer 2020;8:e001001"
PUBLISHED_MEDIANS = (
    PublishedMedian("pembro_rt", "io", "pfs", 1.9, 1.7, 6.9, _PEMBRO_RT),
    PublishedMedian("pembro_rt", "io+sabr", "pfs", 6.6, 4.0, 14.6, _PEMBRO_RT),
    PublishedMedian("pembro_rt", "io", "os", 7.6, 6.0, 13.9, _PEMBRO_RT),
    PublishedMedian("pembro_rt", "io+sabr", "os", 15.9, 7.1, None, _PEMBRO_RT),
    PublishedMedian("mdacc", "io", "pfs", 5.1, 3.4, 12.7, _MDACC),
    PublishedMedian("mdacc", "io+sabr", "pfs", 9.1, 3.6, 18.4, _MDACC),
)
