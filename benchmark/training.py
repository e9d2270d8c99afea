"""The one torch training loop of the deep baselines (``cnn3d``, ``timm25d``).

A binary per-lesion classifier is fitted on lesion crops ``[n, C, x, y, z]`` (channel 0 CT, the
rest label channels such as the lesion mask) with:

* an inner validation split **grouped by patient** (a patient's lesions are correlated, so
  validating on lesions of training patients would overstate the fit) for early stopping; the
  best epoch's weights are restored;
* AdamW with a one-cycle or cosine schedule, stepped per batch;
* class imbalance handled by ``pos_weight`` in the loss or a balanced sampler;
* MONAI augmentation on the fly, in 3D (before any 2.5D view is taken, so the three planes of a
  view stay consistent);
* mixed precision on CUDA (bf16, or fp16 with a GradScaler); on CPU full precision and
  deterministic algorithms, so the same seed gives the same weights and predictions.

Models see the crops through ``to_input`` (identity for 3D nets, :func:`views_25d` for 2D ones),
applied on the device per batch.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
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

from benchmark.atomic import write_atomic
from benchmark.devices import resolve_device
from benchmark.threads import torch_threads

log = logging.getLogger(__name__)

SCHEDULES = ("onecycle", "cosine")
BALANCING = ("pos_weight", "sampler", "none")
AMP_MODES = ("off", "bf16", "fp16")
MONITORS = ("val_loss", "val_auc")


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of :func:`fit_binary` (Hydra: ``submission.train`` in the model config)."""

    epochs: int = 40
    batch_size: int = 32
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.05
    schedule: str = "onecycle"  # onecycle | cosine (per batch)
    val_fraction: float = 0.2  # patients held out for early stopping; 0 = train on all, last epoch
    monitor: str = "val_auc"  # val_auc (higher is better) | val_loss (lower is better)
    patience: int = 10  # epochs without a better monitored value before stopping
    min_epochs: int = 0  # first epoch early stopping may keep (earlier: LR warm-up, not kept)
    balance: str = "pos_weight"  # pos_weight | sampler | none
    augment: bool = True
    rotate_deg: float = 15.0  # augmentation: largest rotation about each axis (180: any)
    shift_voxels: float = 0.0  # augmentation: largest translation per axis
    noise_std: float = 0.0  # augmentation: Gaussian noise on the CT channel (window units)
    amp: str = "off"  # off | bf16 | fp16; CUDA only (always off on CPU)
    channels_last: bool = False  # NHWC / NDHWC memory layout for the net and its inputs
    device: str = "cpu"
    threads: int = 2  # torch CPU threads
    loader_workers: int = 0  # DataLoader worker processes (augmentation); 0 = in the main process
    progress: bool = True

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("schedule", self.schedule, SCHEDULES),
            ("balance", self.balance, BALANCING),
            ("amp", self.amp, AMP_MODES),
            ("monitor", self.monitor, MONITORS),
        ):
            if value not in allowed:
                raise ValueError(f"train.{name} must be one of {allowed}, got {value!r}")
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("train.epochs must be >= 1 and train.batch_size >= 2")
        if not 0 <= self.min_epochs <= self.epochs:
            raise ValueError("train.min_epochs must be in [0, train.epochs]")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass
class FitResult:
    """A fitted network and what happened while fitting it."""

    net: nn.Module
    history: list[dict[str, float]]  # one row per epoch: epoch, lr, train_loss, val_loss, val_auc
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


def _layout(example: torch.Tensor, channels_last: bool) -> torch.memory_format:
    """Memory format for inputs shaped like ``example`` (2D or 3D images).

    Channels-last is not uniformly faster (measured): for a small 3D ResNet on CPU it halved the
    step time, for timm 2D nets on CPU it was slower, and on an H200 it was slower for 3D
    convolutions and faster for timm 2D; so it is a setting (``conf/hardware/*.yaml``).
    """
    if not channels_last:
        return torch.contiguous_format
    return torch.channels_last if example.ndim == 4 else torch.channels_last_3d


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager:
    if device.type != "cuda" or amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


# ---- data ---------------------------------------------------------------------------------------


