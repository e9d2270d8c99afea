"""Model-only throughput: a deep submission's network on random inputs already on the device.

What is measured (:class:`DeepTarget`): the network as the submission declares it
(``Submission.network``), built as for training and randomly initialised (speed does not depend
on the weights), fed inputs of the shape it really sees (``to_input`` of a crop batch: the crop
itself for ``cnn3d``, 2.5D views resized to ``image_size`` for ``timm25d``). Random BatchNorm
statistics (mean 0, variance 1) let activations grow layer after layer, so a random network's
sigmoid can saturate at 0 or 1, where any precision "agrees" with fp32: :meth:`DeepTarget.build`
estimates them from one batch of the gate inputs, as training would. A head that starts at zero
(``timm25d`` does, so that training starts at p = 0.5) would make every prediction 0.5 and the
gate compare nothing: such layers get PyTorch's default initialisation here.

How it is run in one row (:class:`Mode`): precision, memory layout, ``torch.compile``. A mode
turns a network into a predictor ``x -> p(PD)`` (sigmoid of the logit, float32, shape ``[n]``)
under ``torch.inference_mode``. Precisions:

* ``fp32``: IEEE float32 everywhere; TF32 explicitly *off* (cuDNN convolutions use TF32 by
  default in PyTorch, so "fp32" without this would silently be TF32 for the 3D CNN);
* ``tf32``: float32 tensors, TF32 tensor-core math in matmuls and convolutions (CUDA only);
* ``bf16`` / ``fp16``: ``torch.autocast`` on the device (CPU autocast too), weights in fp32.

The sweep (:func:`sweep`): precision x layout x compile x batch size. Each mode gets its own copy
of one randomly initialised network (the same weights for every row), passes the accuracy gate
or not, then is timed at every batch size. A batch that runs out of device memory is retried at
half the size (the OOM and the size that ran are recorded), and a row that fails for any other
reason is recorded with its error: a sweep never hides a failure, and one failing row never
loses the others.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn
from tqdm.auto import tqdm

from benchmark.api.submission import Network
from benchmark.throughput import gate as gates
from benchmark.throughput.measuring import (
    PeakMemory,
    cpu_peak,
    cuda_peak,
    flops_per_sample,
    latency_ms,
    peak_flops,
    throughput,
)
from benchmark.throughput.settings import SweepSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


# ---- what is measured ---------------------------------------------------------------------------


@dataclass
class DeepTarget:
    """A per-lesion network, its crop shape ``[C, s, s, s]`` and network input shape."""

    name: str
    make_net: Callable[[], nn.Module]
    crop_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    to_input: Callable[[torch.Tensor], torch.Tensor]
    network: Network | None = None  # the declared contract, for the end-to-end paths
    seed: int = 0

    @property
    def ndim(self) -> int:
        """Rank of a network input batch (5 for 3D networks, 4 for 2D)."""
        return len(self.input_shape) + 1

    def build(self, device: torch.device, calibration: torch.Tensor | None = None) -> nn.Module:
        """A fresh network under ``seed``, in eval mode on ``device``."""
        torch.manual_seed(self.seed)
        net = self.make_net().to(device)
        reinitialise_zero_layers(net)
        if calibration is not None:
            calibrate_batchnorm(net, calibration.to(device))
        return net.eval()


def reinitialise_zero_layers(net: nn.Module) -> None:
    """Give every layer whose weight is all zeros (a zero-initialised head) a default init."""
    with torch.no_grad():
        for module in net.modules():
            layer = isinstance(module, nn.Linear | nn.modules.conv._ConvNd)
            if layer and not module.weight.any():
                module.reset_parameters()


def calibrate_batchnorm(net: nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running statistics to those of the batch ``x`` (one forward pass)."""
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    saved = [(m, m.momentum) for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
    net.train()
    with torch.no_grad():
        net(x)
    for m, momentum in saved:
        m.momentum = momentum
    net.eval()


def deep_target(network: Network, name: str, seed: int = 0) -> DeepTarget:
    """What the sweep measures of a submission's declared network (``Submission.network``)."""
    return DeepTarget(
        name=name,
        make_net=network.build,
        crop_shape=network.sample_shape,
        input_shape=network.input_shape,
        to_input=network.to_input,
        network=network,
        seed=seed,
    )


# ---- how a row runs it --------------------------------------------------------------------------


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

Predictor = Callable[[torch.Tensor], torch.Tensor]


def memory_format(layout: str, ndim: int) -> tuple[str, torch.memory_format] | str:
    """``(name, format)`` of ``layout`` for inputs of rank ``ndim``, or why it does not apply."""
    if layout == "contiguous":
        return "contiguous", torch.contiguous_format
    if layout in ("channels_last", "channels_last_3d") and ndim == 4:
        return "channels_last", torch.channels_last
    if layout in ("channels_last", "channels_last_3d") and ndim == 5:
        return "channels_last_3d", torch.channels_last_3d
    return f"layout {layout} has no meaning for {ndim}-d inputs"


@contextlib.contextmanager
def tf32_math(enabled: bool) -> Iterator[None]:
    """TF32 in CUDA matmuls and cuDNN convolutions on or off, restored on exit.

    Through the legacy ``allow_tf32`` flags on purpose: after the newer ``fp32_precision``
    setters (torch >= 2.9), reading ``allow_tf32`` or ``get_float32_matmul_precision()`` (as
    other code, inductor included, may do) raises "mix of the legacy and new APIs"; after the
    legacy setters, both APIs read consistently.
    """
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    before = (matmul.allow_tf32, cudnn.allow_tf32)
    matmul.allow_tf32 = cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        matmul.allow_tf32, cudnn.allow_tf32 = before


@dataclass(frozen=True)
class Mode:
    precision: str = "fp32"
    layout: str = "contiguous"
    compile: bool = False

    def not_applicable(self, device: torch.device, ndim: int) -> str | None:
        """Why this mode cannot run on ``device`` for ``ndim``-d inputs, or None."""
        if self.precision == "tf32" and device.type != "cuda":
            return "TF32 is a CUDA tensor-core mode (on CPU it would be fp32)"
        cuda = device.type == "cuda"
        if self.precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
            return "this GPU has no bf16"
        resolved = memory_format(self.layout, ndim)
        return resolved if isinstance(resolved, str) else None

    def layout_for(self, ndim: int) -> str:
        resolved = memory_format(self.layout, ndim)
        return resolved if isinstance(resolved, str) else resolved[0]

    def format_for(self, ndim: int) -> torch.memory_format:
        resolved = memory_format(self.layout, ndim)
        if isinstance(resolved, str):
            raise ValueError(resolved)
        return resolved[1]

    @contextlib.contextmanager
    def active(self, device: torch.device) -> Iterator[None]:
        """Process-wide math flags of this mode (TF32), for building, compiling and running."""
        if device.type != "cuda":
            yield
            return
        with tf32_math(self.precision == "tf32"):
            yield

    def prepare(self, net: nn.Module, ndim: int, compile_mode: str = "default") -> Predictor:
        """``net`` (eval, on its device) converted to this layout and wrapped as a predictor.

        ``dynamic=False``: every batch size compiles its own static graph, which is what a
        deployment with a fixed batch runs (the end-to-end path pads its last batch).
        """
        net = net.eval().to(memory_format=self.format_for(ndim))
        forward: Callable[[torch.Tensor], torch.Tensor] = net
        if self.compile:
            forward = torch.compile(net, mode=compile_mode, dynamic=False)
        dtype = AUTOCAST_DTYPES.get(self.precision)

        def predict(x: torch.Tensor) -> torch.Tensor:
            with (
                torch.inference_mode(),
                torch.autocast(
                    x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None
                ),
            ):
                return torch.sigmoid(forward(x).float()).reshape(-1)

        return predict

    @property
    def label(self) -> str:
        return f"{self.precision}/{self.layout}{'/compile' if self.compile else ''}"


def allow_more_recompiles(limit: int = 64) -> None:
    """One static graph per batch size: raise dynamo's per-function recompile limit (8)."""
    import torch._dynamo

    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, max(limit, getattr(torch._dynamo.config, name)))


# ---- the sweep ----------------------------------------------------------------------------------


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
    "AUTOCAST_DTYPES",
    "PASSING",
    "STATUS_FAILED",
    "STATUS_OK",
    "STATUS_OOM_RETRIED",
    "DeepTarget",
    "Mode",
    "Predictor",
    "Row",
    "SweepResult",
    "allow_more_recompiles",
    "calibrate_batchnorm",
    "deep_target",
    "reinitialise_zero_layers",
    "free_memory",
    "memory_format",
    "sweep",
    "tf32_math",
    "with_oom_retry",
]
