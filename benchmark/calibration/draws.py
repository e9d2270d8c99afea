"""The model-based calibration targets as a mean over random draws of the profile.

A model's figure moves by about 0.05 AUC from one draw of the simulator to the next, so the
committed records (one draw: the public data seed) say little about where the simulator puts
it. Here each model runs (model seed 0) on N draws whose data seeds are picked at random each
time, never the public one, through the run path of fresh draws
(:func:`benchmark.leaderboard.fresh.run_one`: one folder per draw and model, a finished run is
reused). Each target is computed within a draw, differences included (both models saw the same
patients), then averaged over the draws: ``draws.json`` holds the seeds, the per-draw values and
each target's mean, sd and n.

Until a set of draws is complete its seeds wait in ``<runs>/<profile>/pending.json``, so an
interrupted command resumes them instead of drawing new ones and losing the finished runs.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from tqdm.auto import tqdm

from benchmark.calibration.board import DEVELOPMENT, EXTERNAL
from benchmark.calibration.committed import generator, read_committed
from benchmark.data.source import Dataset, simulated_root
from benchmark.leaderboard.fresh import (
    MODEL_SEED,
    FreshError,
    compose_run,
    resolve_seeds,
    run_one,
)
from benchmark.leaderboard.predictions import PRIMARY_METRIC
from benchmark.records.record_format import PROJECT_ROOT, git_commit
from benchmark.utils.atomic import write_atomic
from benchmark.utils.pool import run_jobs

SCHEMA = "nsclc-io-bench/calibration-draws/v1"
DRAWS_FILE = "draws.json"
PENDING_FILE = "pending.json"
DEFAULT_MODELS = ("rf_radiomics", "rsf", "rsf_clinical", "cnn3d")
MIN_DRAWS = 10  # fewer draws are reported but judge nothing
RUNS_DIR = PROJECT_ROOT / "outputs" / "calibration-draws"
# Large, so that a seed cannot be guessed and tuned to, and past any small public seed; below
# 2**53, so that a JSON reader in any language reads it exactly.
SEED_RANGE = (2**32, 2**53)
TASKS = ("lesion_pd", "os", "pfs")

# model -> cohort -> task -> the task's primary metric (AUC, Harrell's C) on one draw
Figures = dict[str, dict[str, dict[str, float | None]]]
Term = tuple[float, str, str, str]  # weight, model, cohort, task

# Each target is a weighted sum of one draw's figures, so a difference is taken within a draw.
TARGETS: dict[str, tuple[Term, ...]] = {
    "rf_radiomics_auc": ((1.0, "rf_radiomics", DEVELOPMENT, "lesion_pd"),),
    "rf_radiomics_external_drop": (
        (1.0, "rf_radiomics", DEVELOPMENT, "lesion_pd"),
        *((-1.0 / len(EXTERNAL), "rf_radiomics", c, "lesion_pd") for c in EXTERNAL),
    ),
    "cnn3d_minus_rf_radiomics_auc": (
        (1.0, "cnn3d", DEVELOPMENT, "lesion_pd"),
        (-1.0, "rf_radiomics", DEVELOPMENT, "lesion_pd"),
    ),
    **{f"rsf_c_{task}": ((1.0, "rsf", DEVELOPMENT, task),) for task in ("os", "pfs")},
    **{
        f"rsf_clinical_minus_rsf_c_{task}": (
            (1.0, "rsf_clinical", DEVELOPMENT, task),
            (-1.0, "rsf", DEVELOPMENT, task),
        )
        for task in ("os", "pfs")
    },
}


class DrawsRefused(ValueError):
    """The draws cannot start (unknown models, bad seeds); the message says why."""


class DrawsFailed(RuntimeError):
    """Some runs failed; the finished ones and the seeds are kept, so a re-run resumes."""

    def __init__(self, failures: Sequence[str]) -> None:
        listed = "\n  ".join(failures)
        super().__init__(f"{len(failures)} run(s) failed, re-run to resume:\n  {listed}")
        self.failures = list(failures)


def needs(key: str) -> tuple[str, ...]:
    """The models target ``key`` is computed from."""
    return tuple(dict.fromkeys(term[1] for term in TARGETS[key]))


def target_value(figures: Figures, key: str) -> float | None:
    """Target ``key`` on one draw; None where a figure it needs is missing."""
    total = 0.0
    for weight, model, cohort, task in TARGETS[key]:
        value = figures.get(model, {}).get(cohort, {}).get(task)
        if value is None:
            return None
        total += weight * value
    return total


@dataclass(frozen=True)
class Summary:
    mean: float | None
    sd: float | None
    n: int  # draws with a value

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "sd": self.sd, "n": self.n}


@dataclass(frozen=True)
class Draws:
    """Each model's figures on each draw (data seed), model seed 0."""

    generator: str
    profile: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    figures: tuple[Figures, ...]  # one per seed, in the same order
    commit: str = ""
    reused: int = 0  # runs this call found finished (not written)

    def covers(self, key: str) -> bool:
        return all(m in self.models for m in needs(key))

    def values(self, key: str) -> list[float | None]:
        return [target_value(f, key) for f in self.figures]

    def summary(self, key: str) -> Summary:
        found = [v for v in self.values(key) if v is not None]
        return Summary(
            statistics.fmean(found) if found else None,
            statistics.stdev(found) if len(found) > 1 else None,
            len(found),
        )

    def to_json(self) -> str:
        keys = [k for k in TARGETS if self.covers(k)]
        payload = {
            "schema": SCHEMA,
            "generator": self.generator,
            "profile": self.profile,
            "model_seed": MODEL_SEED,
            "models": list(self.models),
            "commit": self.commit,
            "n_draws": len(self.seeds),
            "targets": {k: self.summary(k).to_dict() for k in keys},
            "draws": [
                {
                    "data_seed": seed,
                    "targets": {k: target_value(figures, k) for k in keys},
                    "figures": figures,
                }
                for seed, figures in zip(self.seeds, self.figures, strict=True)
            ],
        }
        return json.dumps(payload, indent=2) + "\n"

    @classmethod
    def from_json(cls, payload: Mapping[str, Any]) -> Draws:
        draws = payload["draws"]
        return cls(
            payload["generator"],
            payload["profile"],
            tuple(payload["models"]),
            tuple(int(d["data_seed"]) for d in draws),
            tuple(d["figures"] for d in draws),
            payload.get("commit", ""),
        )


