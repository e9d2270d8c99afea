"""Writing a simulated dataset in the cohort layout: tables, then images in worker processes.

The folder appears complete or not at all (built under a temporary name, then renamed), so a
cache never holds half a dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from benchmark.data.simulator.profiles import resolve_profile
from benchmark.data.simulator.render import render
from benchmark.data.simulator.streams import GENERATOR_NAME, GENERATOR_VERSION, check_seed
from benchmark.data.simulator.tables import SimulatedTables, simulate_tables
from benchmark.utils.atomic import check_empty, staged
from benchmark.utils.pool import run_jobs


def _write_nifti(array: np.ndarray, spacing, origin, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetOrigin(tuple(float(o) for o in origin))
    sitk.WriteImage(image, str(path), useCompression=True)


def _render_job(job: tuple[str, dict[str, Any]]) -> str:
    """Worker entry: render one patient and write its image and mask under the cohort folder."""
    folder, spec = Path(job[0]), job[1]
    patient = render(spec)
    _write_nifti(
        patient.image,
        patient.spacing,
        patient.origin,
        folder / "images" / f"{spec['patient_id']}.nii.gz",
    )
    _write_nifti(
        patient.mask,
        patient.spacing,
        patient.origin,
        folder / "masks" / f"{spec['patient_id']}.nii.gz",
    )
    return spec["patient_id"]


def _worker_init() -> None:
    """One ITK thread per worker: the workers already use every core."""
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def _write_tables(folder: Path, tables: SimulatedTables) -> None:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    (folder / "truth").mkdir()
    tables.patients.to_csv(folder / "patients.csv", index=False)
    tables.lesions.to_csv(folder / "lesions.csv", index=False)
    tables.truth_lesions.to_csv(folder / "truth" / "lesions.csv", index=False, float_format="%.6f")
    tables.truth_patients.to_csv(
        folder / "truth" / "patients.csv", index=False, float_format="%.6f"
    )


def simulate(
    profile: Mapping[str, Any] | str,
    seed: int,
    out: Path,
    *,
    workers: int = 1,
    progress: bool = True,
) -> Path:
    """Write the simulated cohorts in the cohort layout under ``out`` (which must not hold files).

    The dataset is built in a temporary sibling of ``out`` and moved there at the end
    (``benchmark.utils.atomic.staged``), so an interrupted run leaves no half dataset. The output
    depends on (profile, seed, ``GENERATOR_VERSION``) only; ``workers > 1`` renders patients in
    worker processes.
    """
    prof = resolve_profile(profile)
    seed = check_seed(seed)
    out = Path(out)
    check_empty(out)
    tables = simulate_tables(prof, seed)
    with staged(out) as tmp:
        jobs = []
        for name, cohort in tables.items():
            _write_tables(tmp / name, cohort)
            jobs += [(str(tmp / name), cohort.render_spec(i)) for i in range(len(cohort.patients))]
        with tqdm(total=len(jobs), desc="simulate", unit="patient", disable=not progress) as bar:
            for _ in run_jobs(_render_job, [(job,) for job in jobs], int(workers), _worker_init):
                bar.update()
        meta = {
            "generator": GENERATOR_NAME,
            "generator_version": GENERATOR_VERSION,
            "profile": prof.get("name", "custom"),
            "seed": seed,
            "cohorts": list(tables),
            "acquisition": {
                name: {k: t.acquisition[k] for k in sorted(t.acquisition)}
                for name, t in tables.items()
            },
            "profile_config": prof,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