class LesionAugment:
    """Random flips, axial 90° turns, rotations/scaling/shifts and CT intensity jitter (MONAI).

    Applied per sample ``[C, x, y, z]``: channel 0 is CT (bilinear, intensity jitter and noise),
    the other channels are labels (nearest). Padding is 0, the window minimum (air).

    ``rotate_deg`` bounds the rotation about each axis. Small (15°) keeps the source CT's slice
    direction in place; 180 (any orientation) suits isotropic crops of biology that has no
    orientation (a lesion, its margin) and is what keeps a 3D CNN from memorising ~200 training
    lesions: at 15° cnn3d fitted them (train AUC 0.93) and ranked held-out lesions at chance.
    """

    def __init__(
        self, rotate_deg: float = 15.0, shift_voxels: float = 0.0, noise_std: float = 0.0
    ) -> None:
        from monai.transforms import (
            Compose,
            RandAffined,
            RandFlipd,
            RandGaussianNoised,
            RandRotate90d,
            RandScaleIntensityd,
            RandShiftIntensityd,
        )

        keys = ("image", "label")
        full = rotate_deg >= 90.0  # turns anywhere: the affine then does every rotation
        transforms = [
            RandFlipd(keys, prob=0.5, spatial_axis=0, allow_missing_keys=True),
            RandFlipd(keys, prob=0.5, spatial_axis=1, allow_missing_keys=True),
            RandFlipd(keys, prob=0.5, spatial_axis=2, allow_missing_keys=True),
            # Quarter turns in the axial plane only: slices are thicker than in-plane pixels in
            # the source CT, so x/y and z are not interchangeable.
            RandRotate90d(keys, prob=0.5, max_k=3, spatial_axes=(0, 1), allow_missing_keys=True),
            RandAffined(
                keys,
                prob=1.0 if full else 0.5,
                rotate_range=(math.radians(rotate_deg),) * 3,
                scale_range=(0.1,) * 3,
                translate_range=(shift_voxels,) * 3,
                mode=("bilinear", "nearest"),
                padding_mode="zeros",
                allow_missing_keys=True,
            ),
            RandScaleIntensityd("image", factors=0.1, prob=0.5),
            RandShiftIntensityd("image", offsets=0.05, prob=0.5),
        ]
        if noise_std > 0:
            transforms.append(RandGaussianNoised("image", prob=0.5, std=noise_std))
        self.transform = Compose(transforms)

    def set_random_state(self, seed: int) -> LesionAugment:
        self.transform.set_random_state(seed=seed)
        return self

    def __call__(self, sample: torch.Tensor) -> torch.Tensor:
        from monai.data import get_track_meta, set_track_meta

        item = {"image": sample[:1]}
        if sample.shape[0] > 1:
            item["label"] = sample[1:]
        # No MetaTensor bookkeeping (nothing here needs an affine) and one thread: 2 ms instead
        # of 30 ms per 2x32³ sample on 2 cores.
        tracking = get_track_meta()
        set_track_meta(False)
        try:
            with torch_threads(1):
                out = self.transform(item)
        finally:
            set_track_meta(tracking)
        parts = [out["image"]] + ([out["label"]] if "label" in out else [])
        return torch.cat([torch.as_tensor(p).as_subclass(torch.Tensor) for p in parts])


class _Lesions(torch.utils.data.Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray, augment: LesionAugment | None) -> None:
        self.x, self.y, self.augment = x, y, augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = torch.from_numpy(np.ascontiguousarray(self.x[i]))
        if self.augment is not None:
            sample = self.augment(sample)
        return sample.float(), torch.tensor(float(self.y[i]))


def inner_split(
    y: np.ndarray, groups: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) lesion indices, grouped by patient and stratified on the label.

    Empty validation when it cannot be meaningful: ``val_fraction`` 0, fewer than 4 patients,
    or a split that leaves one side with a single class.
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


def _loader(
    x: np.ndarray,
    y: np.ndarray,
    settings: TrainSettings,
    seed: int,
    augment: bool,
    device: torch.device,
) -> torch.utils.data.DataLoader:
    from monai.data.utils import worker_init_fn

    augmenter = None
    if augment:
        augmenter = LesionAugment(settings.rotate_deg, settings.shift_voxels, settings.noise_std)
        augmenter.set_random_state(seed)
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if settings.balance == "sampler":
        counts = np.bincount(y.astype(int), minlength=2).astype(float)
        weights = 1.0 / counts[y.astype(int)]
        sampler = torch.utils.data.WeightedRandomSampler(
            torch.as_tensor(weights, dtype=torch.double), len(y), generator=generator
        )
    workers = max(0, int(settings.loader_workers))
    return torch.utils.data.DataLoader(
        _Lesions(x, y, augmenter),
        batch_size=settings.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
        # BatchNorm cannot train on a batch of one.
        drop_last=len(y) % settings.batch_size == 1,
        num_workers=workers,
        # Each worker reseeds its MONAI transforms from its torch seed (base seed + worker id,
        # drawn from ``generator``), so augmentation is reproducible for a fixed worker count.
        worker_init_fn=worker_init_fn if workers else None,
        persistent_workers=workers > 0,
        pin_memory=device.type == "cuda",
    )


# ---- fit and predict ----------------------------------------------------------------------------


def _schedule(optimiser, settings: TrainSettings, steps_per_epoch: int):
    total = settings.epochs * steps_per_epoch
    if settings.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=settings.lr, total_steps=total, pct_start=0.2
        )
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=total)


def _batches(x: np.ndarray, batch_size: int) -> Iterator[torch.Tensor]:
    for start in range(0, len(x), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size]))


