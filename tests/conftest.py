"""Shared fixtures: the tiny simulated cohorts, built once per test session in a temporary cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.cohort import COHORTS, LabelledCohort
from benchmark.data import layout
from benchmark.data.simulator import load_profile
from benchmark.data.source import resolve_root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_root(cache_dir: Path) -> Path:
    data = {"source": "simulated", "seed": 0, "profile": load_profile("tiny")}
    return resolve_root(data, cache_dir, workers=1)


@pytest.fixture(scope="session")
def tiny_cohorts(tiny_root: Path, cache_dir: Path) -> dict[str, LabelledCohort]:
    view_dir = cache_dir / "views" / "tiny"
    return {
        name: LabelledCohort(*layout.load(tiny_root, name, view_dir=view_dir, cache_dir=cache_dir))
        for name in COHORTS
    }


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """The real data ``make fixtures`` fetches (tests/fetch_fixtures.py); fails, never skips,
    when it is missing, so that CI cannot pass without the real-data tests."""
    import json

    from fetch_fixtures import FIXTURES_VERSION, READY, folder

    root = folder()
    try:
        version = json.loads((root / READY).read_text())["version"]
    except (OSError, ValueError, KeyError):
        version = None
    if version != FIXTURES_VERSION:
        pytest.fail(
            f"real-data fixtures missing or stale in {root} (version {version}, expected "
            f"{FIXTURES_VERSION}); run `make fixtures` (python tests/fetch_fixtures.py)",
            pytrace=False,
        )
    return root


@pytest.fixture(scope="session")
def lung_root(real_fixtures: Path, tmp_path_factory: pytest.TempPathFactory):
    """``lung_root(case)``: a layout whose pembro_rt holds one patient, ``PRT-LUNG1`` or
    ``PRT-LUNG2`` (pyradiomics' real lung CTs, from ``make fixtures``)."""
    from dicom_helpers import cut_layout

    built: dict[str, Path] = {}

    def get(case: str) -> Path:
        if case not in built:
            root = tmp_path_factory.mktemp(case) / "root"
            patient = f"PRT-{case.upper()}"
            built[case] = cut_layout(real_fixtures / "lung_cohorts", root, "pembro_rt", [patient])
        return built[case]

    return get
