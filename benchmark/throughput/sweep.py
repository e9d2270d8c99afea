"""Model-only sweep: precision x layout x compile x batch size, inputs already on the device.

Each mode gets its own copy of one randomly initialised network (the same weights for every
row), passes the accuracy gate or not, then is timed at every batch size. A batch that runs out
of device memory is retried at half the size (the OOM and the size that ran are recorded), and a
row that fails for any other reason is recorded with its error: a sweep never hides a failure,
and one failing row never loses the others.
"""

from __future__ import annotations

import copy
import gc
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

from benchmark.throughput import gate as gates
from benchmark.throughput.flops import flops_per_sample
from benchmark.throughput.memory import PeakMemory, cpu_peak, cuda_peak
from benchmark.throughput.modes import Mode, Predictor, allow_more_recompiles
from benchmark.throughput.peaks import peak_flops
from benchmark.throughput.settings import SweepSettings
from benchmark.throughput.targets import DeepTarget
from benchmark.throughput.timing import latency_ms, throughput

log = logging.getLogger(__name__)

T = TypeVar("T")

STATUS_OK, STATUS_FAILED, STATUS_OOM_RETRIED = "ok", "failed", "oom-retried"
PASSING = (STATUS_OK, STATUS_OOM_RETRIED)


@dataclass
class Row:
    """One (mode, batch size) of the model-only sweep."""

    precision: str
    layout: str
    compile: bool
    batch: int  # requested
    batch_run: int | None = None  # what ran (smaller after an OOM)
    status: str = STATUS_OK
    samples_per_s: float | None = None
    latency_p50_ms: float | None = None  # single synchronised calls; measured at batch 1
    latency_p90_ms: float | None = None
    peak_memory_mib: float | None = None
    gate: dict[str, Any] = field(default_factory=dict)
    achieved_tflop_per_s: float | None = None
    peak_share: float | None = None  # achieved / the GPU's peak dense FLOP/s at this precision
    compile_s: float | None = None  # first call of a compiled row (compilation + one run)
    warmup_s: float | None = None  # all untimed warm-up calls, compile included
    iters: int | None = None
    seconds: float | None = None
    oom_at: list[int] = field(default_factory=list)
    error: str | None = None

    @property
    def mode(self) -> Mode:
        return Mode(self.precision, self.layout, self.compile)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SweepResult:
    rows: list[Row]
    skipped: list[dict[str, Any]]
    flops_per_sample: int | None
    flops_error: str | None
    reference_range: tuple[float, float] | None
    input_shape: tuple[int, ...]
    reference_error: str | None = None

    def best(self, batch: int | None = None) -> Row | None:
        """The fastest passing row (at ``batch`` when given)."""
        rows = [
            r
            for r in self.rows
            if r.status in PASSING and r.samples_per_s and (batch is None or r.batch == batch)
        ]
        return max(rows, key=lambda r: r.samples_per_s or 0.0, default=None)


