"""A per-lesion PD classifier on lesion crops: the body of every deep model (``cnn3d``,
``timm25d``, a deep submission).

Subclasses say which network to build (:meth:`CropClassifier.build_net`) and how it sees a batch
of crops (:meth:`CropClassifier.to_input`); crops, training, weights and predictions are the same
for every deep family, so their numbers differ by the network only. :meth:`CropClassifier.network`
declares all of it (``benchmark.api.submission.Network``) for the throughput tool.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.api.submission import FitContext, LesionCache, Network, Predictions, Submission
from benchmark.data.crops import LesionCrops
from benchmark.training import (
    FitResult,
    TrainSettings,
    fit_binary,
    fit_summary,
    predict_batch_size,
    predict_proba,
    save_weights,
)
from benchmark.utils.devices import resolve_device


class CropClassifier(Submission):
    """Fits a network to the crops of the training lesions; predicts p(PD) per lesion.

    ``train`` is a :class:`~benchmark.training.TrainSettings` or a mapping of its fields
    (``conf/train/default.yaml``); the device is the fit context's, not a training setting.
    :meth:`save_artefacts` keeps the fitted weights with the training curve.
    """

    tasks = ("lesion_pd",)

    def __init__(
        self,
        crops: LesionCrops,
        train: TrainSettings | Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.crops = crops
        self.train = train
        self.seed = seed

    @abstractmethod
    def build_net(self) -> nn.Module:
        """A fresh network with one output logit (called under the fit's seed)."""

    def to_input(self, batch: torch.Tensor) -> torch.Tensor:
        """What the network sees of a batch of crops ``[n, C, x, y, z]`` (on the device)."""
        return batch

    @property
    def settings(self) -> TrainSettings:
        if isinstance(self.train, TrainSettings):
            return self.train
        return TrainSettings(**dict(self.train or {}))

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> CropClassifier:
        settings = replace(self.settings, device=context.device)
        resolve_device(settings.device)  # a missing GPU fails now, not after minutes of crops
        x, ids = self.crops(cohort)
        y = outcomes.lesion_pd.loc[ids].to_numpy()
        groups = cohort.lesions.loc[ids, "patient_id"].astype(str).to_numpy()
        result: FitResult = fit_binary(
            self.build_net,
            x,
            y,
            groups,
            settings,
            self.seed,
            self.to_input,
            desc=f"{type(self).__name__} {context.fit} ({len(ids)} lesions)",
        )
        self.net_ = result.net
        self.settings_ = settings
        self.fit_meta_ = {
            "fit": context.fit,
            "seed": self.seed,
            "crops": {
                "key": self.crops.key,
                **self.crops.settings,
                "label_channel": self.crops.label_channel,
            },
            "train_patients": sorted(set(groups)),
            "n_lesions": len(ids),
            **fit_summary(result, settings),
        }
        return self

    def save_artefacts(self, folder: Path) -> None:
        """``weights.pt``: the state dict, the crops it was trained on, the training curve."""
        save_weights(self.net_, Path(folder) / "weights.pt", self.fit_meta_)

    def predict(self, cohort: Cohort) -> Predictions:
        return self._predict(self.net_, self.settings_, cohort)

    def _predict(self, net: nn.Module, settings: TrainSettings, cohort: Cohort) -> Predictions:
        x, ids = self.crops(cohort)
        p_pd = predict_proba(net, x, settings, self.seed, self.to_input)
        return {"lesion_pd": pd.Series(p_pd, index=pd.Index(ids, name="lesion_id"))}

    def network(self) -> Network:
        """The network as :meth:`fit` builds it, its crops, and :meth:`predict` with any net."""

        def predictor(net: nn.Module, device: str) -> Callable[[Cohort], Predictions]:
            settings = replace(self.settings, device=device)
            return lambda cohort: self._predict(net, settings, cohort)

        settings = self.settings
        return Network(
            build=self.build_net,
            crops=self.crops,
            to_input=self.to_input,
            predictor=predictor,
            predict_batch=predict_batch_size(settings),
            predict_amp=settings.amp,
        )

    def caches(self) -> dict[str, LesionCache]:
        return {"crops": self.crops}
