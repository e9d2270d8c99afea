"""The training batches of one fit: crops in a tensor, drawn in a seeded order, moved to the
device and augmented there, a whole batch at a time.

No ``DataLoader``: the crops of a fit (a few hundred lesions) are already one array in memory,
so a batch is one indexing of it. On the CPU the next batch is augmented in a second thread
while the training step runs (torch ops release the GIL; each thread runs its ops with the one
intra-op thread training uses): with one torch thread per step, the second core of a 2-core box
would otherwise idle. Batches are drawn in order, from generators only that thread touches, so
they are the same with or without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import torch

from benchmark.training.augment import BatchAugment
from benchmark.training.settings import TrainSettings

T = TypeVar("T")


def ahead(items: Iterator[T]) -> Iterator[T]:
    """Yield ``items``, computing the next one in a background thread meanwhile."""
    done = object()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="augment") as pool:
        pending = pool.submit(next, items, done)
        while True:
            item = pending.result()
            if item is done:
                return
            pending = pool.submit(next, items, done)
            yield item  # type: ignore[misc]


def stream_seeds(seed: int) -> tuple[int, int]:
    """Seeds of the batch order and of the augmentation: independent streams from one seed."""
    order, augment = np.random.SeedSequence(int(seed)).generate_state(2)
    return int(order), int(augment)


class LesionBatches:
    """Batches ``(crops [B, C, x, y, z], labels [B])`` on ``device``, one epoch per :meth:`epoch`.

    Order: a shuffle of the lesions, or with ``settings.balance == "sampler"`` a class-balanced
    draw with replacement; the last batch is dropped only when it would hold one lesion
    (BatchNorm cannot train on it). ``augment`` (default ``settings.augment``) applies
    :class:`BatchAugment` with the settings' ranges. Crops come in ``memory_format`` (a 3D
    network's channels-last layout: the copy is made with the batch, not in the step).
    """

    def __init__(
        self,
        x: np.ndarray | torch.Tensor,
        y: np.ndarray | torch.Tensor,
        settings: TrainSettings,
        seed: int,
        device: torch.device,
        memory_format: torch.memory_format = torch.contiguous_format,
        augment: bool | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.memory_format = memory_format
        # On a GPU the whole training set goes over once; on the CPU it is used where it is.
        self.x = torch.as_tensor(x).to(self.device)
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float32)).to(self.device)
        self.batch_size = int(settings.batch_size)
        order_seed, augment_seed = stream_seeds(seed)
        self.order = torch.Generator().manual_seed(order_seed)
        self.weights = None
        if settings.balance == "sampler":
            labels = np.asarray(y).astype(int)
            counts = np.bincount(labels, minlength=2).astype(float)
            self.weights = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
        use_augment = settings.augment if augment is None else augment
        self.augment = (
            BatchAugment(
                settings.rotate_deg,
                settings.shift_voxels,
                settings.noise_std,
                seed=augment_seed,
                device=self.device,
            )
            if use_augment
            else None
        )
        self.ahead = bool(settings.augment_ahead) and self.device.type == "cpu" and use_augment

    @staticmethod
    def steps_per_epoch(n: int, batch_size: int) -> int:
        """Batches per epoch of ``n`` lesions (a last batch of one is dropped)."""
        full, rest = divmod(n, batch_size)
        return full + (1 if rest > 1 else 0)

    def __len__(self) -> int:
        """Batches per epoch."""
        return self.steps_per_epoch(len(self.x), self.batch_size)

    def indices(self) -> torch.Tensor:
        """The lesions of the next epoch, in order (consumes the order generator)."""
        n = len(self.x)
        if self.weights is not None:
            return torch.multinomial(self.weights, n, replacement=True, generator=self.order)
        return torch.randperm(n, generator=self.order)

    def _epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.indices().to(self.device)
        for k in range(len(self)):
            chosen = order[k * self.batch_size : (k + 1) * self.batch_size]
            images, labels = self.x[chosen], self.y[chosen]
            if self.augment is not None:
                images = self.augment(images)
            yield images.float().contiguous(memory_format=self.memory_format), labels

    def epoch(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over the training lesions."""
        batches = self._epoch()
        return ahead(batches) if self.ahead else batches


__all__ = ["LesionBatches", "ahead", "stream_seeds"]
