"""The accuracy gate: a row's speed counts only if its predictions match fp32.

Reduced precision is only faster if it still predicts the same thing. Every row predicts the
same fixed, seeded batch; the maximum absolute difference of its probabilities from the fp32
reference (IEEE fp32, contiguous, eager, same device) must not exceed the precision's stated
tolerance, otherwise the row is reported as failed, with its deviation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


def gate_inputs(input_shape: tuple[int, ...], batch: int, seed: int) -> torch.Tensor:
    """A fixed batch in [0, 1] (the range of windowed CT and of the mask), on the CPU."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((batch, *input_shape), generator=generator)


def probabilities(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> np.ndarray:
    """``predict(x)`` as float64 on the host; in halves after an out-of-memory error (the gate
    batch must not be what fails a row whose timed batch fits)."""
    try:
        return predict(x).detach().float().cpu().numpy().astype(np.float64)
    except torch.OutOfMemoryError:
        if len(x) == 1:
            raise
    if x.device.type == "cuda":
        torch.cuda.empty_cache()
    half = len(x) // 2
    return np.concatenate([probabilities(predict, x[:half]), probabilities(predict, x[half:])])


@dataclass(frozen=True)
class GateResult:
    max_abs_diff: float | None
    tolerance: float
    passed: bool
    reference_range: tuple[float, float] | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        return {
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "passed": self.passed,
            "error": self.error,
        }


def check(reference: np.ndarray, candidate: np.ndarray, tolerance: float) -> GateResult:
    if candidate.shape != reference.shape or not np.all(np.isfinite(candidate)):
        return GateResult(None, tolerance, False, error="non-finite or mis-shaped predictions")
    deviation = float(np.max(np.abs(candidate - reference))) if reference.size else 0.0
    return GateResult(
        deviation,
        tolerance,
        deviation <= tolerance,
        (float(reference.min()), float(reference.max())) if reference.size else None,
    )


__all__ = ["GateResult", "check", "gate_inputs", "probabilities"]
