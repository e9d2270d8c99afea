"""One job of ``python -m benchmark``: a run wrapped with its ``status.json``.

Hydra's launchers (basic for a single run, joblib locally, submitit on SLURM) call
:func:`run_job` through ``benchmark/__main__.py``. It writes the job's state atomically into the
run folder (running, then succeeded / skipped / failed with the exception), which the sweep
summary (``benchmark/runner/sweep.py``) reads. In a multirun a failure does not re-raise: Hydra
1.3's basic sweeper raises at the first failed job *after* its batch and then never calls
``on_multirun_end``, so a raising job would hide every other job's outcome; the summary names the
failure and the sweep exits 1 instead.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import socket
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from benchmark.runner.run_folder import RECORD, STATUS, SWEEP_STAMP
from benchmark.utils.atomic import write_atomic

log = logging.getLogger(__name__)

STDLIB_START_METHODS = (None, "fork", "spawn", "forkserver")


def now() -> str:
    """UTC time to the second, as status files and sweep stamps write it."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _sweep_id(sweep_dir: Path) -> str | None:
    try:
        return json.loads((sweep_dir / SWEEP_STAMP).read_text())["id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stdlib_start_method() -> None:
    """Give a job a start method the standard library knows.

    The joblib launcher runs jobs in loky workers, whose default start method is "loky"; a
    process pool the job starts (simulation, radiomics, crops) then fails in every child with
    "cannot find context for 'loky'" (a BrokenProcessPool in the parent).
    """
    if multiprocessing.get_start_method(allow_none=True) not in STDLIB_START_METHODS:
        multiprocessing.set_start_method("spawn", force=True)


def run_job(cfg: DictConfig, out_dir: Path) -> dict[str, Any] | None:
    """Run ``cfg`` into ``out_dir`` and leave ``status.json`` there saying how it ended.

    In a multirun a failure is recorded (type, message, traceback) and the job returns None, so
    the sweep goes on and its summary names the failure; a single run re-raises.
    """
    hydra_cfg = HydraConfig.get()
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    _stdlib_start_method()
    status: dict[str, Any] = {
        "state": "running",
        "sweep_id": _sweep_id(Path(hydra_cfg.sweep.dir)) if multirun else None,
        "overrides": list(hydra_cfg.overrides.task),
        "model": str(cfg.model.name),
        "seed": int(cfg.seed),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": now(),
    }
    status_path = Path(out_dir) / STATUS
    write_atomic(status_path, json.dumps(status, indent=2) + "\n")
    clock = time.perf_counter()
    try:
        from benchmark.runner.run import run  # heavy imports after Hydra has parsed --help / --cfg

        outcome = run(cfg, Path(out_dir))
    except Exception as exc:
        status.update(
            state="failed",
            error={
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
            },
        )
        _finish(status_path, status, clock)
        if not multirun:
            raise
        log.exception("job failed: %s", " ".join(status["overrides"]))
        return None
    status.update(state="skipped" if outcome.reused else "succeeded", record=RECORD)
    _finish(status_path, status, clock)
    return outcome.record


def _finish(path: Path, status: dict[str, Any], clock: float) -> None:
    status.update(finished_at=now(), duration_s=round(time.perf_counter() - clock, 2))
    write_atomic(path, json.dumps(status, indent=2) + "\n")
