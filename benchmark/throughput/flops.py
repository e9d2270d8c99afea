"""FLOPs of one forward pass per sample (``torch.utils.flop_counter``), for achieved FLOP/s.

``FlopCounterMode`` counts matmuls and convolutions (2 FLOPs per multiply-add), which is where
the time of these networks goes; normalisations, activations and pooling are not counted, so
achieved FLOP/s is a slight underestimate of the work done.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def flops_per_sample(net: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> int:
    """FLOPs of ``net`` on one sample of ``input_shape`` (fp32, eval, no grad)."""
    x = torch.zeros((1, *input_shape), device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net.eval()(x)
    return int(counter.get_total_flops())


__all__ = ["flops_per_sample"]
