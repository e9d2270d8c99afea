"""Deep template submission: copy this folder, rename, replace the network. It runs as it is.

    cp -r submissions/_deep_template submissions/my_net
    # rename conf/model/deep_template.yaml -> my_net.yaml; in it set name: my_net and
    # _target_: submissions.my_net.model.<YourClass>; fill in model_card.yaml and README.md
    python -m benchmark model=my_net data=tiny preset=quick

A deep submission writes the network only. The toolkit's ``CropClassifier``
(benchmark/toolkit/crops.py, the body of ``cnn3d`` and ``timm25d``) gives it the lesion crops
(``crops: ${crops}``: [CT, lesion mask], cached by the harness), trains it with the benchmark's
loop (``train``: benchmark.training.TrainSettings), predicts p(PD) per lesion, keeps the weights
of each fit and declares the network to the throughput tool. A 2D network on 2.5D views of the
crops subclasses ``ViewClassifier`` instead (``baselines/timm25d.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from monai.networks.nets import DenseNet
from torch import nn

from benchmark.data.crops import LesionCrops
from benchmark.toolkit.deep import CropClassifier


class DenseNetCrops(CropClassifier):
    """A MONAI 3D DenseNet with one output logit on the lesion crops (per-lesion PD)."""

    def __init__(
        self,
        crops: LesionCrops,
        init_features: int = 16,
        growth_rate: int = 8,
        block_config: Sequence[int] = (2, 2, 2),
        train: Any = None,
        seed: int = 0,
    ) -> None:
        super().__init__(crops, train, seed)  # stores crops, train, seed
        self.init_features = init_features
        self.growth_rate = growth_rate
        self.block_config = block_config

    def build_net(self) -> nn.Module:
        """A fresh network (CropClassifier calls it under the fit's seed); its input channels
        are the crops' (``crops.label_channel`` adds the mask)."""
        return DenseNet(
            spatial_dims=3,
            in_channels=self.crops.channels,
            out_channels=1,
            init_features=self.init_features,
            growth_rate=self.growth_rate,
            block_config=tuple(self.block_config),
        )
