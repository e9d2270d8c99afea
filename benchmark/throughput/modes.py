"""How a network is run in one sweep row: precision, memory layout, ``torch.compile``.

A :class:`Mode` turns a network into a predictor ``x -> p(PD)`` (sigmoid of the logit, float32,
shape ``[n]``) under ``torch.inference_mode``. Precisions:

* ``fp32``: IEEE float32 everywhere; TF32 explicitly *off* (cuDNN convolutions use TF32 by
  default in PyTorch, so "fp32" without this would silently be TF32 for the 3D CNN);
* ``tf32``: float32 tensors, TF32 tensor-core math in matmuls and convolutions (CUDA only);
* ``bf16`` / ``fp16``: ``torch.autocast`` on the device (CPU autocast too), weights in fp32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

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


__all__ = ["AUTOCAST_DTYPES", "Mode", "Predictor", "allow_more_recompiles", "memory_format"]
