"""Runs of the harness on the tiny cohorts, made once per test session and shared by modules.

``tiny_run(name, seed, ...)`` runs ``benchmark.runner.run.run`` from this process (no interpreter
start-up) into a session temporary folder, the model in the bubblewrap sandbox as in any run;
later calls with the same (name, seed) return the same folder. ``declared(name, ...)`` is what a
model declares (tasks, caches, network), read in the sandbox. No submission code runs in this
process: ``tests/conftest.py`` fails a test that imports it. ``bench(...)`` runs
``python -m benchmark`` in a subprocess, as a user would. ``cnn3d_net(widths)`` is the cnn3d
baseline's network at other widths, for tests that need a small real one.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from benchmark.check import CheckFailed, compose_model
from benchmark.records.catalog import by_name
from benchmark.runner.contract import sandboxed
from benchmark.runner.probes import REPORT
from benchmark.runner.run import run
from benchmark.sandbox import bwrap

PROJECT = Path(__file__).resolve().parents[1]
CONF = PROJECT / "conf"


def model_config(name: str, cache_dir: Path, *overrides: str) -> DictConfig:
    """The composed config of ``model=name`` on the tiny cohorts (submissions included), deep
    models (declared: benchmark.records.catalog) at the quick preset: the contract needs the
    interface, not accuracy. ``benchmark.check.compose_model`` refuses a submission config that
    writes outside its model node."""
    entry = by_name().get(name)
    quick = ("preset=quick",) if entry is not None and entry.deep else ()
    try:
        return compose_model(name, "data=tiny", f"paths.cache_dir={cache_dir}", *quick, *overrides)
    except CheckFailed as err:
        raise AssertionError(str(err)) from None


def bench(*args: str, cache_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m benchmark *args`` from the project root with ``cache_dir`` as its cache.

    ``check``: raise AssertionError (exit code, stdout, end of stderr) unless it exits 0.
    """
    env = {**os.environ, "NSCLC_IO_BENCH_CACHE": str(cache_dir)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def cnn3d_net(widths: Sequence[int]) -> functools.partial:
    """The cnn3d baseline's MONAI ResNet-10 (``net`` of conf/model/cnn3d.yaml) with stage widths
    ``widths``, as the partial the baseline gets: call it with ``n_input_channels``."""
    net = OmegaConf.load(CONF / "model" / "cnn3d.yaml").submission.net
    net.block_inplanes = list(widths)
    return instantiate(net, _convert_="all")


@dataclass
class TinyRun:
    out: Path
    record: dict


_RUNS: dict[tuple[str, int], TinyRun] = {}


def tiny_run(
    name: str, seed: int, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TinyRun:
    """``benchmark.runner.run.run`` of ``model=name`` on the tiny cohorts, with the default sandbox:
    every model instance in a worker of the bubblewrap sandbox, as CI must run a pull
    request's code. Fails where bubblewrap cannot run, rather than fall back to a process."""
    key = (name, seed)
    if key in _RUNS:
        return _RUNS[key]
    if not bwrap.available():
        pytest.fail(
            'bubblewrap cannot run here: install the Debian package (README, "Two commands")'
        )
    cfg = model_config(name, cache_dir, f"seed={seed}")
    assert cfg.sandbox == "bwrap", f"the default sandbox is {cfg.sandbox}"
    out = tmp_path_factory.mktemp(f"run-{name}-seed{seed}")
    result = TinyRun(out, run(cfg, out).record)
    assert result.record["provenance"]["config"]["sandbox"] == "bwrap", "the run fell back"
    _RUNS[key] = result
    return result


@dataclass(frozen=True)
class Declared:
    """What a model declares, as its worker in the sandbox answers
    (``benchmark/runner/probes.py``)."""

    tasks: tuple[str, ...]
    tasks_type: str  # of the class attribute: the contract wants a tuple
    caches: dict[str, dict[str, Any]]  # name -> cache_dir, workers, cache_path (callable)
    network: bool
    network_size: dict[str, Any] | None  # the crop size probe (benchmark/runner/probes.py)


_DECLARED: dict[tuple[str, Path], Declared] = {}


def declared(name: str, cache_dir: Path) -> Declared:
    """``tasks``, ``caches()`` and ``network()`` of ``model=name``, read in a sandboxed worker
    that builds it (so that no test imports a submission's class here); once per session."""
    key = (name, Path(cache_dir))
    if key not in _DECLARED:
        cfg = model_config(name, cache_dir)
        submission = OmegaConf.to_container(cfg.model.submission, resolve=True)
        probe = {
            "_target_": "benchmark.runner.probes.Declarations",
            "_recursive_": False,
            "submission": submission,
        }
        seed = int(cfg.seed)
        with (
            sandboxed(cfg, probe, seed) as make_model,
            tempfile.TemporaryDirectory() as d,
        ):
            handle = make_model()
            handle.save_artefacts(Path(d))
            report = json.loads((Path(d) / REPORT).read_text())
            _DECLARED[key] = Declared(tuple(handle.tasks), **report)
            handle.close()
    return _DECLARED[key]
