"""What a site's real data can hold that would corrupt a run: each case refused, naming the file.

Every case breaks one thing in a small valid cohort (tests/cohort_factory.py) and checks that
validation reports it with its file, row and id, and reports nothing else.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from cohort_factory import make_dataset, rewrite_volume

from benchmark.data import layout
from benchmark.data.layout.images import FileCache
from benchmark.data.layout.values import NonFinite

PR = "pembro_rt"
IMAGE, MASK = f"{PR}/images/PR002.nii.gz", f"{PR}/masks/PR002.nii.gz"


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site") / "data"
    make_dataset(root, cohorts=(PR,))
    return root


@pytest.fixture
def data(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of a valid one-cohort dataset, to break."""
    root = tmp_path / "data"
    shutil.copytree(template, root)
    return root


def test_the_valid_cohort_passes(data: Path) -> None:
    assert layout.validate(data, [PR]) == []


# ---------------------------------------------------------------------------------------------
# One case per problem


@dataclass
class Case:
    mutate: Callable[[Path], None]
    file: str
    text: str
    row: int | None = None
    column: str | None = None
    id: str | None = None
    count: int = 1  # every problem this one break gives (no noisy cascades)


def _voxels(rel: str, edit: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
    return lambda root: rewrite_volume(root / rel, edit)


def _with_nan_and_inf(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    a[5, 0, 0] = np.inf
    a[2, 3, 4] = np.nan  # (z, y, x): the first in file order, reported as voxel (4, 3, 2)
    return a


def _float_mask_with_nan(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float32)
    a[0, 0, 1] = np.nan
    return a


CASES = {
    "non-finite image voxels": Case(
        _voxels(IMAGE, _with_nan_and_inf),
        IMAGE,
        "image has 2 non-finite voxels (NaN or infinite), the first at voxel (4, 3, 2); "
        "expected finite HU values",
    ),
    "non-finite mask voxel": Case(
        _voxels(MASK, _float_mask_with_nan),
        MASK,
        "mask has 1 non-finite voxel (NaN or infinite), the first at voxel (1, 0, 0); "
        "expected finite labels",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_site_data_is_refused(data: Path, name: str) -> None:
    case = CASES[name]
    case.mutate(data)
    problems = layout.validate(data, [PR])
    matching = [
        p
        for p in problems
        if p.file == case.file
        and case.text in p.message
        and (p.row, p.column, p.id) == (case.row, case.column, case.id)
    ]
    assert matching, f"no problem like {case} in:\n" + "\n".join(map(str, problems))
    assert len(problems) == case.count, "\n".join(map(str, problems))
    with pytest.raises(layout.CohortError):
        layout.fingerprint(data, [PR])


# ---------------------------------------------------------------------------------------------
# Non-finite voxels: wherever the stream splits them, and in an uncompressed file


def test_non_finite_voxels_are_counted_across_any_split() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=999).astype(">f8")  # big-endian: the header's byte order is used
    values[[3, 500, 998]] = [np.nan, np.inf, -np.inf]
    offset = 352
    blob = bytes(offset) + values.tobytes() + b"extension"
    for _ in range(20):
        counter = NonFinite(values.dtype, offset, values.size)
        cuts = sorted(rng.integers(0, len(blob), 6).tolist())
        for lo, hi in zip([0, *cuts], [*cuts, len(blob)], strict=True):
            counter.feed(blob[lo:hi], lo)
        assert (counter.count, counter.first) == (3, 3)


def test_non_finite_voxels_of_an_uncompressed_file_are_found(data: Path) -> None:
    rewrite_volume(data / IMAGE, _with_nan_and_inf)
    path = data / IMAGE
    path.write_bytes(gzip.decompress(path.read_bytes()))  # a plain .nii under the .gz name
    problems = layout.validate(data, [PR])
    assert [(p.file, "2 non-finite voxels" in p.message) for p in problems] == [(IMAGE, True)]


def test_a_cache_entry_from_before_the_checks_does_not_pass_a_bad_file(
    data: Path, tmp_path: Path
) -> None:
    """An entry of the cache's first version holds no voxel-value checks: it is not reused."""
    assert layout.CACHE_VERSION != "layout-v1"
    rewrite_volume(data / IMAGE, _with_nan_and_inf)
    cache = tmp_path / "cache"
    entry, ident = FileCache(cache)._entry(data / IMAGE, False)  # type: ignore[misc]
    clean = sitk.ReadImage(str(data / IMAGE))  # what the first version saw: NaN read as 0
    info = {
        "key": "sha256:" + "0" * 64,
        "geometry": {"dimension": 3, "size": list(clean.GetSize())},
        "labels": None,
        "issues": [],
    }
    old = cache / "layout-v1" / entry.name
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps({"ident": ident, "info": info}))
    problems = layout.validate(data, [PR], cache_dir=cache)
    assert [p.file for p in problems] == [IMAGE]
    assert "non-finite" in problems[0].message
    assert layout.validate(data, [PR], cache_dir=cache) == problems  # and from the new entry