def free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def with_oom_retry(
    measure: Callable[[int], T], batch: int, device: torch.device
) -> tuple[T | None, int | None, list[int]]:
    """``measure(batch)``, halving ``batch`` after each out-of-memory error.

    Returns the result, the batch that ran, and the batches that ran out of memory. Memory is
    freed *after* the ``except`` block, once the traceback (which holds the failed call's
    frames and their tensors) is gone.
    """
    ooms: list[int] = []
    while batch >= 1:
        try:
            return measure(batch), batch, ooms
        except torch.OutOfMemoryError:  # torch.cuda.OutOfMemoryError is this class
            ooms.append(batch)
        free_memory(device)
        log.warning("out of memory at batch %d; retrying at %d", ooms[-1], batch // 2)
        batch //= 2
    return None, None, ooms


def _modes(settings: SweepSettings, device: torch.device, ndim: int) -> tuple[list[Mode], list]:
    modes: dict[tuple, Mode] = {}
    skipped = []
    for compiled in settings.compile:
        for precision in settings.precisions:
            for layout in settings.layouts:
                mode = Mode(precision, layout, compiled)
                reason = mode.not_applicable(device, ndim)
                if reason:
                    skipped.append(
                        {
                            "precision": precision,
                            "layout": layout,
                            "compile": compiled,
                            "reason": reason,
                        }
                    )
                    continue
                resolved = Mode(precision, mode.layout_for(ndim), compiled)
                modes.setdefault((precision, resolved.layout, compiled), resolved)
    return list(modes.values()), skipped


def _measure(
    predict: Predictor,
    target: DeepTarget,
    mode: Mode,
    settings: SweepSettings,
    device: torch.device,
) -> Callable[[int], tuple[Any, PeakMemory, dict | None]]:
    def measure(batch: int):
        x = torch.rand((batch, *target.input_shape), device=device)
        x = x.contiguous(memory_format=mode.format_for(target.ndim))

        def call() -> torch.Tensor:
            return predict(x)

        timing = dict(
            warmup=settings.warmup,
            min_iters=settings.min_iters,
            max_iters=settings.max_iters,
            min_time_s=settings.min_time_s,
        )
        if device.type == "cuda":
            with cuda_peak(device) as memory:
                result = throughput(call, device, **timing)
        else:
            result = throughput(call, device, **timing)
            memory = cpu_peak(call)
        latency = latency_ms(call, device, settings.latency_iters) if batch == 1 else None
        return result, memory, latency

    return measure


def _run_row(
    row: Row,
    measure: Callable[[int], tuple[Any, PeakMemory, dict | None]],
    device: torch.device,
    flops: int | None,
    gpu_name: str | None,
) -> None:
    try:
        outcome, ran, ooms = with_oom_retry(measure, row.batch, device)
    except Exception as exc:  # a failing row is reported, never raised: the sweep goes on
        log.exception("row %s batch %d failed", row.mode.label, row.batch)
        row.status, row.error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"[:500]
        free_memory(device)
        return
    row.oom_at = ooms
    if outcome is None:
        row.status = STATUS_FAILED
        row.error = f"out of memory at every batch down to 1 ({ooms})"
        return
    result, memory, latency = outcome
    row.batch_run = ran
    row.samples_per_s = round(result.per_second(ran), 3)
    row.iters, row.seconds = result.iters, round(result.seconds, 6)
    row.warmup_s = round(result.warmup_s, 4)
    row.compile_s = round(result.first_call_s, 4) if row.compile else None
    row.peak_memory_mib = memory.mib
    if latency:
        row.latency_p50_ms = round(latency["p50"], 4)
        row.latency_p90_ms = round(latency["p90"], 4)
    if flops:
        achieved = flops * row.samples_per_s
        row.achieved_tflop_per_s = round(achieved / 1e12, 6)
        peak = peak_flops(gpu_name, row.precision) if device.type == "cuda" else None
        row.peak_share = round(achieved / peak, 5) if peak else None
    if ooms and row.status == STATUS_OK:
        row.status = STATUS_OOM_RETRIED
    # One line per row: a sweep stopped by a time limit still leaves what it measured in the log.
    log.info(
        "model-only %s batch %d: %s samples/s (%s), %d iters in %.2f s, warm-up %.2f s",
        row.mode.label,
        ran,
        row.samples_per_s,
        row.status,
        row.iters,
        row.seconds,
        row.warmup_s,
    )


def sweep(
    target: DeepTarget,
    settings: SweepSettings,
    device: torch.device,
    gpu_name: str | None = None,
) -> SweepResult:
    """Every applicable mode at every batch size of ``settings``."""
    ndim = target.ndim
    modes, skipped = _modes(settings, device, ndim)
    if any(m.compile for m in modes):
        allow_more_recompiles()
    gate_x = gates.gate_inputs(target.input_shape, settings.gate.batch, settings.gate.seed)
    base = target.build(device, calibration=gate_x)
    reference_mode = Mode("fp32", "contiguous", False)
    with reference_mode.active(device):
        try:
            reference = gates.probabilities(
                reference_mode.prepare(copy.deepcopy(base), ndim), gate_x.to(device)
            )
            reference_error = None
        except Exception as exc:  # every row fails its gate, but is still timed and shown
            reference, reference_error = None, f"no fp32 reference: {type(exc).__name__}: {exc}"
            free_memory(device)
        try:
            flops, flops_error = flops_per_sample(base, target.input_shape, device), None
        except Exception as exc:  # FLOPs are context; their failure must not stop the sweep
            flops, flops_error = None, f"{type(exc).__name__}: {exc}"[:300]
    reference_range = (
        (float(reference.min()), float(reference.max())) if reference is not None else None
    )

    rows: list[Row] = []
    bar = tqdm(
        total=len(modes) * len(settings.batch_sizes),
        desc=f"model-only {target.name}",
        unit="row",
        disable=not settings.progress,
    )
    with bar:
        for mode in modes:
            tolerance = settings.gate.tolerance_for(mode.precision)
            mode_rows = [
                Row(mode.precision, mode.layout, mode.compile, b) for b in settings.batch_sizes
            ]
            rows.extend(mode_rows)
            bar.set_postfix_str(mode.label)
            with mode.active(device):
                try:
                    predict = mode.prepare(copy.deepcopy(base), ndim, settings.compile_mode)
                    if reference is None:
                        result = gates.GateResult(None, tolerance, False, error=reference_error)
                    else:
                        x = gate_x.to(device).contiguous(memory_format=mode.format_for(ndim))
                        result = gates.check(reference, gates.probabilities(predict, x), tolerance)
                except Exception as exc:
                    log.exception("mode %s failed before timing", mode.label)
                    for row in mode_rows:
                        row.status, row.error = STATUS_FAILED, f"{type(exc).__name__}: {exc}"[:500]
                        row.gate = {"max_abs_diff": None, "tolerance": tolerance, "passed": False}
                    bar.update(len(mode_rows))
                    free_memory(device)
                    continue
                measure = _measure(predict, target, mode, settings, device)
                for row in mode_rows:
                    row.gate = result.to_dict()
                    if not result.passed:
                        # Timed anyway (the figure is informative), but it never counts.
                        row.status = STATUS_FAILED
                        row.error = (
                            f"accuracy gate: max |p - p_fp32| = {result.max_abs_diff} > {tolerance}"
                            if result.max_abs_diff is not None
                            else result.error
                        )
                    _run_row(row, measure, device, flops, gpu_name)
                    bar.update(1)
            del predict, measure
            if mode.compile:
                import torch._dynamo

                torch._dynamo.reset()
            free_memory(device)
    return SweepResult(
        rows, skipped, flops, flops_error, reference_range, target.input_shape, reference_error
    )


__all__ = [
    "PASSING",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_OOM_RETRIED",
    "Row",
    "SweepResult",
    "free_memory",
    "sweep",
    "with_oom_retry",
]
