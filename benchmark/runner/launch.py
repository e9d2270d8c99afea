"""Runs of ``python -m benchmark`` started by another command (fresh draws, a site evaluation).

Outside Hydra's app the config is composed from ``conf/`` directly, and ``${hydra:runtime.cwd}``
has no value, so the cache is given as ``python -m benchmark`` would find it. The run's printout
(its metrics table) goes to ``run.log`` in its folder, so the calling command's own progress
stays readable.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.records.reading import compose_config
from benchmark.records.record_format import PROJECT_ROOT


def compose_run(overrides: Sequence[str]) -> Any:
    """The config of ``python -m benchmark <overrides>`` run from the project root: the cache is
    ``$NSCLC_IO_BENCH_CACHE``, else ``.cache``, unless ``paths.cache_dir=`` is among them."""
    extra = []
    if not any(o.startswith("paths.cache_dir=") for o in overrides):
        cache = os.environ.get("NSCLC_IO_BENCH_CACHE") or PROJECT_ROOT / ".cache"
        extra.append(f"paths.cache_dir={Path(cache).resolve()}")
    return compose_config([*extra, *overrides])


def run_logged(cfg: Any, out: Path) -> Any:
    """:func:`benchmark.runner.run.run` into ``out`` (its printout appended to ``out/run.log``);
    returns its :class:`~benchmark.runner.run.RunOutcome` (a finished record of the same run is
    reused)."""
    from benchmark.runner.run import run  # torch, sksurv: only when running

    out.mkdir(parents=True, exist_ok=True)
    with open(out / "run.log", "a", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        return run(cfg, out)
