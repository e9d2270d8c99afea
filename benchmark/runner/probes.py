"""What a submission declares, read inside the sandbox (``benchmark.check``, ``tests/tiny_runs``).

Tests used to import a submission's class to read its ``tasks``, ``caches()`` and ``network()``,
which ran contributed code in the pytest process. :class:`Declarations` builds the submission in
a sandboxed worker instead and reports: ``tasks`` through the handle's own ``tasks`` (the worker
answers it), the rest as an artefact, the one channel from a worker back to its parent that
carries a file (a tar the parent unpacks).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.api.submission import FitContext, Network, Predictions, Submission
from benchmark.training.network_size import forward_error, smallest_size

REPORT = "declared.json"
PROBE = "benchmark.runner.probes.Declarations"


class Declarations(Submission):
    """A wrapper that builds ``submission`` (a resolved config node) with the run's seed and
    reports what it declares; it neither fits nor predicts."""

    def __init__(self, submission: Mapping[str, Any] | DictConfig, seed: int = 0) -> None:
        node = submission if isinstance(submission, DictConfig) else OmegaConf.create(submission)
        self.inner: Submission = instantiate(node, seed=seed, _convert_="all")

    @property  # type: ignore[override]
    def tasks(self) -> tuple[str, ...]:  # the class attribute, as the protocol reads it
        return type(self.inner).tasks

    def fit(self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()) -> None:
        raise NotImplementedError("a probe only reports what the submission declares")

    def predict(self, cohort: Cohort) -> Predictions:
        raise NotImplementedError("a probe only reports what the submission declares")

    def save_artefacts(self, folder: Path) -> None:
        caches = {
            name: {
                "cache_dir": None if cache.cache_dir is None else str(cache.cache_dir),
                "workers": int(cache.workers),
                "cache_path": callable(cache.cache_path),
            }
            for name, cache in self.inner.caches().items()
        }
        network = self.inner.network()
        report = {
            "tasks_type": type(type(self.inner).tasks).__name__,
            "caches": caches,
            "network": network is not None,
            "network_size": None if network is None else size_probe(network),
        }
        (Path(folder) / REPORT).write_text(json.dumps(report))


def size_probe(network: Network) -> dict[str, Any]:
    """The network at the crop size it will train on, and where that fails, the smallest crop
    edge that goes through (``benchmark.check`` reports it)."""
    import torch

    torch.manual_seed(0)
    channels, edge = network.sample_shape[0], network.sample_shape[1]
    error = forward_error(network.build, network.to_input, channels, edge)
    smallest = None
    if error is not None:
        smallest = smallest_size(network.build, network.to_input, channels, edge)
    return {"size": edge, "error": error, "smallest": smallest}
