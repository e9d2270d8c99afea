"""How a throughput figure is taken: synchronised timing, peak memory, FLOPs, peak FLOP/s,
and the hardware/software key without which a figure is meaningless.

Timing. GPU work is asynchronous: a host clock read right after a launch measures the launch,
not the work. Every measurement synchronises before it starts and after it ends (CUDA events on
a GPU, ``perf_counter`` on the CPU), and throughput loops put no synchronisation between
iterations (that would add a bubble per call and turn a throughput figure into a latency one).

Memory. On CUDA ``torch.cuda.max_memory_allocated`` is exact and free, so it covers the timed
pass. The CPU has no such counter (``ru_maxrss`` is a process high-water mark: it only moves
when a row beats every earlier one), so the resident set is sampled by a thread during a short
extra pass that is not timed, and the peak above the RSS before that pass is reported.

FLOPs. ``torch.utils.flop_counter`` counts matmuls and convolutions (2 FLOPs per multiply-add),
where the time of these networks goes; normalisations, activations and pooling are not counted,
so achieved FLOP/s slightly underestimates the work done. Peak FLOP/s per precision come from
NVIDIA's data sheets, *dense* (the tensor-core figures "with sparsity" are halved); ``fp32`` is
the non-tensor-core rate. GPU names are matched as substrings, first match wins, so the more
specific names come first ("H100 PCIe" before "H100").

Environment. :func:`environment` extends :func:`benchmark.records.record_format.hardware` (CPU,
cores, memory, GPU name) with what decides GPU speed: driver, CUDA and cuDNN versions, compute
capability, torch's math settings and threads.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from benchmark.records.record_format import hardware, package_versions

# ---- timing -------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Seconds for ``n`` back-to-back calls of ``fn``, synchronised at both ends."""
    synchronize(device)
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(n):
            fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0
    began = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - began


@dataclass(frozen=True)
class Throughput:
    iters: int
    seconds: float
    warmup_s: float  # warm-up calls (compilation and cuDNN autotuning happen here), not timed
    first_call_s: float  # the first call alone: the compile time of a compiled row

    def per_second(self, batch: int) -> float:
        return batch * self.iters / self.seconds


def throughput(
    fn: Callable[[], object],
    device: torch.device,
    *,
    warmup: int,
    min_iters: int,
    max_iters: int,
    min_time_s: float,
) -> Throughput:
    """Time ``fn`` after ``warmup`` calls (at least one: the first call compiles/autotunes).

    The number of timed calls is chosen from one timed call so that the loop lasts about
    ``min_time_s`` (within ``[min_iters, max_iters]``).
    """
    first = timed(fn, 1, device)
    rest = timed(fn, max(0, warmup - 1), device) if warmup > 1 else 0.0
    estimate = max(timed(fn, 1, device), 1e-6)
    iters = int(min(max_iters, max(min_iters, math.ceil(min_time_s / estimate))))
    return Throughput(iters, timed(fn, iters, device), first + rest + estimate, first)


def latency_ms(fn: Callable[[], object], device: torch.device, iters: int) -> dict[str, float]:
    """p50/p90 of ``iters`` single calls, each synchronised (the latency a caller waits)."""
    times = [timed(fn, 1, device) * 1000.0 for _ in range(iters)]
    return {
        "p50": float(np.percentile(times, 50)),
        "p90": float(np.percentile(times, 90)),
        "n": iters,
    }


# ---- peak memory --------------------------------------------------------------------------------


MIB = 2**20
CUDA_METHOD = "torch.cuda.max_memory_allocated during the timed pass (weights+inputs+activations)"
CPU_METHOD = "peak RSS above the RSS before an untimed pass, sampled every 2 ms from /proc"


@dataclass
class PeakMemory:
    mib: float | None = None
    method: str = ""
    note: str | None = None


def _rss_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


@contextlib.contextmanager
def cuda_peak(device: torch.device) -> Iterator[PeakMemory]:
    """The allocator's peak while the block runs (reset at entry)."""
    out = PeakMemory(method=CUDA_METHOD)
    torch.cuda.reset_peak_memory_stats(device)
    yield out
    out.mib = round(torch.cuda.max_memory_allocated(device) / MIB, 1)


