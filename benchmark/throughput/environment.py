"""The hardware and software key of a throughput record: a figure without it is meaningless.

Extends :func:`benchmark.results.hardware` (CPU, cores, memory, GPU name) with what decides GPU
speed: driver, CUDA and cuDNN versions, compute capability, torch's math settings and threads.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import torch

from benchmark.results import hardware, package_versions


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


__all__ = ["device_slug", "environment", "slug"]
