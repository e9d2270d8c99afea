"""The submission contract: what every baseline and contributed model implements.

A submission feels like a scikit-learn estimator: hyper-parameters are constructor arguments
(built by Hydra from ``conf/model/<name>.yaml``), ``fit`` learns from a cohort and its outcomes,
``predict`` sees a cohort view without outcomes and returns one prediction per id and task.

What a fit needs to know about the run it is part of (which fold, the seed, the device, where
its artefacts go) comes from the protocol as a :class:`FitContext`, never from global state, so
a fit behaves the same in the harness, in a test, or in a worker process of its own.

What tools outside the protocol may measure (``python -m benchmark.throughput``) is declared,
not guessed from attribute names: :meth:`Submission.network` (a deep model's per-lesion network
and inputs, a :class:`Network`) and :meth:`Submission.caches` (the per-lesion, content-keyed
caches its ``predict`` fills).
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:  # torch stays out of the import of every submission without a network
    import torch
    from torch import nn

    from benchmark.data.crops import LesionCrops

import numpy as np
import pandas as pd

from benchmark.api.cohort import TASKS, Cohort, Outcomes

Predictions = Mapping[str, pd.Series]
"""task -> Series indexed by lesion_id (``lesion_pd``: probability of PD) or patient_id
(``os``/``pfs``: risk score, higher = worse)."""


@dataclass(frozen=True)
class FitContext:
    """What the protocol tells one fit about itself
    (``benchmark.evaluation.protocol.run_protocol``).

    The defaults describe a fit outside a run (a test, a notebook): CPU, seed 0, nothing kept.
    """

    fit: str = "fit"  # fold0 ... fold<K-1> (cross-validation) or final (all development data)
    seed: int = 0  # the run's model seed (also passed to the constructor)
    device: str = "cpu"  # torch device for deep models (hardware.device)
    workers: int = 1  # processes / threads the fit may use (hardware.workers)
    artefact_dir: Path | None = None  # this fit's folder for save_artefacts; None: keep nothing


class LesionCache(Protocol):
    """A per-lesion cache keyed by patient content (radiomics features, lesion crops).

    ``cache_dir`` may be pointed elsewhere (None: no cache), which is how a cold cache is
    measured without touching the configured one; ``cache_path`` is where one patient's entry
    lives; ``workers`` are the processes that fill it.
    """

    cache_dir: Path | None
    workers: int
    key: str  # of its settings: the entries live in ``<cache_dir>/<key>/``

    def cache_path(self, content_key: str) -> Path | None: ...

    def __call__(self, cohort: Cohort) -> object:
        """Every lesion's entry of ``cohort``, computed where the cache misses."""
        ...


