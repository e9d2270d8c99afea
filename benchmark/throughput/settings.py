"""The sweep settings (the ``throughput:`` node of ``conf/throughput.yaml``), checked up front.

A sweep that fails after ten minutes because of a typo in its last precision wastes a rented GPU:
every value is validated here, before any network is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark.api.cohort import COHORTS

PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
# "channels_last" means the channels-last format of the input's rank (channels_last_3d for 3D
# networks), so one sweep setting serves 2D and 3D models; the row names the format used.
LAYOUTS = ("contiguous", "channels_last", "channels_last_3d")

# Probabilities (sigmoid outputs) of a reduced-precision row may differ from fp32 by at most this
# on the fixed gate batch. fp32 rows change only layout or compilation: their kernels may sum in
# another order, nothing more.
DEFAULT_TOLERANCE = {"fp32": 1e-4, "tf32": 1e-3, "bf16": 1e-2, "fp16": 1e-2}


def _choice(name: str, values: Sequence[Any], allowed: Sequence[Any]) -> tuple[Any, ...]:
    values = tuple(values)
    bad = [v for v in values if v not in allowed]
    if not values or bad:
        raise ValueError(
            f"throughput.{name}: {list(values)} must be a non-empty subset of {allowed}"
        )
    return tuple(dict.fromkeys(values))


def _positive(name: str, value: Any, minimum: float = 1) -> Any:
    if value is None or value < minimum:
        raise ValueError(f"throughput.{name} must be >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class GateSettings:
    """The accuracy gate: predictions on ``batch`` fixed inputs (``seed``) against fp32."""

    batch: int = 8
    seed: int = 0
    tolerance: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_TOLERANCE))

    def tolerance_for(self, precision: str) -> float:
        return float(self.tolerance.get(precision, DEFAULT_TOLERANCE[precision]))


@dataclass(frozen=True)
class EndToEndSettings:
    """Cohort on disk -> predictions. ``mode``/``batch_size`` ``auto``: the fastest passing
    model-only row (at the largest swept batch that is not larger than the cohort)."""

    enabled: bool = True
    cohorts: tuple[str, ...] = COHORTS
    cold: bool = True  # also time a cold per-lesion cache (a fresh temporary folder)
    repeats: int = 3  # warm passes; the median is reported
    batch_size: int | str = "auto"
    precision: str = "auto"
    layout: str = "auto"
    compile: bool | str = "auto"
    read_workers: int = 2  # threads reading cached crops while the device computes
    harness_predict: bool = True  # also time the harness's own predict() (deep models)


@dataclass(frozen=True)
class TrainingScopeSettings:
    """``throughput.training``: on or off, the random training set, the timing."""

    enabled: bool = True
    lesions: int = 128  # random crops the batches are drawn from (epochs repeat)
    warmup: int = 3  # untimed steps per row (allocator, oneDNN/cuDNN kernel choice)
    min_steps: int = 5
    min_time_s: float = 3.0  # timed loop length per row
    repeats: int = 3  # timed loops per row, interleaved across rows; the median is reported
    seed: int = 0

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> TrainingScopeSettings:
        node = dict(node or {})
        unknown = sorted(set(node) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"throughput.training: unknown settings {unknown}")
        settings = cls(**node)
        for name in ("lesions", "min_steps", "repeats"):
            if getattr(settings, name) < 1:
                raise ValueError(f"throughput.training.{name} must be >= 1")
        if settings.min_time_s < 0 or settings.warmup < 0:
            raise ValueError("throughput.training.min_time_s and warmup must be >= 0")
        return settings


@dataclass(frozen=True)
class SweepSettings:
    device: str = "cpu"
    precisions: tuple[str, ...] = ("fp32",)
    layouts: tuple[str, ...] = ("contiguous",)
    compile: tuple[bool, ...] = (False,)
    compile_mode: str = "default"
    batch_sizes: tuple[int, ...] = (1, 8)
    warmup: int = 3
    min_iters: int = 3
    max_iters: int = 1000
    min_time_s: float = 0.5
    latency_iters: int = 20
    threads: int = 2
    progress: bool = True
    gate: GateSettings = field(default_factory=GateSettings)
    end_to_end: EndToEndSettings = field(default_factory=EndToEndSettings)
    training: TrainingScopeSettings = field(default_factory=TrainingScopeSettings)

    @classmethod
    def from_config(cls, node: Mapping[str, Any]) -> SweepSettings:
        """Settings from the plain (resolved) ``throughput`` config node."""
        node = dict(node)
        known = {f for f in cls.__dataclass_fields__} | {"presets"}
        unknown = sorted(set(node) - known)
        if unknown:
            raise ValueError(f"throughput: unknown settings {unknown}; known: {sorted(known)}")
        gate = dict(node.get("gate") or {})
        tolerance = {**DEFAULT_TOLERANCE, **dict(gate.pop("tolerance", None) or {})}
        e2e = dict(node.get("end_to_end") or {})
        if "cohorts" in e2e:
            e2e["cohorts"] = _choice("end_to_end.cohorts", e2e["cohorts"], COHORTS)
        compile_values = node.get("compile", (False,))
        if isinstance(compile_values, bool):
            compile_values = (compile_values,)
        settings = cls(
            device=str(node.get("device", "cpu")),
            precisions=_choice("precisions", node.get("precisions", ("fp32",)), PRECISIONS),
            layouts=_choice("layouts", node.get("layouts", ("contiguous",)), LAYOUTS),
            compile=_choice("compile", compile_values, (False, True)),
            compile_mode=str(node.get("compile_mode", "default")),
            batch_sizes=tuple(
                sorted({int(_positive("batch_sizes", b)) for b in node.get("batch_sizes", (1,))})
            ),
            warmup=int(_positive("warmup", node.get("warmup", 3), 0)),
            min_iters=int(_positive("min_iters", node.get("min_iters", 3))),
            max_iters=int(_positive("max_iters", node.get("max_iters", 1000))),
            min_time_s=float(_positive("min_time_s", node.get("min_time_s", 0.5), 0)),
            latency_iters=int(_positive("latency_iters", node.get("latency_iters", 20))),
            threads=int(_positive("threads", node.get("threads", 2))),
            progress=bool(node.get("progress", True)),
            gate=GateSettings(
                batch=int(_positive("gate.batch", gate.get("batch", 8))),
                seed=int(gate.get("seed", 0)),
                tolerance=tolerance,
            ),
            end_to_end=EndToEndSettings(**e2e),
            training=TrainingScopeSettings.from_config(node.get("training")),
        )
        if settings.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"throughput.device must be cpu or cuda[:N], got {settings.device!r}")
        auto_or = settings.end_to_end
        if auto_or.precision != "auto" and auto_or.precision not in PRECISIONS:
            raise ValueError(f"throughput.end_to_end.precision: auto or one of {PRECISIONS}")
        if auto_or.layout != "auto" and auto_or.layout not in LAYOUTS:
            raise ValueError(f"throughput.end_to_end.layout: auto or one of {LAYOUTS}")
        if auto_or.batch_size != "auto":
            _positive("end_to_end.batch_size", int(auto_or.batch_size))
        _positive("end_to_end.repeats", auto_or.repeats)
        _positive("end_to_end.read_workers", auto_or.read_workers)
        return settings


__all__ = [
    "DEFAULT_TOLERANCE",
    "LAYOUTS",
    "PRECISIONS",
    "EndToEndSettings",
    "GateSettings",
    "SweepSettings",
    "TrainingScopeSettings",
]
