"""Shared fixtures: the tiny simulated cohorts, built once per test session in a temporary cache.

And a guard: no test runs submission code (``submissions/``, contributed and untrusted) in the
pytest process, since CI runs a pull request's code and must run it in the sandbox only
(benchmark/runner/contract.py, tests/tiny_runs.py). ``import_watch`` sees every import from the
start of the session; a test that imports a submission's module fails, naming it, and so does a
collection that does.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from import_watch import imported_since, mark

from benchmark.api.cohort import COHORTS, LabelledCohort
from benchmark.data import layout
from benchmark.data.simulator import load_profile
from benchmark.data.source import resolve_root

SUBMISSIONS = "submissions"


def _refusal(modules: list[str], where: str) -> str:
    return (
        f"{where} imported submission code in the pytest process ({', '.join(modules)}); "
        "run it in the sandbox (benchmark/runner/contract.py: sandboxed, check_contract; "
        "tests/tiny_runs.py)"
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    imported = imported_since(0, SUBMISSIONS)
    if imported:
        raise pytest.UsageError(_refusal(imported, "collecting the tests"))


@pytest.fixture(autouse=True)
def _no_submission_code_here(request: pytest.FixtureRequest) -> Iterator[None]:
    before = mark()
    yield
    imported = imported_since(before, SUBMISSIONS)
    if imported:
        pytest.fail(_refusal(imported, request.node.nodeid), pytrace=False)


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
