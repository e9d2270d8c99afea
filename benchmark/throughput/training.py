"""Training throughput: samples/s of the deep baselines' own training loop, with augmentation and
without, at the same batch on the same device.

What is timed is what :func:`benchmark.training.fit_binary` runs per batch: the next batch of
:class:`~benchmark.training.LesionBatches` (drawn, indexed, moved to the device, augmented there
when on) and one :class:`~benchmark.training.TrainStep` (``to_input``, layout, forward, loss,
backward, fused AdamW, schedule), on random crops of the network's crop shape (speed does not
depend on the values), under the fit's determinism and threads. Rows:

* ``no augmentation``: the step alone, the reference;
* ``augmentation in line``: augmentation and step one after the other in one thread;
* ``augmentation ahead`` (CPU): the next batch augmented in a second thread during the step, as a
  fit runs it with ``train.augment_ahead`` (the batches are the same; one more core is busy).

``ratio`` is samples/s as the fit runs (ahead on the CPU when the settings say so) over samples/s
without augmentation; ``augment_ms_per_batch`` times the augmentation alone. The settings are the
model config's ``submission.train`` (the ``conf/train`` group every deep baseline reads): a model
with its own training loop has none, and this scope is not measured for it.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from benchmark.api.submission import Network
from benchmark.throughput.measuring import synchronize
from benchmark.throughput.settings import TrainingScopeSettings
from benchmark.training import BatchAugment, LesionBatches, TrainSettings, TrainStep, determinism

log = logging.getLogger(__name__)

GOAL_RATIO = 0.7  # training with augmentation at least 70% of the step alone (issue 27, CPU)
PATHS = ("no augmentation", "augmentation in line", "augmentation ahead")


def train_settings(node: Mapping[str, Any] | None) -> TrainSettings | None:
    """The model config's ``submission.train`` as :class:`TrainSettings`, or None (no such node,
    or one that builds something else)."""
    if not node or node.get("_target_") != "benchmark.training.TrainSettings":
        return None
    return TrainSettings(**{k: v for k, v in node.items() if k != "_target_"})


@dataclass
class _Row:
    path: str
    batch: int
    samples_per_s: float | None = None
    ms_per_batch: float | None = None
    # CPU time of the training thread per batch: below ms_per_batch when it waited (for a core
    # another process held, or for the augmentation thread).
    thread_cpu_ms_per_batch: float | None = None
    steps: int = 0
    seconds: float = 0.0
    runs_samples_per_s: list[float] | None = None


def _endless(batches: LesionBatches) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    while True:
        yield from batches.epoch()


class _Loop:
    """One row's training loop, built once and timed in several runs."""

    def __init__(
        self,
        network: Network,
        train: TrainSettings,
        x: torch.Tensor,
        y: torch.Tensor,
        device: torch.device,
        seed: int,
    ) -> None:
        torch.manual_seed(seed)
        self.step = TrainStep(
            network.build(),
            train,
            device,
            example=x[:1],
            to_input=network.to_input,
            pos_weight=1.0,
            total_steps=10**9,  # never reached: the schedule only has to step
        )
        self.step.net.train()
        self.batches = LesionBatches(x, y, train, seed, device, self.step.crop_layout)
        self.stream = _endless(self.batches)
        self.device = device

    def run(self, steps: int) -> tuple[float, float]:
        """Wall and training-thread CPU seconds for ``steps`` batches, synchronised."""
        synchronize(self.device)
        began, cpu_began = time.perf_counter(), time.thread_time()
        for _ in range(steps):
            images, target = next(self.stream)
            self.step(images, target)
        synchronize(self.device)
        return time.perf_counter() - began, time.thread_time() - cpu_began

    def close(self) -> None:
        self.stream.close()  # stops a look-ahead thread waiting on its next batch


