"""Where the PD signal lives: a model that sees only tissue beyond a lesion's margin.

The simulator puts the signal that separates PD from non-PD in the lesion and its margin (the
halo reaches at most 18 mm; docs/simulator.md). If a model given only the images 20-30 mm away
from a lesion ranked PD better than the lesion's volume does, the signal would be leaking through
something else: a rendering artefact, or anatomy that happens to go with the label. This control
fits a random forest on radiomics of that shell (first-order and GLCM; other lesions and the air
outside the body left out), cross-validated on PEMBRO-RT by patient, against a logistic regression
on log volume on the same folds, and gives the paired difference of their AUCs with its CI.

    python -m benchmark.calibration.margin_control [--profile default] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from tqdm.auto import tqdm

from benchmark.calibration.committed import generator, read_committed
from benchmark.calibration.realism.regions import outside_air
from benchmark.data.simulator import load_profile
from benchmark.data.source import resolve_root
from benchmark.evaluation.metrics import lesion_pd_metrics, paired_bootstrap_difference
from benchmark.features.radiomics import build_pyradiomics
from benchmark.utils.atomic import write_atomic

SHELL_MM = (20.0, 30.0)  # beyond the furthest halo (18 mm)
COHORT = "pembro_rt"
CONTROL_FILE = "margin_control.json"
N_FOLDS = 5
OUTSIDE_HU = -900.0  # smoothed HU below this, connected to the border: air outside the body


@dataclass(frozen=True)
class MarginControl:
    """The shell model's and the volume model's pooled out-of-fold AUCs and their difference."""

    shell_auc: float
    volume_auc: float
    difference: float
    ci95: tuple[float, float] | None
    n_lesions: int

    @property
    def holds(self) -> bool:
        """Not better than volume: the difference's CI reaches 0 or below."""
        return self.ci95 is None or self.ci95[0] <= 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "shell_mm": list(SHELL_MM),
            "cohort": COHORT,
            "shell_auc": round(self.shell_auc, 4),
            "volume_auc": round(self.volume_auc, 4),
            "difference": round(self.difference, 4),
            "ci95": None if self.ci95 is None else [round(v, 4) for v in self.ci95],
            "n_lesions": self.n_lesions,
            "holds": self.holds,
        }


def _extractor():
    return build_pyradiomics(
        {"setting": {"binWidth": 25, "label": 1}, "featureClass": {"firstorder": [], "glcm": []}}
    )


def _outside_body(hu: np.ndarray) -> np.ndarray:
    return outside_air(ndimage.gaussian_filter(hu, (0.0, 1.0, 1.0)) < OUTSIDE_HU)


def shell_features(image_path: Path, mask_path: Path, labels: Sequence[int]) -> list[dict]:
    """Per lesion label: its volume (mL) and the radiomics of its shell."""
    image = sitk.ReadImage(str(image_path))
    hu = sitk.GetArrayFromImage(image).astype(np.float32)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(mask_path)))
    spacing = np.array(image.GetSpacing()[::-1])
    excluded = (mask > 0) | _outside_body(hu)
    extractor = _extractor()
    rows = []
    for label in labels:
        lesion = mask == label
        distance = ndimage.distance_transform_edt(~lesion, sampling=spacing)
        shell = (distance > SHELL_MM[0]) & (distance <= SHELL_MM[1]) & ~excluded
        row = {"volume_ml": float(lesion.sum() * np.prod(spacing) / 1000.0)}
        if shell.sum() >= 50:
            shell_img = sitk.GetImageFromArray(shell.astype(np.uint8))
            shell_img.CopyInformation(image)
            out = extractor.execute(image, shell_img)
            row |= {k: float(v) for k, v in out.items() if k.startswith("original_")}
        rows.append(row)
    return rows


