"""``python -m benchmark.leaderboard fresh``: every ranked model on fresh draws of the profile.

The public cohorts (data seed ``data.seed`` of the profile) can be simulated by anyone, labels
included, so a figure on them can be tuned to. This command runs each model of the board at
model seed 0 on new draws of the same profile (``data.seed=K``), through the normal run path
(:func:`benchmark.runner.run.run`, one folder per draw and model under ``--out``: a finished run is
reused, so an interrupted command resumes), and writes each model's aggregate over the draws
to ``<root>/fresh/<model>.json`` (:mod:`.fresh_aggregate`). The board shows it beside the
public figure.

Seeds come from ``--data-seeds`` or, so that an organiser can keep them private, from
``NSCLC_IO_BENCH_FRESH_SEEDS`` (comma-separated); private seeds are written nowhere but the
run folders and never printed. The public seed is refused: it is not a fresh draw.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from benchmark.leaderboard.board import LEADERBOARD_DIR, Paths
from benchmark.leaderboard.fresh_aggregate import (
    COMMAND_LINE,
    ENVIRONMENT,
    SeedSource,
    aggregate_json,
    build_aggregate,
    flagged,
)
from benchmark.leaderboard.predictions import PRIMARY_METRIC
from benchmark.leaderboard.store import LeaderboardError, load_entries
from benchmark.records.catalog import by_name
from benchmark.records.reading import (
    RecordError,
    Reference,
    aggregate_seeds,
    differing_keys,
    model_config_key,
)
from benchmark.records.record_format import PROJECT_ROOT, git_commit
from benchmark.runner import launch
from benchmark.utils.atomic import write_atomic

SEEDS_ENV = "NSCLC_IO_BENCH_FRESH_SEEDS"
MODEL_SEED = 0


class FreshError(ValueError):
    """The command cannot start (bad seeds, unknown models); the message says why."""


@dataclass(frozen=True)
class Seeds:
    values: tuple[int, ...]
    source: SeedSource

    @property
    def private(self) -> bool:
        return self.source == ENVIRONMENT

    def folder(self, i: int) -> str:
        """A draw's run folder: named by its seed when public, by a hash of it when private (a
        path shows up in logs and tracebacks)."""
        seed = self.values[i]
        if not self.private:
            return f"data-seed{seed}"
        return "draw-" + hashlib.sha256(str(seed).encode()).hexdigest()[:16]

    def label(self, i: int) -> str:
        """How progress names a draw: its seed when public, its position when private."""
        n = len(self.values)
        return f"draw {i + 1}/{n}" + ("" if self.private else f" (data seed {self.values[i]})")


def resolve_seeds(given: Sequence[int] | None, public: int) -> Seeds:
    """The fresh seeds from the command line, else from the environment; FreshError unless
    they are distinct non-negative integers other than the public seed."""
    if given:
        values, source = [int(s) for s in given], COMMAND_LINE
    else:
        text = os.environ.get(SEEDS_ENV, "").strip()
        if not text:
            raise FreshError(f"no fresh seeds: pass --data-seeds K [K ...] or set {SEEDS_ENV}")
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise FreshError(f"{SEEDS_ENV} must be comma-separated integers") from None
        source = ENVIRONMENT
    if not values:
        raise FreshError("no fresh seeds given")
    if any(v < 0 for v in values):
        raise FreshError("data seeds are non-negative integers")
    if len(set(values)) != len(values):
        raise FreshError("a fresh seed is given twice: each draw must be new")
    if public in values:
        raise FreshError(
            f"data seed {public} is the public seed (data.seed of the profile): its cohorts are "
            "the ones a model may be tuned to, not a fresh draw"
        )
    return Seeds(tuple(values), source)


def board_models(
    paths: Paths, reference: Reference, wanted: Sequence[str] | None, cache_dir: Path
) -> list[str]:
    """The ranked models (those with records on the board), or ``wanted`` if all are ranked;
    classical models first (they take seconds), then the deep ones.

    FreshError if this checkout builds a model from another config than its board records
    were run with: its fresh figures would not be the public figure's model on new data.
    """
    catalog = by_name()
    entries = load_entries(paths.results, reference, catalog)
    configs = {e.model: e.record["provenance"]["config"] for e in entries}
    ranked = sorted(configs)
    if wanted:
        missing = [m for m in wanted if m not in ranked]
        if missing:
            raise FreshError(f"not on the board: {', '.join(missing)}; ranked: {', '.join(ranked)}")
        ranked = [m for m in ranked if m in wanted]
    stale = []
    for model in ranked:
        cfg = OmegaConf.to_container(
            compose_run(model, reference.data_name, int(reference.data["seed"]), cache_dir),
            resolve=True,
        )
        if model_config_key(cfg) != model_config_key(configs[model]):
            keys = differing_keys(configs[model]["model"], cfg["model"], "model")
            stale.append(f"{model}: {', '.join(k.split(' ')[0].rstrip(':') for k in keys[:3])}")
    if stale:
        raise FreshError(
            "the board's records of these models were run with another model config than this "
            f"checkout builds ({'; '.join(stale)}); re-run them (scripts/leaderboard_runs.sh) "
            "or leave them out (--models)"
        )
    return sorted(ranked, key=lambda m: (catalog[m].deep, m))


def compose_run(model: str, data: str, seed: int, cache_dir: Path) -> Any:
    """The config of ``python -m benchmark model=M data=D data.seed=K seed=0``."""
    overrides = [f"model={model}", f"data={data}", f"data.seed={seed}", f"seed={MODEL_SEED}"]
    return launch.compose_run([*overrides, f"paths.cache_dir={cache_dir}"])


def run_one(model: str, data: str, seed: int, out: Path, cache_dir: Path) -> tuple[dict, bool]:
    """One run (or its finished record), its printout kept in ``out/run.log``."""
    outcome = launch.run_logged(compose_run(model, data, seed, cache_dir), out)
    return outcome.record, outcome.reused


def _public_values(paths: Paths, reference: Reference) -> dict[tuple[str, str, str], float]:
    """(model, cohort, task) -> the board's figure of the task's primary metric (seed mean)."""
    entries = load_entries(paths.results, reference, by_name())
    out = {}
    for row in aggregate_seeds([e.record for e in entries]):
        if row.metric == PRIMARY_METRIC.get(row.task) and row.mean is not None:
            out[(row.model, row.cohort, row.task)] = row.mean
    return out


def summary(aggregates: dict[str, dict], public: dict[tuple[str, str, str], float]) -> str:
    """Public figure beside the fresh draws' mean ± sd (n) per model, cohort and task."""
    lines = [f"{'model':<26} {'cohort/task':<22} {'public':>7}  fresh draws"]
    for model, aggregate in aggregates.items():
        for cohort, tasks in aggregate["metrics"].items():
            for task, metrics in tasks.items():
                metric = metrics.get(PRIMARY_METRIC[task])
                if metric is None:
                    continue
                value = public.get((model, cohort, task))
                shown = "n/c" if metric["mean"] is None else f"{metric['mean']:.3f}"
                if metric["sd"] is not None:
                    shown += f" ± {metric['sd']:.3f}"
                shown += f" (n={metric['n']})"
                mark = "  ABOVE the fresh interval" if flagged(value, metric) else ""
                lines.append(
                    f"{model:<26} {cohort + '/' + task:<22} "
                    f"{'—' if value is None else f'{value:.3f}':>7}  {shown}{mark}"
                )
    return "\n".join(lines)


