"""``python -m benchmark.site evaluate``: every model, seeds 0-2, on a site's private cohorts.

Each (model, seed) is one normal run (:func:`benchmark.runner.run.run`) into
``OUT/<model>__seed<k>/``, a folder the site keeps: a finished run is reused, so an interrupted
evaluation resumes where it stopped. The runs are sandboxed; where bubblewrap cannot run, the
command refuses rather than run other people's code beside the site's data with less isolation than
asked for (pass ``sandbox=process`` to accept that knowingly).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmark.records.catalog import by_name
from benchmark.records.reading import canonical_stem
from benchmark.runner.launch import compose_run, run_logged
from benchmark.sandbox import bwrap

SEEDS = (0, 1, 2)


class SiteError(ValueError):
    """The site command cannot start or finish; the message says why."""


@dataclass(frozen=True)
class RunResult:
    model: str
    seed: int
    status: str  # "ran" | "reused" | "failed"
    seconds: float
    error: str | None = None


def site_models(wanted: Sequence[str] | None = None) -> list[str]:
    """Every ranked model (baselines and submissions, not the template), classical ones first
    (seconds each, so a site sees its first results early), or ``wanted`` if all are known."""
    catalog = {name: entry for name, entry in by_name().items() if entry.on_leaderboard}
    names = list(catalog)
    if wanted:
        unknown = [m for m in wanted if m not in catalog]
        if unknown:
            raise SiteError(f"unknown models {unknown}; known: {', '.join(sorted(catalog))}")
        names = list(wanted)
    return sorted(dict.fromkeys(names), key=lambda m: (catalog[m].deep, m))


def compose(model: str, seed: int, overrides: Sequence[str]) -> Any:
    """The config of ``python -m benchmark model=M seed=S <overrides>``."""
    return compose_run([f"model={model}", f"seed={seed}", *overrides])


def check_sandbox(overrides: Sequence[str]) -> str:
    """The sandbox the runs will get; SiteError if ``bwrap`` is asked for and cannot run."""
    cfg = compose(site_models()[0], 0, overrides)
    mode = str(cfg.sandbox)
    if mode == "bwrap" and not bwrap.available():
        raise SiteError(
            "sandbox=bwrap: bubblewrap is not usable here (install the Debian package "
            "bubblewrap). A site runs other people's code beside its data: pass sandbox=process "
            "to accept the weaker isolation (docs/isolation.md)"
        )
    return mode


def run_one(model: str, seed: int, overrides: Sequence[str], out: Path) -> bool:
    """One run; its printout goes to ``out/run.log``. True if a finished record was reused."""
    return run_logged(compose(model, seed, overrides), out).reused


def evaluate(
    models: Sequence[str], seeds: Sequence[int], overrides: Sequence[str], out_root: Path
) -> list[RunResult]:
    """Run every (model, seed); a failure is recorded and the next run starts."""
    jobs = [(m, s) for m in models for s in seeds]
    results = []
    bar = tqdm(jobs, desc="site evaluation", unit="run")
    for model, seed in bar:
        bar.set_postfix_str(f"{model} seed {seed}")
        clock = time.perf_counter()
        try:
            reused = run_one(model, seed, overrides, out_root / canonical_stem(model, seed))
        except Exception as err:  # one model's failure must not stop the others
            message = f"{type(err).__name__}: {err}".splitlines()[0]
            results.append(RunResult(model, seed, "failed", time.perf_counter() - clock, message))
            tqdm.write(f"{model} seed {seed}: FAILED ({message})")
            continue
        took = time.perf_counter() - clock
        results.append(RunResult(model, seed, "reused" if reused else "ran", took))
        tqdm.write(f"{model} seed {seed}: {'reused' if reused else 'ran'} in {took:.0f} s")
    return results


def summary(results: Sequence[RunResult]) -> str:
    """One row per model: each seed's status and time; then every failure with its reason."""
    from tabulate import tabulate

    seeds = sorted({r.seed for r in results})
    rows: dict[str, dict[int, str]] = {}
    for r in results:
        shown = "FAILED" if r.status == "failed" else f"{r.status} {r.seconds:.0f} s"
        rows.setdefault(r.model, {})[r.seed] = shown
    table = tabulate(
        [[model, *(per.get(s, "") for s in seeds)] for model, per in rows.items()],
        headers=["model", *(f"seed {s}" for s in seeds)],
    )
    failed = [f"  {r.model} seed {r.seed}: {r.error}" for r in results if r.status == "failed"]
    total = sum(r.seconds for r in results)
    text = f"{table}\n\n{len(results) - len(failed)}/{len(results)} runs done in {total:.0f} s"
    if failed:
        text += f"; {len(failed)} FAILED (each run's run.log says more):\n" + "\n".join(failed)
    return text
