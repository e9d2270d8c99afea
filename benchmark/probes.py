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

from benchmark.cohort import Cohort, Outcomes
from benchmark.submission import FitContext, Network, Predictions, Submission

REPORT = "declared.json"
PROBE = "benchmark.probes.Declarations"
LARGEST_PROBED = 128  # crop edge (voxels) up to which a refused network's smallest size is sought


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


def forward_error(network: Network, size: int) -> str | None:
    """Why one zero batch of ``size``-voxel crops does not go through the network (None: it
    does, with one logit per sample). Eval mode: batch norm takes a batch of one there."""
    import torch

    channels = network.sample_shape[0]
    torch.manual_seed(0)
    net = network.build().eval()
    try:
        with torch.no_grad():
            out = net(network.to_input(torch.zeros((1, channels, size, size, size))))
    except (RuntimeError, ValueError) as err:
        return str(err).strip().splitlines()[0]
    if out.numel() != 1:
        return f"it gives {tuple(out.shape)} for one sample, not one logit"
    return None


def size_probe(network: Network) -> dict[str, Any]:
    """The network at the crop size it will train on; where that fails, the smallest crop edge
    (voxels, up to :data:`LARGEST_PROBED`) that goes through, found by doubling then bisection
    (a network's downsampling makes the sizes that work an upward-closed range, near enough)."""
    size = int(network.sample_shape[1])
    error = forward_error(network, size)
    found: int | None = None
    if error is not None:
        low, high = size, size
        while high < LARGEST_PROBED and forward_error(network, high) is not None:
            low, high = high, min(2 * high, LARGEST_PROBED)
        if forward_error(network, high) is None:
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (
                    (low, middle) if forward_error(network, middle) is None else (middle, high)
                )
            found = high
    return {"size": size, "error": error, "smallest": found}