def lesion_table(root: Path, progress: bool = True) -> pd.DataFrame:
    """One row per PEMBRO-RT lesion: id, patient, PD label, volume and shell features."""
    lesions = pd.read_csv(root / COHORT / "lesions.csv")
    rows = []
    patients = sorted(lesions["patient_id"].unique())
    for patient in tqdm(patients, desc="shells", disable=not progress):
        own = lesions[lesions["patient_id"] == patient]
        features = shell_features(
            root / COHORT / "images" / f"{patient}.nii.gz",
            root / COHORT / "masks" / f"{patient}.nii.gz",
            own["mask_label"].astype(int).tolist(),
        )
        for (_, lesion), row in zip(own.iterrows(), features, strict=True):
            rows.append(
                {
                    "lesion_id": lesion["lesion_id"],
                    "patient_id": patient,
                    "pd": int(lesion["pd"]),
                    **row,
                }
            )
    return pd.DataFrame(rows)


def compare(table: pd.DataFrame, seed: int = 0, trees: int = 500) -> MarginControl:
    """Out-of-fold AUCs of the shell forest and the log-volume logistic, on the same folds."""
    y = table["pd"].to_numpy(int)
    groups = table["patient_id"].to_numpy()
    shell = table.drop(columns=["lesion_id", "patient_id", "pd", "volume_ml"])
    shell = shell.fillna(shell.median()).fillna(0.0).to_numpy(float)
    volume = np.log(table[["volume_ml"]].to_numpy(float))
    p_shell, p_volume = np.zeros(len(y)), np.zeros(len(y))
    folds = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    for train, test in folds.split(shell, y, groups):
        forest = RandomForestClassifier(
            n_estimators=trees, class_weight="balanced", random_state=seed, n_jobs=2
        ).fit(shell[train], y[train])
        p_shell[test] = forest.predict_proba(shell[test])[:, 1]
        logistic = LogisticRegression().fit(volume[train], y[train])
        p_volume[test] = logistic.predict_proba(volume[test])[:, 1]
    shell_auc = lesion_pd_metrics(y, p_shell, groups, seed=seed)["auc"].value
    volume_auc = lesion_pd_metrics(y, p_volume, groups, seed=seed)["auc"].value
    diff = paired_bootstrap_difference(
        "auc", p_shell, p_volume, label=y, patient_id=groups, seed=seed
    )
    return MarginControl(float(shell_auc), float(volume_auc), float(diff.value), diff.ci95, len(y))


def read_control(folder: Path, profile: str) -> MarginControl | None:
    """The committed control, if this generator and profile made it."""
    payload = read_committed(folder / CONTROL_FILE, profile)
    if payload is None:
        return None
    ci = payload["ci95"]
    return MarginControl(
        payload["shell_auc"],
        payload["volume_auc"],
        payload["difference"],
        None if ci is None else tuple(ci),
        payload["n_lesions"],
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.calibration.margin_control", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--profile", default="default")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0, the public)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--out", type=Path, default=Path("leaderboard/calibration"))
    args = parser.parse_args(argv)
    data = {"source": "simulated", "seed": args.seed, "profile": load_profile(args.profile)}
    root = resolve_root(data, args.cache_dir, workers=2)
    control = compare(lesion_table(root, progress=sys.stderr.isatty()))
    payload = {
        "generator": generator(),
        "profile": args.profile,
        "data_seed": args.seed,
        **control.to_dict(),
    }
    write_atomic(args.out / CONTROL_FILE, json.dumps(payload, indent=1) + "\n")
    ci = control.ci95
    print(
        f"{COHORT}, {control.n_lesions} lesions, cross-validated by patient: shell "
        f"{SHELL_MM[0]:g}-{SHELL_MM[1]:g} mm AUC {control.shell_auc:.3f}, log volume "
        f"{control.volume_auc:.3f}, difference {control.difference:+.3f}"
        + ("" if ci is None else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]")
        + f": {'holds' if control.holds else 'FAILS'} (the shell must not beat volume)"
    )
    return 0 if control.holds else 1


if __name__ == "__main__":
    sys.exit(main())