def cpu_peak(fn: Callable[[], object], calls: int = 3, interval_s: float = 0.002) -> PeakMemory:
    """Peak RSS above the starting RSS while ``fn`` runs ``calls`` times."""
    start = _rss_bytes()
    if start is None:
        return PeakMemory(None, CPU_METHOD, "no /proc/self/statm on this system")
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            value = _rss_bytes()
            if value is not None and value > peak[0]:
                peak[0] = value
            done.wait(interval_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        for _ in range(calls):
            fn()
    finally:
        done.set()
        sampler.join()
    return PeakMemory(round((peak[0] - start) / MIB, 1), CPU_METHOD)


# ---- FLOPs and peak FLOP/s ----------------------------------------------------------------------


def flops_per_sample(net: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> int:
    """FLOPs of ``net`` on one sample of ``input_shape`` (fp32, eval, no grad)."""
    x = torch.zeros((1, *input_shape), device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net.eval()(x)
    return int(counter.get_total_flops())


TERA = 1e12

# name substring -> {precision: dense TFLOP/s}
PEAK_TFLOPS: tuple[tuple[str, dict[str, float]], ...] = (
    ("H200 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("H200", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM
    ("H100 NVL", {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5}),
    ("H100 PCIe", {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0}),
    ("H100", {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4}),  # SXM: "H100 80GB HBM3"
    ("A100", {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0}),
)
PEAK_SOURCE = "NVIDIA H100/H200/A100 data sheets, dense (sparsity figures halved)"


def peak_flops(gpu_name: str | None, precision: str) -> float | None:
    """Peak dense FLOP/s of ``gpu_name`` at ``precision``; None for an unknown GPU or the CPU."""
    if not gpu_name:
        return None
    for key, table in PEAK_TFLOPS:
        if key.lower() in gpu_name.lower():
            value = table.get(precision)
            return value * TERA if value is not None else None
    return None


def peak_table(gpu_name: str | None) -> dict[str, Any] | None:
    """The matched row (TFLOP/s per precision), for the record."""
    if not gpu_name:
        return None
    for key, table in PEAK_TFLOPS:
        if key.lower() in gpu_name.lower():
            return {"matched": key, **table}
    return None


# ---- environment --------------------------------------------------------------------------------


def _nvidia_smi(device_index: int) -> dict[str, str]:
    query = "name,driver_version,memory.total,power.limit,clocks.max.sm"
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                f"--id={device_index}",
                f"--query-gpu={query}",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    values = [v.strip() for v in out.splitlines()[0].split(",")] if out else []
    keys = ["name", "driver", "memory_mib", "power_limit_w", "max_sm_clock_mhz"]
    return dict(zip(keys, values, strict=False))


def environment(device: torch.device) -> dict[str, Any]:
    """Hardware + software of this run (GPU fields only on CUDA)."""
    info: dict[str, Any] = {**hardware(), "device": str(device)}
    info["torch"] = torch.__version__
    info["torch_threads"] = torch.get_num_threads()
    info["cuda"] = torch.version.cuda
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        smi = _nvidia_smi(index)
        info.update(
            {
                "gpu": props.name,
                "gpu_memory_gib": round(props.total_memory / 2**30, 1),
                "compute_capability": f"{props.major}.{props.minor}",
                "multiprocessors": props.multi_processor_count,
                "driver": smi.get("driver"),
                "nvidia_smi": smi or None,
                "cudnn": torch.backends.cudnn.version(),
                "cudnn_benchmark": torch.backends.cudnn.benchmark,
            }
        )
    info["packages"] = package_versions()
    return info


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def device_slug(env: dict[str, Any]) -> str:
    """``nvidia-h100-80gb-hbm3``, or ``cpu-<model>-<n>c`` on the CPU."""
    if env.get("gpu"):
        return slug(env["gpu"])
    cpu = slug(str(env.get("cpu") or "cpu"))
    cpu = re.sub(r"-(r|tm|cpu|processor)(?=-|$)", "", cpu)[:40].strip("-")
    return f"cpu-{cpu}-{env.get('usable_cpus') or env.get('cpu_count')}c"


__all__ = [
    "CPU_METHOD",
    "CUDA_METHOD",
    "PEAK_SOURCE",
    "PEAK_TFLOPS",
    "PeakMemory",
    "Throughput",
    "cpu_peak",
    "cuda_peak",
    "device_slug",
    "environment",
    "flops_per_sample",
    "latency_ms",
    "peak_flops",
    "peak_table",
    "slug",
    "synchronize",
    "throughput",
    "timed",
]
