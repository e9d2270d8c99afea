"""Peak dense FLOP/s of known GPUs per precision, to state the share a row achieves.

From NVIDIA's data sheets (H100, H200, A100), *dense* figures: the sheets' tensor-core numbers
are "with sparsity", i.e. twice the dense rate, and are halved here. ``fp32`` is the non-tensor
core rate (TF32 off). Keys are matched as substrings of ``torch.cuda.get_device_name()``, first
match wins, so the more specific names come first ("H100 PCIe" before "H100").
"""

from __future__ import annotations

from typing import Any

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
SOURCE = "NVIDIA H100/H200/A100 data sheets, dense (sparsity figures halved)"


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


__all__ = ["PEAK_TFLOPS", "SOURCE", "peak_flops", "peak_table"]
