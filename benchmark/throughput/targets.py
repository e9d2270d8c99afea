"""What is measured: the network of a deep submission and the shape of its input.

The network is built exactly as the submission builds it for training (``build_net`` of the
instantiated model config) and randomly initialised: speed does not depend on the weights. Its
input shape is what the submission feeds it: ``to_input`` applied to a crop batch (the crop
itself for ``cnn3d``, 2.5D views resized to ``image_size`` for ``timm25d``).

Random BatchNorm statistics (mean 0, variance 1) let activations grow layer after layer, so a
random network's logits can be large and its sigmoid saturated at 0 or 1, where any precision
"agrees" with fp32. :meth:`DeepTarget.build` therefore estimates the BatchNorm statistics from
one batch of the gate inputs, as training would, so that the accuracy gate compares
probabilities that can differ.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class DeepTarget:
    """A per-lesion network, its crop shape ``[C, s, s, s]`` and network input shape."""

    name: str
    make_net: Callable[[], nn.Module]
    crop_shape: tuple[int, ...]
    input_shape: tuple[int, ...]
    to_input: Callable[[torch.Tensor], torch.Tensor]
    submission: Any = None  # the instantiated submission, for the harness's own predict path
    seed: int = 0

    @property
    def ndim(self) -> int:
        """Rank of a network input batch (5 for 3D networks, 4 for 2D)."""
        return len(self.input_shape) + 1

    def build(self, device: torch.device, calibration: torch.Tensor | None = None) -> nn.Module:
        """A fresh network under ``seed``, in eval mode on ``device``."""
        torch.manual_seed(self.seed)
        net = self.make_net().to(device)
        if calibration is not None:
            calibrate_batchnorm(net, calibration.to(device))
        return net.eval()


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


def deep_target(submission: Any, name: str, seed: int = 0) -> DeepTarget | None:
    """The target of a crop-based submission (``build_net`` + ``to_input`` + ``crops``), or
    None for models without a network (radiomics forests, the clinical Cox model)."""
    crops = getattr(submission, "crops", None)
    if not (hasattr(submission, "build_net") and hasattr(submission, "to_input") and crops):
        return None
    crop_shape = (int(crops.channels), *(int(crops.size),) * 3)
    with torch.no_grad():
        probe = submission.to_input(torch.zeros((1, *crop_shape)))
    return DeepTarget(
        name=name,
        make_net=submission.build_net,
        crop_shape=crop_shape,
        input_shape=tuple(int(d) for d in probe.shape[1:]),
        to_input=submission.to_input,
        submission=submission,
        seed=seed,
    )


__all__ = ["DeepTarget", "calibrate_batchnorm", "deep_target"]
