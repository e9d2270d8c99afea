"""A MONAI 3D CNN on lesion crops (CT + lesion mask) for per-lesion progressive disease."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from torch import nn

from baselines.crop_classifier import CropClassifier
from benchmark.data.crops import LesionCrops

# How MONAI networks name their input: ResNet n_input_channels; DenseNet, SEResNet, EfficientNetBN
# in_channels; Classifier/Regressor in_shape (channels + spatial size).
_CHANNEL_ARGS = ("n_input_channels", "in_channels", "in_chans")


def build_with_input(net: Callable[..., nn.Module], channels: int, size: int) -> nn.Module:
    """Call a network factory (a Hydra partial) with the crops' channels (and shape if needed),
    so that ``crops.label_channel`` can change without editing the network config."""
    target = getattr(net, "func", net)
    params = inspect.signature(target).parameters
    for name in _CHANNEL_ARGS:
        if name in params:
            return net(**{name: channels})
    if "in_shape" in params:
        return net(in_shape=(channels, size, size, size))
    return net()


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
