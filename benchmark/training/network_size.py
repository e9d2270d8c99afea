"""Whether a network takes the crops it would train on, and if not, the crop size it needs.

A network's downsampling sets the smallest input it takes (DenseNet121: /32, so 21^3 crops end
at 1^3 before its last pooling). One zero sample through the network before training turns a
shape error from inside the first step into a refusal that names the size needed; the same
probe runs in ``python -m benchmark.check`` (benchmark/runner/probes.py), before any data are built.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LARGEST_PROBED = 128  # crop edge (voxels) up to which a refused network's smallest size is sought


class NetworkSizeError(ValueError):
    """A network does not take the crops it would train on; the message gives the size it needs."""


def forward_error(
    build: Callable[[], nn.Module],
    to_input: Callable[[torch.Tensor], torch.Tensor],
    channels: int,
    size: int,
    net: nn.Module | None = None,
) -> str | None:
    """Why one zero batch of ``size``-voxel crops does not go through the network (None: it
    does, with one logit per sample). Eval mode (batch norm takes a batch of one there) and no
    gradient: the weights, their statistics and the random state stay as they were."""
    net = build() if net is None else net
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            out = net(to_input(torch.zeros((1, channels, size, size, size))))
    except (RuntimeError, ValueError) as err:
        return str(err).strip().splitlines()[0]
    finally:
        net.train(was_training)
    if out.numel() != 1:
        return f"it gives {tuple(out.shape)} for one sample, not one logit"
    return None


def smallest_size(
    build: Callable[[], nn.Module],
    to_input: Callable[[torch.Tensor], torch.Tensor],
    channels: int,
    size: int,
) -> int | None:
    """The smallest crop edge above ``size`` (voxels, up to :data:`LARGEST_PROBED`) that goes
    through, found by doubling then bisection (a network's downsampling makes the sizes that
    work an upward-closed range, near enough); None: none does."""

    def fails(edge: int) -> bool:
        return forward_error(build, to_input, channels, edge) is not None

    low, high = size, min(2 * size, LARGEST_PROBED)
    while high < LARGEST_PROBED and fails(high):
        low, high = high, min(2 * high, LARGEST_PROBED)
    if fails(high):
        return None
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if not fails(middle) else (middle, high)
    return high


def size_message(edge: int, error: str, smallest: int | None, where: str = "") -> str:
    """The refusal of a network at crop edge ``edge``: what failed, the size it needs, the fix."""
    head = f"the network does not take the {edge}^3-voxel crops it would train on{where}: {error}."
    if smallest is None:
        return (
            f"{head} No crop up to {LARGEST_PROBED}^3 voxels goes through either: its downsampling"
            " or its input channels do not fit the crops; change the network (model.submission)"
        )
    return (
        f"{head} The smallest crop it takes is {smallest}^3 voxels: make the crops larger "
        "(hardware.deep.size_mm up, or hardware.deep.spacing_mm down) or use a network with "
        "less downsampling"
    )


def check_network_size(
    net: nn.Module,
    build: Callable[[], nn.Module],
    to_input: Callable[[torch.Tensor], torch.Tensor],
    sample_shape: tuple[int, ...],
) -> None:
    """Refuse, before training, a network that does not take its crops (``fit_binary``)."""
    channels, edge = int(sample_shape[0]), int(sample_shape[1])
    error = forward_error(build, to_input, channels, edge, net=net)
    if error is not None:
        smallest = smallest_size(build, to_input, channels, edge)
        raise NetworkSizeError(size_message(edge, error, smallest))