def read_draws(folder: Path, profile: str) -> Draws | None:
    """The committed draws, if they were made with this generator on this profile."""
    payload = read_committed(folder / DRAWS_FILE, profile)
    return None if payload is None else Draws.from_json(payload)


def pick_seeds(
    n: int, public: int, taken: Sequence[int] = (), rng: random.Random | None = None
) -> list[int]:
    """``n`` new data seeds at random (system entropy), distinct from each other, from
    ``taken`` and from the public seed."""
    rng = rng or random.SystemRandom()
    seen, out = {public, *taken}, []
    while len(out) < n:
        seed = rng.randrange(*SEED_RANGE)
        if seed not in seen:
            seen.add(seed)
            out.append(seed)
    return out


def _figures(record: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """A record's primary metric per cohort and task."""
    out: dict[str, dict[str, float | None]] = {}
    for cohort, tasks in record["metrics"].items():
        for task, metrics in tasks.items():
            if task in TASKS:
                found = metrics.get(PRIMARY_METRIC[task]) or {}
                out.setdefault(cohort, {})[task] = found.get("value")
    return out


def _fingerprint(record: Mapping[str, Any]) -> str:
    return record["provenance"]["data_fingerprint"]


@dataclass(frozen=True)
class Run:
    """One model on one draw: its figures, or why it failed."""

    model: str
    figures: dict[str, dict[str, float | None]] | None
    reused: bool
    seconds: float
    error: str = ""
    fingerprint: str = ""  # of the draw's dataset

    def describe(self) -> str:
        if self.error:
            return f"{self.model} FAILED"
        return f"{self.model} {'reused' if self.reused else 'ran'} in {self.seconds:.0f} s"


def _one(model: str, profile: str, seed: int, folder: Path, cache_dir: Path) -> Run:
    clock = time.perf_counter()
    try:
        record, reused = run_one(model, profile, seed, folder / model, cache_dir)
    except Exception as err:  # one run's failure must not stop the others
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        return Run(model, None, False, time.perf_counter() - clock, message)
    took = time.perf_counter() - clock
    return Run(model, _figures(record), reused, took, fingerprint=_fingerprint(record))


def _draw(
    seed: int, folder: Path, models: Sequence[str], profile: str, cache_dir: Path
) -> list[Run]:
    """Every model on one draw, in one process: two processes never share a draw."""
    return [_one(m, profile, seed, folder, cache_dir) for m in models]


def _runs(
    seeds: Sequence[int],
    folders: Sequence[Path],
    models: Sequence[str],
    profile: str,
    cache_dir: Path,
    workers: int,
    bar: tqdm,
) -> Iterator[tuple[int, list[Run]]]:
    """(draw index, its runs); in-process run by run, or draws spread over processes."""
    if workers <= 1 or len(seeds) < 2:
        for i, seed in enumerate(seeds):
            done = []
            for model in models:
                bar.set_postfix_str(f"draw {i + 1}, {model}")
                done.append(_one(model, profile, seed, folders[i], cache_dir))
                bar.update()
            yield i, done
        return
    jobs = [(s, folders[i], tuple(models), profile, cache_dir) for i, s in enumerate(seeds)]
    index = {job[0]: i for i, job in enumerate(jobs)}
    for job, done in run_jobs(_draw, jobs, workers):
        bar.update(len(models))
        yield index[job[0]], done


def _public_seed(profile: str, cache_dir: Path) -> int:
    return int(compose_run(DEFAULT_MODELS[0], profile, 0, cache_dir).data.seed)


def choose_seeds(n: int, given: Sequence[int] | None, pending: Path, public: int) -> list[int]:
    """The draws' seeds: ``given``, else those of an unfinished set (its first ``n``, topped up
    with new ones), else new ones."""
    try:
        if given is not None:
            return list(resolve_seeds(given, public).values)
        waiting: list[int] = []
        if pending.is_file():
            found = json.loads(pending.read_text())
            if found.get("generator") == generator():
                waiting = list(resolve_seeds(found["seeds"], public).values)
    except FreshError as err:
        raise DrawsRefused(f"{err} ({pending if given is None else 'seeds given'})") from None
    return (waiting + pick_seeds(max(0, n - len(waiting)), public, waiting))[:n]


def _drop_data(profile: str, model: str, prints: Mapping[int, str], cache_dir: Path) -> None:
    """Remove the draws' simulated datasets (data seed -> fingerprint) and their image views
    from the cache: no one draws these seeds again, and each takes about 0.8 GB on the default
    profile."""
    data = compose_run(model, profile, 0, cache_dir).data  # the profile node is the same
    content = OmegaConf.to_container(data.profile, resolve=True)
    for seed, fingerprint in prints.items():
        root = simulated_root(content, seed, cache_dir)
        shutil.rmtree(Dataset(root, fingerprint, cache_dir).view_dir, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)
        Path(f"{root}.lock").unlink(missing_ok=True)


def run_draws(
    profile: str,
    n: int,
    *,
    models: Sequence[str] = DEFAULT_MODELS,
    runs: Path = RUNS_DIR,
    cache_dir: Path | None = None,
    workers: int = 1,
    seeds: Sequence[int] | None = None,
    keep_data: bool = False,
    progress: bool = True,
) -> Draws:
    """Run ``models`` on ``n`` draws of ``profile`` with random data seeds (``seeds`` only to
    repeat given draws) into ``runs/<profile>/data-seed<K>/<model>/``; DrawsFailed if a run
    failed. ``workers > 1`` runs draws in parallel processes (each draw's models in one)."""
    from benchmark.records.catalog import by_name

    if n < 1:
        raise DrawsRefused("at least one draw")
    catalog = by_name()
    unknown = [m for m in models if m not in catalog]
    if unknown:
        raise DrawsRefused(f"unknown models: {', '.join(unknown)}")
    models = sorted(dict.fromkeys(models), key=lambda m: (catalog[m].deep, m))
    cache_dir = Path(cache_dir or os.environ.get("NSCLC_IO_BENCH_CACHE") or PROJECT_ROOT / ".cache")
    cache_dir = cache_dir.resolve()
    root = Path(runs).resolve() / profile
    pending = root / PENDING_FILE
    public = _public_seed(profile, cache_dir)
    if seeds is not None and len(seeds) != n:
        raise DrawsRefused(f"{len(seeds)} seeds given for {n} draws")
    chosen = choose_seeds(n, seeds, pending, public)
    if seeds is None:
        write_atomic(pending, json.dumps({"generator": generator(), "seeds": chosen}) + "\n")
    folders = [root / f"data-seed{s}" for s in chosen]
    figures: list[Figures] = [{} for _ in chosen]
    failures: list[str] = []
    prints: dict[int, str] = {}  # data seed -> its dataset's fingerprint
    reused = 0
    total = len(chosen) * len(models)
    with tqdm(total=total, desc="draws", unit="run", disable=not progress) as bar:
        for i, done in _runs(chosen, folders, models, profile, cache_dir, workers, bar):
            line = "; ".join(r.describe() for r in done)
            bar.write(
                f"draw {i + 1}/{len(chosen)} (data seed {chosen[i]}): {line}", file=sys.stderr
            )
            for run in done:
                if run.error:
                    failures.append(f"data seed {chosen[i]}, {run.model}: {run.error}")
                    continue
                figures[i][run.model] = run.figures
                prints[chosen[i]] = run.fingerprint
                reused += run.reused
    if failures:
        raise DrawsFailed(failures)
    if seeds is None:
        pending.unlink(missing_ok=True)
    if not keep_data:
        _drop_data(profile, models[0], prints, cache_dir)
    return Draws(
        generator(), profile, tuple(models), tuple(chosen), tuple(figures), git_commit(), reused
    )
