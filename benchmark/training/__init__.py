"""The one torch training loop of the deep baselines (``cnn3d``, ``timm25d``).

Modules: :mod:`.settings` (``TrainSettings``, the ``conf/train`` group), :mod:`.augment`
(batched augmentation on the training device), :mod:`.batches` (a fit's batches: order,
device, augmentation, the CPU's look-ahead thread), :mod:`.fit` (the step, the epoch loop,
predictions, weights). Committed records name ``benchmark.training.TrainSettings``.
"""

from benchmark.training.augment import BatchAugment
from benchmark.training.batches import LesionBatches
from benchmark.training.fit import (
    FitResult,
    TrainStep,
    determinism,
    fit_binary,
    fit_summary,
    inner_split,
    input_layout,
    predict_batch_size,
    predict_logits,
    predict_proba,
    save_weights,
)
from benchmark.training.settings import TrainSettings

__all__ = [
    "BatchAugment",
    "FitResult",
    "LesionBatches",
    "TrainSettings",
    "TrainStep",
    "determinism",
    "fit_binary",
    "fit_summary",
    "inner_split",
    "input_layout",
    "predict_batch_size",
    "predict_logits",
    "predict_proba",
    "save_weights",
]
