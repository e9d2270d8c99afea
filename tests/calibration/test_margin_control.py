"""The control model beyond the margin: its shells, and that it flags signal where there is some."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from benchmark.calibration.margin_control import compare, read_control, shell_features


def _write(path: Path, array: np.ndarray, spacing=(1.5, 1.5, 3.0)) -> Path:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    sitk.WriteImage(image, str(path))
    return path


def test_shell_features_read_the_shell_not_the_lesion(tmp_path: Path) -> None:
    zz, yy, xx = np.mgrid[:30, :100, :100].astype(float)
    hu = np.full((30, 100, 100), -1000.0, np.float32)
    body = ((xx - 50) * 1.5) ** 2 + ((yy - 50) * 1.5) ** 2 <= 70.0**2
    hu[body] = 40.0
    r = np.sqrt(((xx - 50) * 1.5) ** 2 + ((yy - 50) * 1.5) ** 2 + ((zz - 15) * 3.0) ** 2)
    mask = (r <= 8.0).astype(np.uint8)
    hu[mask > 0] = 300.0  # bright lesion: must not reach its shell
    hu[(r > 8.0 + 19.0) & (r <= 8.0 + 31.0) & body] = 100.0  # 20-30 mm beyond the surface
    rows = shell_features(
        _write(tmp_path / "ct.nii.gz", hu), _write(tmp_path / "m.nii.gz", mask), [1]
    )
    assert rows[0]["volume_ml"] == pytest.approx(4 / 3 * np.pi * 8**3 / 1000, rel=0.2)
    assert rows[0]["original_firstorder_Maximum"] <= 100.0
    assert rows[0]["original_firstorder_Mean"] == pytest.approx(100.0, abs=15.0)


def _table(signal: float, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 200
    pd_label = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "lesion_id": [f"L{i}" for i in range(n)],
            "patient_id": [f"P{i // 2}" for i in range(n)],
            "pd": pd_label,
            "volume_ml": np.exp(rng.normal(1.0, 0.5, n)),
            "original_firstorder_Mean": signal * pd_label + rng.normal(0, 1, n),
            "original_glcm_Contrast": rng.normal(0, 1, n),
        }
    )


def test_the_control_holds_without_signal_and_fails_with_it() -> None:
    quiet = compare(_table(0.0), trees=100)
    assert quiet.holds and abs(quiet.shell_auc - 0.5) < 0.12
    leaking = compare(_table(2.0), trees=100)
    assert not leaking.holds and leaking.shell_auc > 0.8
    assert leaking.difference == pytest.approx(leaking.shell_auc - leaking.volume_auc)


def test_a_control_of_another_generator_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "margin_control.json").write_text(
        '{"generator": "nsclc-io-bench-simulator 0.0.1", "profile": "default", "shell_auc": 0.5,'
        ' "volume_auc": 0.5, "difference": 0.0, "ci95": null, "n_lesions": 1}'
    )
    assert read_control(tmp_path, "default") is None
