"""Networks built for the crops they will see."""

from __future__ import annotations

import inspect
from collections.abc import Callable

from torch import nn

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


__all__ = ["build_with_input"]