def training_throughput(
    network: Network,
    train: TrainSettings,
    device: torch.device,
    settings: TrainingScopeSettings,
) -> dict[str, Any]:
    """The training rows of one deep model (see the module docstring)."""
    train = replace(train, device=str(device), progress=False)
    shape = network.sample_shape
    generator = torch.Generator().manual_seed(settings.seed)
    x = torch.rand((settings.lesions, *shape), generator=generator)
    y = (torch.rand(settings.lesions, generator=generator) < 0.4).float()
    ahead_applies = device.type == "cpu"
    as_fit = "augmentation ahead" if ahead_applies and train.augment_ahead else None
    paths = [p for p in PATHS if p != "augmentation ahead" or ahead_applies]
    rows = {p: _Row(p, train.batch_size) for p in paths}
    with determinism(device, settings.seed, train.threads):
        loops = {
            "no augmentation": replace(train, augment=False),
            "augmentation in line": replace(train, augment=True, augment_ahead=False),
            "augmentation ahead": replace(train, augment=True, augment_ahead=True),
        }
        built = {p: _Loop(network, loops[p], x, y, device, settings.seed) for p in paths}
        try:
            for loop in built.values():
                loop.run(settings.warmup)
            # Steps per run from one timed step of the slowest path; runs interleaved across
            # rows, so that load from other processes falls on every row alike.
            probe = max(loop.run(1)[0] for loop in built.values())
            steps = max(settings.min_steps, round(settings.min_time_s / max(probe, 1e-6)))
            timings: dict[str, list[tuple[float, float]]] = {p: [] for p in paths}
            load = [round(v, 2) for v in os.getloadavg()]
            for _ in range(settings.repeats):
                for path, loop in built.items():
                    timings[path].append(loop.run(steps))
            load_after = [round(v, 2) for v in os.getloadavg()]
        finally:
            for loop in built.values():
                loop.close()
        augment_ms = _augment_ms(train, shape, device, settings)
    for path, runs in timings.items():
        row = rows[path]
        rates = [train.batch_size * steps / wall for wall, _ in runs]
        row.runs_samples_per_s = [round(r, 3) for r in rates]
        row.samples_per_s = round(statistics.median(rates), 3)
        row.ms_per_batch = round(1000 * train.batch_size / row.samples_per_s, 3)
        row.thread_cpu_ms_per_batch = round(1000 * sum(c for _, c in runs) / (steps * len(runs)), 3)
        row.steps, row.seconds = steps * len(runs), round(sum(w for w, _ in runs), 4)
        log.info("training %s: %s samples/s", path, row.samples_per_s)
    reference = rows["no augmentation"].samples_per_s
    fit_path = as_fit or "augmentation in line"
    ratio = rows[fit_path].samples_per_s / reference if reference else None
    in_line = rows["augmentation in line"].samples_per_s / reference if reference else None
    return {
        "measured": True,
        "batch": train.batch_size,
        "crop_shape": list(shape),
        "network_input_shape": list(network.input_shape),
        "lesions": settings.lesions,
        "device": str(device),
        "threads": train.threads if device.type == "cpu" else None,
        "precision": "fp32" if device.type != "cuda" or train.amp == "off" else train.amp,
        "layout": "channels_last" if train.channels_last else "contiguous",
        "rows": [asdict(rows[p]) for p in paths],
        "fit_path": fit_path,
        "ratio": round(ratio, 4) if ratio is not None else None,
        "ratio_in_line": round(in_line, 4) if in_line is not None else None,
        "augment_ms_per_batch": augment_ms,
        # 1-minute load average before and after the timed runs: above the number of cores,
        # other processes held cores the rows needed (the look-ahead thread most of all).
        "load_average": {"before": load, "after": load_after, "cpus": os.cpu_count()},
        "goal": {"ratio": GOAL_RATIO, "met": ratio is not None and ratio >= GOAL_RATIO},
        "train_settings": asdict(train),
    }


def _augment_ms(
    train: TrainSettings,
    shape: tuple[int, ...],
    device: torch.device,
    settings: TrainingScopeSettings,
) -> float:
    """Median ms of :class:`BatchAugment` on one training batch (alone, synchronised)."""
    augment = BatchAugment(
        train.rotate_deg, train.shift_voxels, train.noise_std, seed=settings.seed, device=device
    )
    batch = torch.rand((train.batch_size, *shape), device=device)
    augment(batch)
    times = []
    for _ in range(max(5, settings.min_steps)):
        synchronize(device)
        began = time.perf_counter()
        augment(batch)
        synchronize(device)
        times.append(1000 * (time.perf_counter() - began))
    return round(statistics.median(times), 3)


__all__ = [
    "GOAL_RATIO",
    "PATHS",
    "train_settings",
    "training_throughput",
]
