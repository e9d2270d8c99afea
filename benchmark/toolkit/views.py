"""A crop classifier whose network is 2D: it sees 2.5D views of each crop."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from benchmark.data.crops import LesionCrops, view_channels, views_25d
from benchmark.toolkit.crops import CropClassifier


class ViewClassifier(CropClassifier):
    """:class:`CropClassifier` on :func:`~benchmark.data.crops.views_25d` of the crops.

    ``views``: ``orthogonal`` (axial, coronal, sagittal planes through the lesion centre) or
    ``axial`` (``n_slices`` adjacent axial slices). ``image_size`` resizes the views (None: the
    crop size). :meth:`build_net` builds a 2D network with :attr:`in_chans` input channels.
    """

    def __init__(
        self,
        crops: LesionCrops,
        views: str = "orthogonal",
        n_slices: int = 3,
        image_size: int | None = None,
        train: Any = None,
        seed: int = 0,
    ) -> None:
        super().__init__(crops, train, seed)
        self.views = views
        self.n_slices = n_slices
        self.image_size = image_size

    @property
    def in_chans(self) -> int:
        """The views' channels: the crops' channels times the planes or slices."""
        return view_channels(self.crops.channels, self.views, self.n_slices)

    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        images = views_25d(batch, self.views, self.n_slices)
        if self.image_size and self.image_size != images.shape[-1]:
            size = (int(self.image_size),) * 2
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        return images


__all__ = ["ViewClassifier"]
