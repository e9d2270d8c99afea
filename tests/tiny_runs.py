"""Runs of the harness on the tiny cohorts, made once per test session and shared by modules.

``tiny_run(name, seed, ...)`` runs ``benchmark.run.run`` in-process (no interpreter start-up)
into a session temporary folder, with every ``predict`` call of the model watched by the
contract's spy; later calls with the same (name, seed) return the same folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from contract import label_files, view_problems, watching_files
from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import DictConfig

from benchmark.run import run

CONF = Path(__file__).resolve().parents[1] / "conf"
# Deep models at the CPU preset train for minutes: the contract needs the interface, not accuracy.
QUICK_DEEP = (
    "hardware.deep.epochs=2",
    "hardware.deep.min_epochs=0",
    "hardware.deep.spacing_mm=3.0",  # 16^3 crops...
    "hardware.deep.image_size=32",  # ...and 2.5D views resized to 32^2 (convnext needs >= 32)
)


def model_config(name: str, cache_dir: Path, *overrides: str) -> DictConfig:
    """The composed config of ``model=name`` on the tiny cohorts (submissions included)."""
    extra = QUICK_DEEP if name.startswith(("cnn3d", "timm25d")) else ()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[
                f"model={name}",
                "data=tiny",
                f"paths.cache_dir={cache_dir}",
                *extra,
                *overrides,
            ],
        )


@dataclass
class TinyRun:
    out: Path
    record: dict
    # What the spy saw while the harness ran predict: views with problems, label files opened.
    view_problems: list[str] = field(default_factory=list)
    opened_labels: list[str] = field(default_factory=list)
    predict_calls: int = 0


_RUNS: dict[tuple[str, int], TinyRun] = {}


def tiny_run(
    name: str, seed: int, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> TinyRun:
    key = (name, seed)
    if key in _RUNS:
        return _RUNS[key]
    cfg = model_config(name, cache_dir, f"seed={seed}")
    cls = get_class(cfg.model.submission._target_)
    own = "predict" in cls.__dict__
    original = cls.predict
    result = TinyRun(tmp_path_factory.mktemp(f"run-{name}-seed{seed}"), {})

    def spied(self, cohort):
        result.predict_calls += 1
        result.view_problems += view_problems(cohort)
        with watching_files() as opened:
            predictions = original(self, cohort)
        result.opened_labels += label_files(opened)
        return predictions

    cls.predict = spied
    try:
        result.record = run(cfg, result.out)
    finally:
        if own:
            cls.predict = original
        else:
            del cls.predict
    _RUNS[key] = result
    return result