def fresh(
    paths: Paths,
    reference: Reference,
    seeds: Seeds,
    models: Sequence[str],
    out_root: Path,
    cache_dir: Path,
) -> tuple[dict[str, dict], list[str]]:
    """Run every model on every draw (draw by draw: each dataset is simulated once), then write
    the aggregate of each model whose draws all finished. Returns (aggregates, failures)."""
    profile = (reference.data.get("profile") or {}).get("name", reference.data_name)
    records: dict[str, list[dict]] = {m: [] for m in models}
    failures: list[str] = []
    total, done = len(seeds.values) * len(models), 0
    for i, seed in enumerate(seeds.values):
        for model in models:
            done += 1
            where = f"[{done}/{total}] {seeds.label(i)}, {model}"
            out = out_root / profile / seeds.folder(i) / model
            clock = time.perf_counter()
            try:
                record, reused = run_one(model, reference.data_name, seed, out, cache_dir)
            except Exception as err:  # one model's failure must not stop the others
                message = f"{type(err).__name__}: {err}".splitlines()[0]
                if seeds.private:
                    message = f"{type(err).__name__} (see run.log in the run folder)"
                failures.append(f"{seeds.label(i)}, {model}: {message}")
                print(f"{where}: FAILED ({message})", flush=True)
                continue
            took = time.perf_counter() - clock
            print(f"{where}: {'reused' if reused else 'ran'} in {took:.0f} s", flush=True)
            records[model].append(record)
    commit = git_commit()
    aggregates = {}
    for model, found in records.items():
        if len(found) != len(seeds.values):
            continue  # written once every draw is done; a re-run resumes
        aggregate = build_aggregate(found, seeds.values, seeds.source, commit)
        write_atomic(paths.fresh / f"{model}.json", aggregate_json(aggregate))
        aggregates[model] = aggregate
    return aggregates, failures


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.leaderboard fresh",
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "--data-seeds",
        type=int,
        nargs="+",
        metavar="K",
        help=f"fresh data seeds (default: ${SEEDS_ENV}, comma-separated, kept private)",
    )
    parser.add_argument(
        "--models", nargs="+", metavar="M", help="only these models (default: all on the board)"
    )
    parser.add_argument(
        "--root", type=Path, default=LEADERBOARD_DIR, help="leaderboard folder (%(default)s)"
    )
    parser.add_argument("--data", default="default", help="conf/data profile (%(default)s)")
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "outputs" / "fresh",
        help="run folders: OUT/<profile>/data-seed<K>/<model>, draw-<hash> for private seeds "
        "(%(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("NSCLC_IO_BENCH_CACHE") or PROJECT_ROOT / ".cache"),
        help="data and feature cache ($NSCLC_IO_BENCH_CACHE or .cache)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done, 1 some run failed, 2 refused before running."""
    opts = _parser().parse_args(argv)
    paths = Paths.under(opts.root)
    reference = Reference.from_conf(opts.data)
    try:
        seeds = resolve_seeds(opts.data_seeds, int(reference.data["seed"]))
        models = board_models(paths, reference, opts.models, opts.cache_dir.resolve())
    except FreshError as err:
        print(f"fresh refused: {err}", file=sys.stderr)
        return 2
    except (LeaderboardError, RecordError) as err:
        print(f"fresh refused: the board does not load:\n{err}", file=sys.stderr)
        return 2
    shown = "private" if seeds.private else ", ".join(map(str, seeds.values))
    print(
        f"fresh draws of profile {opts.data!r}: {len(seeds.values)} data seeds ({shown}), "
        f"model seed {MODEL_SEED}, models: {', '.join(models)}",
        flush=True,
    )
    clock = time.perf_counter()
    aggregates, failures = fresh(
        paths, reference, seeds, models, opts.out.resolve(), opts.cache_dir.resolve()
    )
    print(
        f"\n{len(aggregates)} aggregate(s) in {paths.fresh} ({time.perf_counter() - clock:.0f} s)"
    )
    if aggregates:
        print(summary(aggregates, _public_values(paths, reference)))
    if failures:
        print(f"\nFAILED ({len(failures)}), re-run to resume:", file=sys.stderr)
        print("\n".join(f"  {f}" for f in failures), file=sys.stderr)
        return 1
    print("now rebuild the table: python -m benchmark.leaderboard")
    return 0


if __name__ == "__main__":
    sys.exit(main())
