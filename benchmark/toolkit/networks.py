"""Networks built for the crops they will see."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
import torch.nn.functional as F
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


def specialise_convolutions(net: nn.Module, example: torch.Tensor) -> dict[str, int]:
    """Rebuild the convolutions for the input size the network will see; the same function.

    A network made for 224^2 images runs its last stages on 1x1 and 2x2 maps when it sees 32^2
    views, and there it pays for work that cannot change its output:

    - **Taps that only see padding.** A 3x3 convolution on a 1x1 map is a 1x1 convolution with
      its centre tap; the other eight taps never see an input nor receive a gradient. In
      resnet18 on 32^2 views they are 7 of its 11 million weights, and their backward pass was
      a third of a CPU training step. Each kernel is cropped to the taps some output reads (the
      taps' weights copied, a padding that keeps them where they were).
    - **Pointwise convolutions on one pixel.** A 1x1 convolution on a 1x1 map (squeeze-and-
      excitation, efficientnet's last stages) is one matrix product; as a convolution it costs
      about twice as much on the CPU. It becomes a :class:`PixelConv2d` (same weights and
      state-dict keys, a matrix product in its forward).

    The network computes the same outputs and gradients on the weights it keeps, so it trains
    along the same path up to floating-point rounding; the optimiser only loses taps that
    weight decay alone moved. ``example`` (one input of the size the network will see) goes
    through once, in eval mode without gradient and without a random draw, to learn each
    convolution's input size: call it where that size is fixed. A convolution called on maps of
    two sizes, subclasses of the convolutions (e.g. timm's dynamic "same" padding) and other
    padding modes are left as they are. Returns how many convolutions were cropped and made
    pixel-wise.
    """
    sizes: dict[str, set[tuple[int, ...]]] = {}
    convs = {
        name: m
        for name, m in net.named_modules()
        if type(m) in _PIXEL_CONV and m.padding_mode == "zeros" and not isinstance(m.padding, str)
    }
    hooks = [
        m.register_forward_pre_hook(
            lambda _, a, n=name: sizes.setdefault(n, set()).add(a[0].shape[2:])
        )
        for name, m in convs.items()
    ]
    was_training = net.training
    try:
        with torch.no_grad():
            net.eval()(example)
    finally:
        for hook in hooks:
            hook.remove()
        net.train(was_training)
    counts = {"cropped": 0, "pixel": 0}
    for name, conv in convs.items():
        if len(sizes.get(name, ())) != 1:  # not reached, or reused on maps of two sizes
            continue
        (size,) = sizes[name]
        new = _cropped(conv, size)
        if new is not conv:
            parent, _, attr = name.rpartition(".")
            setattr(net.get_submodule(parent), attr, new)
            counts["cropped"] += 1
        if new.groups == 1 and all(s == 1 for s in size) and all(k == 1 for k in new.kernel_size):
            new.__class__ = _PIXEL_CONV[type(new)]
            counts["pixel"] += 1
    return counts


def _cropped(conv: nn.Module, size: tuple[int, ...]) -> nn.Module:
    """``conv`` with its kernel cropped to the taps that reach an input of ``size``."""
    taps = [_reachable(conv, d, n) for d, n in enumerate(size)]
    kernel = tuple(hi - lo for lo, hi in taps)
    if kernel == conv.kernel_size:
        return conv
    padding = tuple(
        p - lo * dil for p, (lo, _), dil in zip(conv.padding, taps, conv.dilation, strict=True)
    )
    new = nn.utils.skip_init(
        type(conv),
        conv.in_channels,
        conv.out_channels,
        kernel,
        stride=conv.stride,
        padding=padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        device=conv.weight.device,
        dtype=conv.weight.dtype,
    )
    with torch.no_grad():
        new.weight.copy_(conv.weight[(slice(None), slice(None), *(slice(*t) for t in taps))])
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def _reachable(conv: nn.Module, dim: int, size: int) -> tuple[int, int]:
    """The taps ``[lo, hi)`` of ``conv`` along ``dim`` that some output reads from an input of
    ``size`` (the whole kernel where cropping would change the output size)."""
    k, stride = conv.kernel_size[dim], conv.stride[dim]
    pad, dil = conv.padding[dim], conv.dilation[dim]
    out = (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
    seen = [t for t in range(k) if any(0 <= o * stride - pad + t * dil < size for o in range(out))]
    if not seen:
        return 0, k
    lo, hi = seen[0], seen[-1] + 1
    new_pad = pad - lo * dil
    if new_pad < 0 or (size + 2 * new_pad - dil * (hi - lo - 1) - 1) // stride + 1 != out:
        return 0, k
    return lo, hi


class _OnePixel:
    """A pointwise convolution's forward on a map of one pixel: one matrix product."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x.flatten(1), self.weight.flatten(1), self.bias)
        return out.reshape(*out.shape, *x.shape[2:])


class PixelConv1d(_OnePixel, nn.Conv1d):
    """:class:`torch.nn.Conv1d` of kernel 1 on one pixel (:func:`specialise_convolutions`)."""


class PixelConv2d(_OnePixel, nn.Conv2d):
    """:class:`torch.nn.Conv2d` of kernel 1x1 on one pixel (:func:`specialise_convolutions`)."""


class PixelConv3d(_OnePixel, nn.Conv3d):
    """:class:`torch.nn.Conv3d` of kernel 1^3 on one voxel (:func:`specialise_convolutions`)."""


_PIXEL_CONV: dict[type, type] = {
    nn.Conv1d: PixelConv1d,
    nn.Conv2d: PixelConv2d,
    nn.Conv3d: PixelConv3d,
}

__all__ = ["PixelConv2d", "build_with_input", "specialise_convolutions"]
