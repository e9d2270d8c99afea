"""How faithful the simulated default cohorts are to the study they stand for.

``python -m benchmark.calibration`` puts every calibration target beside the study's figure
and ours: model-free targets from the simulator's truth over many data seeds (:mod:`.truth`), the
coverage of the harness's confidence intervals (:mod:`.coverage`), and the targets only models
can show, from the committed leaderboard records (:mod:`.board`). :mod:`.study` holds the
published figures, :mod:`.report` the table, JSON and figure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from benchmark.calibration.board import load_board
from benchmark.calibration.coverage import Coverage, coverage_study
from benchmark.calibration.report import (
    Report,
    board_targets,
    coverage_json,
    coverage_targets,
    render,
    truth_targets,
    write,
)
from benchmark.calibration.truth import (
    km_medians,
    margin_leak,
    oracle_over_seeds,
    survival_room,
)
from benchmark.data.simulator import GENERATOR_NAME, GENERATOR_VERSION, load_profile

COVERAGE_FILE = "coverage.json"


def _generator() -> str:
    return f"{GENERATOR_NAME} {GENERATOR_VERSION}"


def read_coverage(folder: Path, profile: str) -> list[Coverage]:
    """The committed coverage study, if it was run on this generator and profile."""
    path = folder / COVERAGE_FILE
    if not path.is_file():
        return []
    payload = json.loads(path.read_text())
    if payload.get("generator") != _generator() or payload.get("profile") != profile:
        return []
    fields = ("cohort", "task", "method", "population", "n_seeds", "covered")
    return [Coverage(**{k: c[k] for k in fields}) for c in payload["coverage"]]


def calibrate(
    *,
    profile: str = "default",
    seeds: Sequence[int] = range(20),
    coverage_seeds: int = 0,
    workers: int = 1,
    results: Path,
    out: Path | None,
    figure: bool = True,
    progress: bool = True,
) -> Report:
    """Build the report (and write it under ``out``); ``coverage_seeds`` > 0 re-runs the
    coverage study (over ``workers`` processes) and writes it to ``out/coverage.json``, else the
    committed one is read."""
    prof = load_profile(profile)
    seeds = list(seeds)
    report = Report(_generator(), profile, seeds)
    oracle = oracle_over_seeds(prof, seeds)
    medians = km_medians(prof, seeds)
    room = survival_room(prof, seeds)
    leak = margin_leak(prof)
    report.targets += truth_targets(oracle, medians, room, leak)
    report.details["oracle_over_seeds"] = {
        cohort: {
            task: {
                "mean": round(float(rows[task].mean()), 4),
                "sd": round(float(rows[task].std()), 4),
            }
            for task in ("lesion_pd", "os", "pfs")
        }
        for cohort, rows in oracle.groupby("cohort")
    }
    if coverage_seeds > 0:
        coverage = coverage_study(prof, range(coverage_seeds), workers=workers, progress=progress)
        if out is not None:
            from benchmark.utils.atomic import write_atomic

            meta = {"generator": _generator(), "profile": profile, "n_seeds": coverage_seeds}
            write_atomic(out / COVERAGE_FILE, coverage_json(coverage, meta))
    else:
        coverage = read_coverage(out, profile) if out is not None else []
    report.targets += coverage_targets(coverage)
    report.details["coverage"] = [c.to_dict() for c in coverage]
    board, refused = load_board(results)
    report.targets += board_targets(board, refused)
    if board is not None:
        report.details["records_fingerprint"] = board.fingerprint
    if out is not None:
        write(report, out, figure=figure)
    return report


__all__ = ["Report", "calibrate", "render"]
