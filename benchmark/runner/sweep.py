"""Sweeps (`python -m benchmark -m ...`): the end-of-sweep summary, as a Hydra callback and a CLI.

Hydra's launchers (joblib locally, submitit on SLURM) run the jobs, each wrapped by
``benchmark/runner/job.py`` (``status.json``; a finished job is not recomputed,
``benchmark.runner.run_folder.existing_record``). This module reads the job folders back:

- :class:`SweepSummary` (a Hydra callback, ``conf/hydra/callbacks/sweep_summary.yaml``) prints,
  at the end of the sweep, which jobs succeeded, which failed and why, and the seed-aggregated
  rows (``benchmark.records.reading.aggregate_seeds``, the leaderboard's: mean ± sd over seeds and a
  pooled 95% CI); a sweep with a failed job then exits 1.
- ``python -m benchmark.runner.sweep SWEEP_DIR`` prints the same summary later, e.g. after a SLURM
  sweep whose launcher stopped early (submitit raises when a job was killed, before the callback
  runs).

Imports stay light: Hydra imports this module for the callback on every run.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from benchmark.records.reading import SeedRow, aggregate_seeds, seed_group
from benchmark.runner.job import now
from benchmark.runner.run_folder import RECORD, STATUS, SWEEP_STAMP
from benchmark.utils.atomic import write_atomic

log = logging.getLogger(__name__)

SUMMARY_TXT = "summary.txt"
SEEDS_CSV = "seeds.csv"

# The metric the printed summary shows per task (seeds.csv holds every metric).
HEADLINE = {"lesion_pd": "auc", "os": "c_index", "pfs": "c_index"}


# --------------------------------------------------------------------------------------------
# The sweep's jobs and its summary


@dataclass
class Job:
    """One job folder of a sweep, as its files tell it."""

    folder: Path
    overrides: list[str]
    state: str  # succeeded | skipped | failed | running (killed, timed out, or still running)
    status: dict[str, Any] = field(default_factory=dict)
    record: dict[str, Any] | None = None

    @property
    def error(self) -> str:
        error = self.status.get("error") or {}
        return f"{error.get('type', '?')}: {error.get('message', '')}".strip()


@dataclass
class SweepReport:
    sweep_dir: Path
    jobs: list[Job]
    rows: list[SeedRow]
    text: str

    @property
    def failed(self) -> list[Job]:
        return [j for j in self.jobs if j.state not in ("succeeded", "skipped")]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _overrides_of(folder: Path, status: Mapping[str, Any] | None) -> list[str]:
    if status and status.get("overrides") is not None:
        return list(status["overrides"])
    try:
        return list(OmegaConf.load(folder / ".hydra" / "overrides.yaml"))
    except (OSError, ValueError):
        return []


def collect_jobs(
    sweep_dir: Path, sweep_id: str | None = None, since: float | None = None
) -> list[Job]:
    """The jobs under ``sweep_dir``: folders with a ``status.json`` or a ``.hydra/`` folder.

    With ``sweep_id``, only the jobs of that sweep: a status written by it, or (a job killed
    before it wrote one) a ``.hydra/overrides.yaml`` written since ``since`` (a timestamp).
    """
    sweep_dir = Path(sweep_dir)
    folders = {p.parent for p in sweep_dir.rglob(STATUS)}
    folders |= {p.parent.parent for p in sweep_dir.glob("**/.hydra/overrides.yaml")}
    jobs = []
    for folder in sorted(folders):
        if ".submitit" in folder.relative_to(sweep_dir).parts:
            continue
        status = _read_json(folder / STATUS)
        if sweep_id is not None and (status or {}).get("sweep_id") != sweep_id:
            hydra_file = folder / ".hydra" / "overrides.yaml"
            fresh = (
                since is not None and hydra_file.is_file() and hydra_file.stat().st_mtime >= since
            )
            if not fresh:
                continue  # a job of an earlier sweep in the same folder
            status = None
        state = (status or {}).get("state", "running")
        record = _read_json(folder / RECORD) if state in ("succeeded", "skipped") else None
        if state in ("succeeded", "skipped") and record is None:
            state = "failed"
            status = {**(status or {}), "error": {"type": "MissingRecord", "message": RECORD}}
        jobs.append(Job(folder, _overrides_of(folder, status), state, status or {}, record))
    return jobs


def _label(overrides: Sequence[str]) -> str:
    """A job's overrides minus model and seed: what distinguishes its configuration."""
    rest = [o for o in overrides if not o.startswith(("seed=", "model="))]
    return " ".join(sorted(rest)) or "-"