@dataclass(frozen=True)
class Network:
    """A deep submission's per-lesion network and its inputs, declared for tools that measure
    or inspect it (in the spirit of a MONAI bundle's ``network_data_format``).

    ``build``: a fresh, randomly initialised network with one logit per lesion (the caller
    seeds torch first). ``crops``: the content-keyed per-lesion inputs: ``crops(cohort)`` gives
    samples ``[n, C, s, s, s]`` and their lesion ids, cached per patient (``crops.cache_path``).
    ``to_input``: a batch of samples, float32 on the device, as the network sees it.
    ``predictor(net, device)``: the submission's own ``predict`` run with ``net`` on ``device``,
    which batches ``predict_batch`` samples under autocast ``predict_amp`` (off | bf16 | fp16).
    """

    build: Callable[[], nn.Module]
    crops: LesionCrops
    to_input: Callable[[torch.Tensor], torch.Tensor]
    predictor: Callable[[nn.Module, str], Callable[[Cohort], Predictions]]
    predict_batch: int
    predict_amp: str = "off"

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """One sample, ``[C, s, s, s]``."""
        return (int(self.crops.channels), *(int(self.crops.size),) * 3)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One network input without the batch axis: ``to_input`` of one zero sample."""
        import torch

        with torch.no_grad():
            probe = self.to_input(torch.zeros((1, *self.sample_shape)))
        return tuple(int(d) for d in probe.shape[1:])


class Submission(ABC):
    """Base class of every model run through the protocol."""

    tasks: ClassVar[tuple[str, ...]]

    @abstractmethod
    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> Submission:
        """Learn from the training patients of ``cohort``; ``outcomes`` are theirs only."""

    @abstractmethod
    def predict(self, cohort: Cohort) -> Predictions:
        """Predict every lesion (``lesion_pd``) or patient (``os``, ``pfs``) of ``cohort``."""

    def prepare(self, cohort: Cohort) -> None:
        """Compute what the model derives from a cohort's images alone (features, crops) into
        its caches, before any fit; the default fills :meth:`caches`.

        The protocol calls it on the blinded view of every cohort of the run in a worker that
        never gets an outcome, the only worker whose caches are writable: what it writes cannot
        carry a label, and fits and predicts only read it (docs/isolation.md). A model that
        derives more (a submission's own masks) overrides it, so that its fits find it there.
        """
        for cache in self.caches().values():
            cache(cohort)

    def save_artefacts(self, folder: Path) -> None:
        """Optional: keep what the last fit learnt (weights, training curves) in ``folder``.

        Called by the protocol right after ``fit`` with that fit's ``context.artefact_dir``
        when the run keeps artefacts; the default keeps nothing.
        """
        return None

    def network(self) -> Network | None:
        """The per-lesion network a deep submission runs, or None (forests, Cox models)."""
        return None

    def caches(self) -> Mapping[str, LesionCache]:
        """The per-lesion, content-keyed caches ``predict`` fills, by name (none by default)."""
        return {}


class SubmissionError(ValueError):
    """A submission broke the contract; the message names the model, the rule and the ids."""


def refused_artefact(name: str) -> SubmissionError:
    """The error for an artefact that is not a plain file or folder: a link could point the
    reader of a run folder at a file outside it, a device or a pipe could block it."""
    return SubmissionError(
        f"artefact {name}: an artefact must be a plain file or folder; links, devices and "
        "pipes are refused and no record is written"
    )


def _ids_preview(ids: list[str], limit: int = 5) -> str:
    shown = ", ".join(map(str, ids[:limit]))
    return shown + (f" (+{len(ids) - limit} more)" if len(ids) > limit else "")


def check_declared_tasks(model_name: str, tasks: tuple[str, ...]) -> None:
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise SubmissionError(
            f"{model_name}: declares tasks {tasks!r}; each must be one of {TASKS} and at least one"
        )


def check_fit_signature(model_name: str, model: Submission) -> None:
    """Refuse, before any work, a ``fit`` that cannot take the protocol's fit context."""
    try:
        inspect.signature(model.fit).bind(None, None, FitContext())
    except TypeError as err:
        raise SubmissionError(
            f"{model_name}: fit{inspect.signature(model.fit)} cannot be called as "
            f"fit(cohort, outcomes, context) ({err}); add the context parameter, e.g. "
            "`context: FitContext = FitContext()` (benchmark/api/submission.py)"
        ) from None


def check_predictions(
    model_name: str, cohort: Cohort, predictions: Predictions, tasks: tuple[str, ...]
) -> dict[str, pd.Series]:
    """Return the predictions as float Series, or raise naming every broken rule.

    Missing ids are rejected rather than scored as ties (a known challenge-evaluator bug).
    """
    if not isinstance(predictions, Mapping):
        raise SubmissionError(
            f"{model_name}: predict() must return a mapping task -> pandas Series, "
            f"got {type(predictions).__name__}"
        )
    checked: dict[str, pd.Series] = {}
    for task in tasks:
        where = f"{model_name} on {cohort.name}, task {task}"
        if task not in predictions:
            raise SubmissionError(f"{where}: no predictions (the model declares this task)")
        pred = predictions[task]
        if not isinstance(pred, pd.Series):
            raise SubmissionError(
                f"{where}: predictions must be a pandas Series indexed by id, "
                f"got {type(pred).__name__}"
            )
        expected = cohort.lesion_ids if task == "lesion_pd" else cohort.patient_ids
        index = pd.Index(pred.index.astype(str))
        duplicated = sorted(set(index[index.duplicated()]))
        if duplicated:
            raise SubmissionError(
                f"{where}: ids predicted more than once: {_ids_preview(duplicated)}"
            )
        missing = sorted(set(expected) - set(index))
        if missing:
            raise SubmissionError(
                f"{where}: {len(missing)} ids without a prediction: {_ids_preview(missing)}"
            )
        extra = sorted(set(index) - set(expected))
        if extra:
            raise SubmissionError(f"{where}: predictions for unknown ids: {_ids_preview(extra)}")
        try:
            values = pd.Series(np.asarray(pred.to_numpy(), dtype=float), index=index)
        except (TypeError, ValueError) as err:
            raise SubmissionError(f"{where}: predictions are not numbers ({err})") from err
        bad = list(values.index[~np.isfinite(values.to_numpy())])
        if bad:
            raise SubmissionError(
                f"{where}: non-finite predictions (NaN/inf) for {_ids_preview(bad)}"
            )
        if task == "lesion_pd":
            outside = list(values.index[(values < 0) | (values > 1)])
            if outside:
                raise SubmissionError(
                    f"{where}: probabilities outside [0, 1] for {_ids_preview(outside)}"
                )
        checked[task] = values.loc[expected]
    return checked