def predict_batch_size(settings: TrainSettings) -> int:
    """Samples per prediction batch: twice the training batch (no gradients to keep)."""
    return 2 * settings.batch_size


@torch.no_grad()
def predict_logits(
    net: nn.Module,
    x: np.ndarray,
    settings: TrainSettings,
    to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """Logits ``[n]`` of ``net`` in eval mode for crops ``x``, in batches (float32 on the host)."""
    device = resolve_device(settings.device)
    to_input = to_input or (lambda t: t)
    net.eval().to(device)
    out = []
    for batch in _batches(x, predict_batch_size(settings)):
        images = to_input(batch.to(device, non_blocking=True).float())
        images = images.contiguous(memory_format=_layout(images, settings.channels_last))
        with _autocast(device, settings.amp):
            logits = net(images)
        out.append(logits.float().reshape(-1).cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def predict_proba(
    net: nn.Module,
    x: np.ndarray,
    settings: TrainSettings,
    seed: int = 0,
    to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """Probabilities ``[n]`` (sigmoid of the logits), under the same determinism as fitting."""
    device = resolve_device(settings.device)
    with determinism(device, seed, settings.threads):
        return 1.0 / (1.0 + np.exp(-predict_logits(net, x, settings, to_input).astype(np.float64)))


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


def _bce(pos_weight: float, device: torch.device) -> nn.BCEWithLogitsLoss:
    return nn.BCEWithLogitsLoss(pos_weight=torch.tensor([pos_weight], device=device))


def fit_binary(
    make_net: Callable[[], nn.Module],
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str] | np.ndarray,
    settings: TrainSettings,
    seed: int,
    to_input: Callable[[torch.Tensor], torch.Tensor] | None = None,
    desc: str = "fit",
) -> FitResult:
    """Build ``make_net()`` under ``seed`` and fit it to labels ``y`` (0/1) of crops ``x``.

    ``groups`` (one patient id per lesion) keeps each patient on one side of the inner split.
    """
    device = resolve_device(settings.device)
    y = np.asarray(y, dtype=np.float32)
    groups = np.asarray(groups)
    to_input = to_input or (lambda t: t)
    with determinism(device, seed, settings.threads):
        layout = _layout(to_input(torch.from_numpy(x[:1])), settings.channels_last)
        net = make_net().to(device, memory_format=layout)
        train, val = inner_split(y, groups, settings.val_fraction, seed)
        n_pos = float(y[train].sum())
        n_neg = float(len(train) - n_pos)
        balanced = settings.balance == "pos_weight" and n_pos > 0 and n_neg > 0
        pos_weight = n_neg / n_pos if balanced else 1.0
        criterion = _bce(pos_weight, device)
        loader = _loader(x[train], y[train], settings, seed, settings.augment, device)
        # Fused AdamW: one kernel for all parameters, 8x faster than the per-tensor loop on CPU
        # for an 11M-parameter net (43 vs 340 ms per step on the reference box).
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay, fused=True
        )
        scheduler = _schedule(optimiser, settings, max(1, len(loader)))
        scaler = torch.amp.GradScaler(
            "cuda", enabled=device.type == "cuda" and settings.amp == "fp16"
        )

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
            total, seen = 0.0, 0
            for batch, target in loader:
                images = to_input(batch.to(device, non_blocking=True))
                images = images.contiguous(memory_format=layout)
                target = target.to(device, non_blocking=True)
                optimiser.zero_grad(set_to_none=True)
                with _autocast(device, settings.amp):
                    logits = net(images).reshape(-1)
                loss = criterion(logits.float(), target)
                scaler.scale(loss).backward()
                scaler.step(optimiser)
                scaler.update()
                scheduler.step()
                total += float(loss.detach()) * len(target)
                seen += len(target)
            row = {
                "epoch": epoch + 1,
                "lr": optimiser.param_groups[0]["lr"],
                "train_loss": total / max(seen, 1),
            }
            stop = False
            if len(val):
                logits = torch.from_numpy(predict_logits(net, x[val], settings, to_input))
                row["val_loss"] = float(
                    _bce(pos_weight, torch.device("cpu"))(logits, torch.from_numpy(y[val]))
                )
                row["val_auc"] = float(roc_auc_score(y[val], logits.numpy()))
                stop = stopping.update(row, net)
            history.append(row)
            epochs.set_postfix(
                {k: f"{v:.2e}" if k == "lr" else f"{v:.3f}" for k, v in row.items() if k != "epoch"}
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
            "%s: kept epoch %d of %d (%s), %d train / %d validation lesions",
            desc,
            best_epoch,
            len(history),
            ", ".join(f"{k} {v:.3f}" for k, v in kept.items() if k.startswith(("train", "val"))),
            len(train),
            len(val),
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
    "LesionAugment",
    "TrainSettings",
    "determinism",
    "fit_binary",
    "fit_summary",
    "inner_split",
    "predict_batch_size",
    "predict_logits",
    "predict_proba",
    "save_weights",
]