def _fmt(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _short(text: str, width: int = 100) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def summarize(sweep_dir: Path, jobs: list[Job], *, all_metrics: bool = False) -> SweepReport:
    """The summary of ``jobs``: a job table, the failures, and the seed-aggregated rows."""
    from tabulate import tabulate

    sweep_dir = Path(sweep_dir)
    counts = {s: sum(j.state == s for j in jobs) for s in ("succeeded", "skipped", "failed")}
    lost = len(jobs) - sum(counts.values())
    head = (
        f"sweep {sweep_dir}: {len(jobs)} job{'s' * (len(jobs) != 1)}, "
        f"{counts['succeeded']} succeeded, {counts['skipped']} skipped (record already there), "
        f"{counts['failed']} failed" + (f", {lost} without an end (killed?)" if lost else "")
    )
    job_rows = []
    for job in jobs:
        seconds = job.status.get("duration_s")
        detail = (
            str((job.folder / RECORD).relative_to(sweep_dir))
            if job.record is not None
            else _short(job.error)
            if job.state == "failed"
            else "no end in status.json: killed, timed out, or still running"
        )
        job_rows.append(
            [" ".join(job.overrides) or job.folder.name, job.state, _fmt(seconds, 1), detail]
        )
    parts = [
        head,
        "",
        tabulate(job_rows, ["job", "state", "s", "record / why"], "github", disable_numparse=True),
    ]

    failed = [j for j in jobs if j.state not in ("succeeded", "skipped")]
    if failed:
        parts += ["", "Failed jobs (traceback in <job>/status.json, log in <job>/*.log):"]
        for job in failed:
            parts.append(f"  {' '.join(job.overrides)}: {_short(job.error, 300)}")
            parts.append(f"    {job.folder}")

    records = [j.record for j in jobs if j.record is not None]
    rows = aggregate_seeds(records)
    if rows:
        labels: dict[tuple[str, str, str], str] = {}
        for job in jobs:
            if job.record is not None:
                labels.setdefault(seed_group(job.record), _label(job.overrides))
        shown = [r for r in rows if all_metrics or HEADLINE.get(r.task) == r.metric]
        table = []
        for r in shown:
            if r.mean is None:
                value = "n/c"
            elif r.sd is None:
                value = f"{r.mean:.3f}"
            else:
                value = f"{r.mean:.3f} ± {r.sd:.3f}"
            ci = "" if r.ci95 is None else f"[{r.ci95[0]:.3f}, {r.ci95[1]:.3f}]"
            table.append(
                [
                    r.model,
                    labels.get((r.model, r.config, r.data), r.config),
                    r.cohort,
                    r.task,
                    r.metric,
                    " ".join(map(str, r.seeds)) or "-",
                    value,
                    ci,
                ]
            )
        header = ["model", "config", "cohort", "task", "metric", "seeds", "mean ± sd", "pooled CI"]
        parts += [
            "",
            "Over seeds: mean ± sd of the seeds' values; pooled 95% CI (Rubin's rules: seed "
            "spread + each seed's bootstrap CI).",
            tabulate(table, header, "github", disable_numparse=True),
        ]
        if not all_metrics:
            parts.append(f"All metrics: {sweep_dir / SEEDS_CSV}")
    return SweepReport(sweep_dir, jobs, rows, "\n".join(parts))


def _write_outputs(report: SweepReport) -> None:
    """``summary.txt`` and ``seeds.csv`` in the sweep folder (best effort: printing comes first)."""
    import csv
    import io

    try:
        write_atomic(report.sweep_dir / SUMMARY_TXT, report.text + "\n")
        if report.rows:
            buffer = io.StringIO()
            dicts = [r.to_dict() for r in report.rows]
            writer = csv.DictWriter(buffer, fieldnames=list(dicts[0]))
            writer.writeheader()
            writer.writerows(dicts)
            write_atomic(report.sweep_dir / SEEDS_CSV, buffer.getvalue())
    except OSError as exc:
        log.warning("could not write the sweep summary files: %s", exc)


class SweepSummary(Callback):
    """Hydra callback: stamp the sweep folder at the start, print the summary at the end."""

    def __init__(self, all_metrics: bool = False) -> None:
        self.all_metrics = all_metrics
        self.sweep_id: str | None = None
        self.started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir))
        self.sweep_id, self.started = uuid.uuid4().hex, time.time()
        stamp = {"id": self.sweep_id, "started_at": now(), "host": socket.gethostname()}
        write_atomic(sweep_dir / SWEEP_STAMP, json.dumps(stamp, indent=2) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Print and write the summary; exit 1 when a job did not end well.

        ``SystemExit`` is the one way out of a callback: Hydra turns any ``Exception`` a
        callback raises into a warning, and a multirun's task function has no return value.
        """
        sweep_dir = Path(str(config.hydra.sweep.dir))
        since = None if self.started is None else self.started - 1.0  # file-time granularity
        jobs = collect_jobs(sweep_dir, self.sweep_id, since)
        report = summarize(sweep_dir, jobs, all_metrics=self.all_metrics)
        _write_outputs(report)
        print("\n" + report.text, flush=True)
        if report.failed:
            raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.runner.sweep",
        description="Print the summary of a sweep folder (jobs, failures, seed-aggregated rows).",
    )
    parser.add_argument("sweep_dir", type=Path)
    parser.add_argument("--all-metrics", action="store_true", help="every metric, not only AUC/C")
    args = parser.parse_args(argv)
    if not args.sweep_dir.is_dir():
        parser.error(f"{args.sweep_dir} is not a folder")
    report = summarize(args.sweep_dir, collect_jobs(args.sweep_dir), all_metrics=args.all_metrics)
    print(report.text)
    return 1 if report.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
