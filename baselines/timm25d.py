"""Any timm 2D backbone on 2.5D views of the lesion crops, for per-lesion progressive disease."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# At import, not in _create: the sandbox's server imports the model's module once before it
# forks the run's workers, so timm (1-3 s to import on the 2-core box) is not imported again by
# each of a run's seven workers.
import timm
import torch
from torch import nn

from benchmark.data.crops import LesionCrops
from benchmark.toolkit.deep import ViewClassifier
from benchmark.toolkit.networks import specialise_convolutions


class Timm25D(ViewClassifier):
    """``timm.create_model(backbone, in_chans=C*views, num_classes=1, **backbone_args)`` on the
    2.5D views of :class:`~benchmark.toolkit.deep.ViewClassifier` (``views``, ``n_slices``,
    ``image_size``).

    ``pretrained_path``: a local timm-format state dict (never downloaded); timm
    adapts its first convolution to ``in_chans`` and drops a classifier of another size.

    The built network's convolutions are rebuilt for the views' size
    (:func:`~benchmark.toolkit.networks.specialise_convolutions`): the same function with fewer
    weights, so its saved weights load into :meth:`build_net`'s network, not into
    ``timm.create_model``'s.
    """

    def __init__(
        self,
        crops: LesionCrops,
        backbone: str = "resnet18",
        backbone_args: dict[str, Any] | None = None,
        views: str = "orthogonal",
        n_slices: int = 3,
        image_size: int | None = None,
        pretrained_path: str | Path | None = None,
        drop_rate: float = 0.0,
        train: Any = None,
        seed: int = 0,
    ) -> None:
        super().__init__(crops, views, n_slices, image_size, train, seed)
        self.backbone = backbone
        self.backbone_args = dict(backbone_args or {})
        self.pretrained_path = pretrained_path
        self.drop_rate = drop_rate

    def build_net(self) -> nn.Module:
        net = self._create()
        _zero_head(net)
        size = int(self.image_size or self.crops.size)
        try:  # fail here, with the fix, rather than deep inside the first batch
            # The views' size is fixed from here on: a network made for 224^2 images runs its
            # last stages on 1x1 and 2x2 maps, where most of a kernel's taps see only padding.
            specialise_convolutions(net, torch.zeros(1, self.in_chans, size, size))
        except RuntimeError as exc:
            raise ValueError(
                f"timm25d: {self.backbone!r} cannot take {size}x{size} views ({exc}); "
                "make them larger with image_size (hardware.deep.image_size), e.g. 64"
            ) from exc
        return net.train()

    def _create(self) -> nn.Module:
        kwargs: dict[str, Any] = {
            "in_chans": self.in_chans,
            "num_classes": 1,
            "drop_rate": self.drop_rate,
            **self.backbone_args,
        }
        if self.pretrained_path is None:
            return timm.create_model(self.backbone, pretrained=False, **kwargs)
        path = Path(self.pretrained_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"timm25d: pretrained_path {path} is not a file")
        try:
            return timm.create_model(
                self.backbone,
                pretrained=True,
                pretrained_cfg_overlay={"file": str(path)},
                **kwargs,
            )
        except (KeyError, RuntimeError) as exc:
            raise ValueError(
                f"timm25d: cannot load {path} into {self.backbone!r} "
                f"({type(exc).__name__}: {exc}); is it a state dict of that architecture?"
            ) from exc


def _zero_head(net: nn.Module) -> None:
    """Start the single-logit classifier at zero (every lesion p = 0.5).

    timm initialises heads by each family's convention, and some are scaled for 1000 classes:
    EfficientNet's Google init draws U(-1/sqrt(num_classes), ...), i.e. U(-1, 1) for one logit,
    which puts the logits at init around +-13 (train-mode BN): the loss starts near 8 and the
    network ends up predicting 0 or 1 for most lesions. A zero head removes that dependence.
    """
    head = net.get_classifier()
    weight = getattr(head, "weight", None)
    if not isinstance(weight, torch.Tensor):  # e.g. nn.Identity: nothing to start at zero
        return
    with torch.no_grad():
        weight.zero_()
        if getattr(head, "bias", None) is not None:
            head.bias.zero_()
