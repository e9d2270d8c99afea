"""Fitting and predicting: the training step, the epoch loop with optional early stopping on a
patient-grouped inner split, and predictions under the same determinism.

Models see the crops through ``to_input`` (identity for 3D nets, 2.5D views for 2D ones),
applied on the device per batch after augmentation, so the three planes of a view stay
consistent.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from torch import nn
from tqdm.auto import tqdm

from benchmark.training.batches import LesionBatches
from benchmark.training.network_size import check_network_size
from benchmark.training.settings import TrainSettings
from benchmark.utils.atomic import write_atomic
from benchmark.utils.devices import resolve_device
from benchmark.utils.threads import torch_threads

log = logging.getLogger(__name__)

ToInput = Callable[[torch.Tensor], torch.Tensor]


def _identity(batch: torch.Tensor) -> torch.Tensor:
    return batch


@dataclass
class FitResult:
    """A fitted network and what happened while fitting it."""

    net: nn.Module
    # One row per epoch: epoch, lr, train_loss, val_loss and val_auc (with a validation split),
    # seconds (wall) and cpu_seconds (the training thread's CPU time).
    history: list[dict[str, float]]
    best_epoch: int  # 1-based; the epoch whose weights were kept
    n_train: int
    n_val: int
    pos_weight: float


# ---- device and determinism ---------------------------------------------------------------------


@contextlib.contextmanager
def determinism(device: torch.device, seed: int, threads: int) -> Iterator[None]:
    """Seed torch; on CPU also use deterministic algorithms and ``threads`` threads.

    The deterministic flag and the thread count are process-wide, so they are restored on exit.
    On CUDA speed wins (cuDNN autotuning on): GPU runs are seeded, not bit-reproducible.
    """
    torch.manual_seed(seed)
    if device.type != "cpu":
        # Inputs have one fixed size: let cuDNN pick its fastest kernels.
        torch.backends.cudnn.benchmark = True
        yield
        return
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        with torch_threads(threads):
            yield
    finally:
        torch.use_deterministic_algorithms(before)


def input_layout(example: torch.Tensor, channels_last: bool) -> torch.memory_format:
    """Memory format for network inputs shaped like ``example`` (2D or 3D images).

    Channels-last is not uniformly faster (measured): for a small 3D ResNet on CPU it halved the
    step time, for some timm 2D nets on CPU it was slower, and on an H200 it was slower for 3D
    convolutions and faster for timm 2D; so it is a setting (``conf/hardware/*.yaml``, the
    model configs).
    """
    if not channels_last:
        return torch.contiguous_format
    return torch.channels_last if example.ndim == 4 else torch.channels_last_3d


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


def _bce(pos_weight: float, device: torch.device) -> nn.BCEWithLogitsLoss:
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight], device=device))


def _schedule(optimiser, settings: TrainSettings, total_steps: int):
    if settings.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=settings.lr, total_steps=total_steps, pct_start=0.2
        )
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total_steps)


# ---- the step -----------------------------------------------------------------------------------


class TrainStep:
    """One optimisation step of :func:`fit_binary`: ``to_input`` and the memory layout, forward
    (autocast on CUDA), weighted BCE, backward, fused AdamW, the schedule.

    ``example`` (a crop batch) decides the layout; ``net`` is moved to the device in it. The
    throughput tool times this very step (its training scope).
    """

    def __init__(
        self,
        net: nn.Module,
        settings: TrainSettings,
        device: torch.device,
        example: torch.Tensor,
        to_input: ToInput | None = None,
        pos_weight: float = 1.0,
        total_steps: int = 1,
    ) -> None:
        self.device, self.settings = device, settings
        self.to_input = to_input or _identity
        probe = example[:1].float()
        seen = self.to_input(probe)
        self.layout = input_layout(seen, settings.channels_last)
        # When the network sees the crops as they are (3D networks), the batches can be handed
        # over in its layout: the copy is then made where the batch is made (on the CPU, in the
        # augmentation thread), not in the step.
        self.crop_layout = self.layout if seen.shape == probe.shape else torch.contiguous_format
        self.net = net.to(device, memory_format=self.layout)
        self.criterion = _bce(pos_weight, device)
        # Fused AdamW: one kernel for all parameters, 8x faster than the per-tensor loop on CPU
        # for an 11M-parameter net (43 vs 340 ms per step on the reference box).
        self.optimiser = torch.optim.AdamW(
            self.net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=True
        )
        self.scheduler = _schedule(self.optimiser, settings, max(1, total_steps))
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=device.type == "cuda" and settings.amp == "fp16"
        )

    @property
    def lr(self) -> float:
        return float(self.optimiser.param_groups[0]["lr"])

    def __call__(self, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Train on one batch (on the device); the batch's mean loss, detached, on the device."""
        images = self.to_input(images).contiguous(memory_format=self.layout)
        self.optimiser.zero_grad(set_to_none=True)
        with _autocast(self.device, self.settings.amp):
            logits = self.net(images).reshape(-1)
        loss = self.criterion(logits.float(), target)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()


# ---- inner split and early stopping -------------------------------------------------------------


def inner_split(
    y: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) lesion indices, grouped by patient and stratified on the label.

    Patients stay on one side (a patient's lesions are correlated, so validating on lesions of
    training patients would overstate the fit). Empty validation when it cannot be meaningful:
    ``val_fraction`` 0, fewer than 4 patients, or a split that leaves one side with one class.
    """
    everyone = np.arange(len(y))
    n_groups = len(np.unique(groups))
    if val_fraction <= 0 or n_groups < 4:
        return everyone, everyone[:0]
    n_splits = min(max(2, round(1 / val_fraction)), n_groups)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    try:
        train, val = next(splitter.split(everyone, y, groups=groups))
    except ValueError:  # e.g. fewer members of a class than splits
        return everyone, everyone[:0]
    if len(np.unique(y[train])) < 2 or len(np.unique(y[val])) < 2:
        return everyone, everyone[:0]
    return train, val


class _EarlyStopping:
    """Keeps the weights of the best epoch by the monitored value; says when to stop.

    Epochs before ``min_epochs`` are neither kept nor counted: with a small, noisy validation
    set, an epoch-1 model (barely moved from its initialisation during the LR warm-up) can
    otherwise win by chance and end the fit before it has learnt anything.
    """

    def __init__(self, settings: TrainSettings) -> None:
        self.sign = 1.0 if settings.monitor == "val_loss" else -1.0
        self.monitor, self.patience, self.min_epochs = (
            settings.monitor,
            settings.patience,
            settings.min_epochs,
        )
        self.best, self.epoch, self.state, self.stale = math.inf, 0, None, 0

    def update(self, row: dict[str, float], net: nn.Module) -> bool:
        """Record an epoch's row; True when the fit should stop."""
        if row["epoch"] < max(self.min_epochs, 1):
            return False
        value = self.sign * row[self.monitor]
        if value < self.best:
            self.best, self.epoch, self.stale = value, int(row["epoch"]), 0
            self.state = copy.deepcopy(net.state_dict())
        else:
            self.stale += 1
        return self.stale >= self.patience


# ---- fit and predict ----------------------------------------------------------------------------


def predict_batch_size(settings: TrainSettings) -> int:
    """Samples per prediction batch: twice the training batch (no gradients to keep)."""
    return 2 * settings.batch_size


@torch.no_grad()
def predict_logits(
    net: nn.Module, x: np.ndarray, settings: TrainSettings, to_input: ToInput | None = None
) -> np.ndarray:
    """Logits ``[n]`` of ``net`` in eval mode for crops ``x``, in batches (float32 on the host)."""
    device = resolve_device(settings.device)
    to_input = to_input or _identity
    net.eval().to(device)
    out = []
    size = predict_batch_size(settings)
    for start in range(0, len(x), size):
        batch = torch.from_numpy(np.ascontiguousarray(x[start : start + size]))
        images = to_input(batch.to(device, non_blocking=True).float())
        images = images.contiguous(memory_format=input_layout(images, settings.channels_last))
        with _autocast(device, settings.amp):
            logits = net(images)
        out.append(logits.float().reshape(-1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def predict_proba(
    net: nn.Module,
    x: np.ndarray,
    settings: TrainSettings,
    seed: int = 0,
    to_input: ToInput | None = None,
) -> np.ndarray:
    """Probabilities ``[n]`` (sigmoid of the logits), under the same determinism as fitting."""
    device = resolve_device(settings.device)
    with determinism(device, seed, settings.threads):
        return 1.0 / (1.0 + np.exp(-predict_logits(net, x, settings, to_input).astype(np.float64)))


def fit_binary(
    make_net: Callable[[], nn.Module],
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str] | np.ndarray,
    settings: TrainSettings,
    seed: int,
    to_input: ToInput | None = None,
    desc: str = "fit",
) -> FitResult:
    """Build ``make_net()`` under ``seed`` and fit it to labels ``y`` (0/1) of crops ``x``
    (``[n, C, x, y, z]``: channel 0 CT, the others label channels such as the lesion's distance
    map).

    AdamW with a one-cycle or cosine schedule stepped per batch; class imbalance through
    ``pos_weight`` in the loss or a balanced sampler; augmentation on the device; mixed
    precision on CUDA; on the CPU full precision and deterministic algorithms, so the same seed
    gives the same weights and predictions. ``groups`` (one patient id per lesion) keeps each
    patient on one side of the inner split; with a validation split the best epoch is kept.
    """
    device = resolve_device(settings.device)
    y = np.asarray(y, dtype=np.float32)
    groups = np.asarray(groups)
    to_input = to_input or _identity
    with determinism(device, seed, settings.threads):
        net = make_net()
        # One zero sample first: a network that does not take these crops is refused with the
        # size it needs, not a shape error from inside the first step.
        check_network_size(net, make_net, to_input, tuple(x.shape[1:]))
        train, val = inner_split(y, groups, settings.val_fraction, seed)
        n_pos = float(y[train].sum())
        n_neg = float(len(train) - n_pos)
        balanced = settings.balance == "pos_weight" and n_pos > 0 and n_neg > 0
        pos_weight = n_neg / n_pos if balanced else 1.0
        x_train = x if len(train) == len(x) else x[train]
        steps_per_epoch = LesionBatches.steps_per_epoch(len(train), settings.batch_size)
        step = TrainStep(
            net,
            settings,
            device,
            example=torch.from_numpy(x[:1]),
            to_input=to_input,
            pos_weight=pos_weight,
            total_steps=settings.epochs * max(1, steps_per_epoch),
        )
        batches = LesionBatches(x_train, y[train], settings, seed, device, step.crop_layout)
        history: list[dict[str, float]] = []
        stopping = _EarlyStopping(settings)
        epochs = tqdm(
            range(settings.epochs),
            desc=desc,
            unit="epoch",
            leave=False,
            disable=not settings.progress,
        )
        for epoch in epochs:
            net.train()
            began, cpu_began = time.perf_counter(), time.thread_time()
            total, seen = torch.zeros((), device=device), 0
            for images, target in batches.epoch():
                total += step(images, target) * len(target)  # no host sync per step
                seen += len(target)
            row = {"epoch": epoch + 1, "lr": step.lr, "train_loss": float(total) / max(seen, 1)}
            # Wall and this thread's CPU seconds: on a shared machine the gap is the wait for
            # a core (or, on the CPU, for the augmentation thread).
            row["seconds"] = round(time.perf_counter() - began, 4)
            row["cpu_seconds"] = round(time.thread_time() - cpu_began, 4)
            stop = False
            if len(val):
                logits = torch.from_numpy(predict_logits(net, x[val], settings, to_input))
                row["val_loss"] = float(
                    _bce(pos_weight, torch.device("cpu"))(logits, torch.from_numpy(y[val]))
                )
                row["val_auc"] = float(roc_auc_score(y[val], logits.numpy()))
                stop = stopping.update(row, net)
            history.append(row)
            shown = {k: v for k, v in row.items() if k not in ("epoch", "seconds", "cpu_seconds")}
            epochs.set_postfix(
                {k: f"{v:.2e}" if k == "lr" else f"{v:.3f}" for k, v in shown.items()}
            )
            if stop:
                break
        if stopping.state is not None:
            net.load_state_dict(stopping.state)
            best_epoch = stopping.epoch
        else:  # no validation: keep the last epoch
            best_epoch = len(history)
        kept = history[best_epoch - 1]
        log.info(
            "%s: kept epoch %d of %d (%s), %d train / %d validation lesions; %.1f s (%.1f s CPU)",
            desc,
            best_epoch,
            len(history),
            ", ".join(f"{k} {v:.3f}" for k, v in kept.items() if k.startswith(("train", "val"))),
            len(train),
            len(val),
            sum(r["seconds"] for r in history),
            sum(r["cpu_seconds"] for r in history),
        )
    return FitResult(net.eval(), history, best_epoch, len(train), len(val), pos_weight)


# ---- weights -----------------------------------------------------------------------------------


def save_weights(net: nn.Module, path: Path, meta: dict[str, Any] | None = None) -> Path:
    """Save ``net``'s state dict (on the CPU) and ``meta`` to ``path``, atomically."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda handle: torch.save({"state_dict": state, **(meta or {})}, handle))
    return path


def fit_summary(result: FitResult, settings: TrainSettings) -> dict[str, Any]:
    """What to store beside the weights: the settings and the training curve."""
    return {
        "settings": asdict(settings),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "n_train": result.n_train,
        "n_val": result.n_val,
        "pos_weight": result.pos_weight,
    }


__all__ = [
    "FitResult",
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
