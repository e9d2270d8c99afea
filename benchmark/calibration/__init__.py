"""How faithful the simulated default cohorts are to the study they stand for.

``python -m benchmark.calibration`` puts every calibration target beside the study's figure
and ours: model-free targets from the simulator's truth over many data seeds (:mod:`.truth`), the
coverage of the harness's confidence intervals (:mod:`.coverage`), and the targets only models
can show. Those are judged on the mean over at least 10 draws of the simulator with data seeds
picked at random each time (:mod:`.draws`, ``draws.json``): one draw says little, a model's
figure moving by ~0.05 AUC from draw to draw. The committed leaderboard records (one draw, the
public data seed; :mod:`.board`) stay beside them for reference, and judge only where there are
no such draws. :mod:`.margin_control` checks that tissue beyond a lesion's margin does not rank
PD better than its volume (``margin_control.json``); :mod:`.realism` measures the images against
real CT. :mod:`.study` holds the published figures, :mod:`.report` the table, JSON and figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmark.calibration.board import load_board
from benchmark.calibration.committed import generator, read_committed
from benchmark.calibration.coverage import Coverage, coverage_study
from benchmark.calibration.draws import (
    DEFAULT_MODELS,
    DRAWS_FILE,
    RUNS_DIR,
    Draws,
    read_draws,
    run_draws,
)
from benchmark.calibration.margin_control import read_control
from benchmark.calibration.report import (
    Report,
    board_targets,
    control_targets,
    coverage_json,
    coverage_targets,
    draw_targets,
    render,
    truth_targets,
    with_draws,
    write,
)
from benchmark.calibration.truth import (
    km_medians,
    margin_leak,
    oracle_over_seeds,
    survival_room,
)
from benchmark.data.simulator import load_profile

COVERAGE_FILE = "coverage.json"


def read_coverage(folder: Path, profile: str) -> list[Coverage]:
    """The committed coverage study, if it was run on this generator and profile."""
    payload = read_committed(folder / COVERAGE_FILE, profile)
    if payload is None:
        return []
    fields = ("cohort", "task", "method", "population", "n_seeds", "covered")
    return [Coverage(**{k: c[k] for k in fields}) for c in payload["coverage"]]


def calibrate(
    *,
    profile: str = "default",
    seeds: Sequence[int] = range(20),
    coverage_seeds: int = 0,
    draws: int = 0,
    draw_models: Sequence[str] = DEFAULT_MODELS,
    draw_runs: Path = RUNS_DIR,
    cache_dir: Path | None = None,
    keep_draw_data: bool = False,
    workers: int = 1,
    results: Path,
    out: Path | None,
    figure: bool = True,
    progress: bool = True,
) -> Report:
    """Build the report (and write it under ``out``); ``coverage_seeds`` > 0 re-runs the
    coverage study (over ``workers`` processes) and writes it to ``out/coverage.json``, else the
    committed one is read; likewise ``draws`` > 0 runs ``draw_models`` on that many random
    draws (:func:`.draws.run_draws`, runs under ``draw_runs``) and writes ``out/draws.json``."""
    prof = load_profile(profile)
    seeds = list(seeds)
    report = Report(generator(), profile, seeds)
    if draws > 0:  # first: a refusal (an unknown model) comes before any work
        drawn: Draws | None = run_draws(
            profile,
            draws,
            models=draw_models,
            runs=draw_runs,
            cache_dir=cache_dir,
            workers=workers,
            keep_data=keep_draw_data,
            progress=progress,
        )
        if out is not None:
            from benchmark.utils.atomic import write_atomic

            write_atomic(out / DRAWS_FILE, drawn.to_json())
    else:
        drawn = read_draws(out, profile) if out is not None else None
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

            meta = {"generator": generator(), "profile": profile, "n_seeds": coverage_seeds}
            write_atomic(out / COVERAGE_FILE, coverage_json(coverage, meta))
    else:
        coverage = read_coverage(out, profile) if out is not None else []
    report.targets += coverage_targets(coverage)
    if out is not None:
        report.targets += control_targets(read_control(out, profile))
    report.details["coverage"] = [c.to_dict() for c in coverage]
    board, refused = load_board(results, profile)  # another profile's records judge nothing
    report.targets += with_draws(board_targets(board, refused), draw_targets(drawn))
    if drawn is not None:
        report.details["draws"] = {
            "n_draws": len(drawn.seeds),
            "models": list(drawn.models),
            "data_seeds": list(drawn.seeds),
            "commit": drawn.commit,
        }
    if board is not None:
        report.details["records_fingerprint"] = board.fingerprint
    if out is not None:
        write(report, out, figure=figure)
    return report


__all__ = ["Draws", "Report", "calibrate", "read_draws", "render", "run_draws"]
