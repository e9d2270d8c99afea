"""A scanned cohort as the pandas frames of the blinded cohort and of its outcomes.

Built from the checked records, not read again from CSV, so what loads is what was validated.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.api.cohort import Outcomes
from benchmark.data.layout.scanning import CohortScan


def to_frames(scan: CohortScan) -> tuple[pd.DataFrame, pd.DataFrame, Outcomes]:
    """The patients and lesions frames of the blinded cohort, and its outcomes, sorted by id."""
    pids = sorted(scan.patients)
    lids = sorted(scan.lesions)
    p = [scan.patients[pid] for pid in pids]
    lz = [scan.lesions[lid] for lid in lids]
    pindex = pd.Index(pids, dtype=str, name="patient_id")
    lindex = pd.Index(lids, dtype=str, name="lesion_id")
    nan = float("nan")
    patients = pd.DataFrame(
        {
            "arm": pd.Series([r.arm for r in p], index=pindex, dtype=str),
            "pdl1_tps": pd.Series(
                [nan if r.pdl1_tps is None else r.pdl1_tps for r in p], index=pindex, dtype=float
            ),
            "age": pd.Series(
                [nan if r.age is None else r.age for r in p], index=pindex, dtype=float
            ),
            "sex": pd.Series([r.sex for r in p], index=pindex, dtype=str),
            "ecog": pd.Series(
                [nan if r.ecog is None else float(r.ecog) for r in p], index=pindex, dtype=float
            ),
        },
        index=pindex,
    )
    lesions = pd.DataFrame(
        {
            "patient_id": pd.Series([r.patient_id for r in lz], index=lindex, dtype=str),
            "mask_label": pd.Series([r.mask_label for r in lz], index=lindex, dtype=np.int64),
            "site": pd.Series([r.site for r in lz], index=lindex, dtype=str),
            "irradiated": pd.Series([r.irradiated for r in lz], index=lindex, dtype=np.int64),
        },
        index=lindex,
    )

    def survival(endpoint: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "time": pd.Series(
                    [getattr(r, f"{endpoint}_months") for r in p], index=pindex, dtype=float
                ),
                "event": pd.Series(
                    [bool(getattr(r, f"{endpoint}_event")) for r in p], index=pindex, dtype=bool
                ),
            },
            index=pindex,
        )

    outcomes = Outcomes(
        lesion_pd=pd.Series([r.pd for r in lz], index=lindex, dtype=np.int64, name="pd"),
        os=survival("os"),
        pfs=survival("pfs"),
    )
    return patients, lesions, outcomes
