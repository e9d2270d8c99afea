"""Convolutions rebuilt for the input size: the same network, fewer weights, less work."""

from __future__ import annotations

import itertools

import pytest
import timm
import torch
from torch import nn

from benchmark.toolkit.networks import PixelConv2d, specialise_convolutions


def _pair(backbone: str, **kwargs) -> tuple[nn.Module, nn.Module]:
    """Two copies of one randomly initialised backbone, in float64: the comparisons below are of
    functions, and float32 rounding grows through batch norm over a batch of four 1x1 maps."""
    torch.manual_seed(0)
    full = timm.create_model(backbone, pretrained=False, in_chans=6, num_classes=1, **kwargs)
    trimmed = timm.create_model(backbone, pretrained=False, in_chans=6, num_classes=1, **kwargs)
    trimmed.load_state_dict(full.state_dict())
    return full.double(), trimmed.double()


@pytest.mark.parametrize(
    ("backbone", "kwargs"),
    [("resnet18", {}), ("efficientnet_b0", {}), ("convnext_atto", {"conv_mlp": False})],
)
def test_a_trimmed_backbone_is_the_same_network(backbone: str, kwargs: dict):
    """Same outputs, same gradients on the taps it keeps, in train mode on 32^2 views."""
    full, trimmed = _pair(backbone, **kwargs)
    x = torch.randn(4, 6, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    state = torch.random.get_rng_state()
    assert specialise_convolutions(trimmed, x[:1])["cropped"] > 0
    assert torch.equal(torch.random.get_rng_state(), state)  # no draw: the fit's seed is intact
    assert trimmed.training
    assert sum(p.numel() for p in trimmed.parameters()) < sum(p.numel() for p in full.parameters())
    kept = {
        name: _copied_from(p, dict(trimmed.named_parameters())[name])
        for name, p in full.named_parameters()
    }
    torch.testing.assert_close(trimmed(x), full(x), rtol=1e-9, atol=1e-9)
    full(x).sum().backward()
    trimmed(x).sum().backward()
    scale = max(p.grad.abs().max() for p in full.parameters())
    for name, q in trimmed.named_parameters():
        p, taps = dict(full.named_parameters())[name], kept[name]
        dead = p.grad.clone()
        dead[taps] = 0
        assert not dead.any(), name  # the dropped taps got no gradient in the full network
        torch.testing.assert_close(q.grad, p.grad[taps], rtol=1e-9, atol=1e-9 * scale, msg=name)


def _copied_from(full: torch.Tensor, kept: torch.Tensor) -> tuple[slice, ...]:
    """The taps of ``full`` that ``kept`` holds."""
    for offsets in itertools.product(
        *(range(n - m + 1) for n, m in zip(full.shape[2:], kept.shape[2:], strict=True))
    ):
        taps = (slice(None),) * min(full.dim(), 2) + tuple(
            slice(o, o + m) for o, m in zip(offsets, kept.shape[2:], strict=True)
        )
        if torch.equal(full[taps], kept):
            return taps
    raise AssertionError(f"{tuple(kept.shape)} is no crop of {tuple(full.shape)}")


def test_resnet18_on_32_pixel_views_loses_most_of_its_last_stage():
    """Its last stage runs on 1x1 maps: its 3x3 kernels keep the centre tap."""
    _, net = _pair("resnet18")
    assert specialise_convolutions(net, torch.zeros(1, 6, 32, 32, dtype=torch.float64)) == {
        "cropped": 4,
        "pixel": 3,
    }
    assert net.layer4[1].conv2.kernel_size == (1, 1) and net.layer4[1].conv2.padding == (0, 0)
    assert isinstance(net.layer4[1].conv2, PixelConv2d)
    assert net.layer4[0].conv1.kernel_size == (2, 2)  # stride 2 from 2x2: the lower-right taps
    assert net.layer3[1].conv2.kernel_size == (3, 3)  # 2x2 maps: every tap reaches
    assert sum(p.numel() for p in net.parameters()) < 4.5e6  # from 11.2M


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "kept"),
    [
        (1, 3, 1, 1, (1, 0)),  # a 3x3 on 1x1: the centre tap
        (2, 5, 1, 2, (3, 1)),  # a 5x5 on 2x2: the 3x3 around the centre
        (2, 3, 2, 1, (2, 0)),  # stride 2 from 2x2 to 1x1: the taps at offsets 0 and +1
        (4, 3, 1, 1, (3, 1)),  # the map covers the kernel's reach: as it was
        (5, 3, 1, 0, (3, 0)),  # no padding: every tap reads the map
    ],
)
def test_the_kept_taps_follow_the_map_size(size, kernel, stride, padding, kept):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 3, kernel, stride=stride, padding=padding))
    x = torch.randn(2, 2, size, size)
    before = net(x)
    specialise_convolutions(net, x[:1])
    assert (net[0].kernel_size[0], net[0].padding[0]) == kept
    torch.testing.assert_close(net(x), before)


def test_other_padding_modes_and_subclasses_are_left_alone():
    replicate = nn.Conv2d(2, 2, 3, padding=1, padding_mode="replicate")
    same = timm.layers.Conv2dSame(2, 2, 3)
    net = nn.Sequential(replicate, same)
    assert specialise_convolutions(net, torch.zeros(1, 2, 1, 1)) == {"cropped": 0, "pixel": 0}
    assert net[0] is replicate and net[1] is same


def test_squeeze_and_excitation_runs_as_matrix_products():
    """efficientnet_b0's SE convolutions see one pixel at every stage; its state dict keeps
    timm's keys and shapes there."""
    full, net = _pair("efficientnet_b0")
    x = torch.randn(4, 6, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    counts = specialise_convolutions(net, x[:1])
    se = net.blocks[1][0].se
    assert isinstance(se.conv_reduce, PixelConv2d) and isinstance(se.conv_expand, PixelConv2d)
    assert counts["pixel"] >= 32  # two per block, 16 blocks
    assert se.conv_reduce.weight.shape == full.blocks[1][0].se.conv_reduce.weight.shape
    full.eval(), net.eval()
    torch.testing.assert_close(net(x), full(x))


def test_a_convolution_used_on_two_map_sizes_is_left_alone():
    conv = nn.Conv2d(2, 2, 3, padding=1)

    class Twice(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return conv(x).mean() + conv(x[..., :1, :1]).mean()

    net = Twice()
    net.conv = conv
    assert specialise_convolutions(net, torch.zeros(1, 2, 4, 4)) == {"cropped": 0, "pixel": 0}
    assert net.conv is conv
