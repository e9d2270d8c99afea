"""Building blocks beside the model API, for submissions and baselines alike.

The model API is :mod:`benchmark.api.cohort` (the blinded cohort, its outcomes) and
:mod:`benchmark.api.submission` (``Submission``, ``FitContext``, ``Network``); the toolkit is code a
model may reuse instead of copying:

- :class:`LesionClassifier`: a scikit-learn classifier on one row per lesion; a subclass writes
  ``design(cohort)`` and ``estimator()`` (``rf_radiomics``, ``lr_volume``, the peritumoral and
  boosted submissions);
- :func:`burden`, :func:`per_lesion`: tumour burden per patient, patient rows per lesion;
- :mod:`benchmark.toolkit.estimators`: a fold with one class, one thread to predict;
- :mod:`benchmark.toolkit.deep` (imports torch): ``CropClassifier`` and ``ViewClassifier``, the
  training loop of ``cnn3d`` and ``timm25d`` for any 3D or 2D network.

Importing this package does not import torch: a tabular model's worker stays light.
"""

from benchmark.toolkit.burden import BURDEN_COLUMNS, burden, per_lesion
from benchmark.toolkit.estimators import one_thread, positive_proba, prevalence, two_classes
from benchmark.toolkit.lesions import LesionClassifier

__all__ = [
    "BURDEN_COLUMNS",
    "LesionClassifier",
    "burden",
    "one_thread",
    "per_lesion",
    "positive_proba",
    "prevalence",
    "two_classes",
]
