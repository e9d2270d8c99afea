"""A MONAI 3D CNN on lesion crops (CT + lesion mask) for per-lesion progressive disease."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from benchmark.data.crops import LesionCrops
from benchmark.toolkit.deep import CropClassifier, build_with_input


class CNN3D(CropClassifier):
    """``net`` is a factory of a MONAI 3D network with one output (``num_classes: 1`` or
    ``out_channels: 1``), e.g. ``monai.networks.nets.ResNet`` as a Hydra ``_partial_``; its
    input channels are filled in from the crops."""

    def __init__(
        self,
        crops: LesionCrops,
        net: Callable[..., nn.Module],
        train: Any = None,
        seed: int = 0,
    ) -> None:
        super().__init__(crops, train, seed)
        self.net = net

    def build_net(self) -> nn.Module:
        return build_with_input(self.net, self.crops.channels, self.crops.size)
