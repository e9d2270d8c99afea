"""The hyper-parameters of the deep baselines' training loop (``conf/train/default.yaml``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

SCHEDULES = ("onecycle", "cosine")
BALANCING = ("pos_weight", "sampler", "none")
AMP_MODES = ("off", "bf16", "fp16")
MONITORS = ("val_loss", "val_auc")


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of :func:`~benchmark.training.fit_binary` (Hydra: ``submission.train``).

    Committed records name this class as ``benchmark.training.TrainSettings`` in their config,
    so that import path stays.
    """

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
    threads: int = 2  # torch CPU threads of the training step
    # CPU only: augment the next batch in a second thread while the step runs on this one (one
    # more core busy); the batches, and so the weights, are the same either way.
    augment_ahead: bool = True
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
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"train.batch_size must be >= 2, got {self.batch_size}")
        if not 0 <= self.min_epochs <= self.epochs:
            raise ValueError(
                f"train.min_epochs must be in [0, train.epochs]: min_epochs is "
                f"{self.min_epochs}, epochs {self.epochs}"
            )
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")


TARGETS = ("benchmark.training.TrainSettings", "benchmark.training.settings.TrainSettings")
_FIELD = re.compile(r"\btrain\.([a-z_]+)")


class TrainSettingsError(ValueError):
    """A model config's training settings are refused; one paragraph naming the config keys."""


def _train_nodes(node: Any, where: str) -> Iterator[tuple[str, DictConfig]]:
    if isinstance(node, DictConfig):
        if node.get("_target_") in TARGETS:
            yield where, node
        for key in node:
            yield from _train_nodes(node._get_node(key), f"{where}.{key}")
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            yield from _train_nodes(node._get_node(i), f"{where}.{i}")


def check_train_settings(cfg: DictConfig) -> None:
    """Build every ``TrainSettings`` node of ``cfg.model.submission`` (harness code, cheap) so
    that a setting it refuses fails before any data are built, naming the composed key, the key
    each value comes from (an interpolation such as ``${hardware.deep.epochs_3d}``) and the fix.
    """
    for where, node in _train_nodes(cfg.model._get_node("submission"), "model.submission"):
        values = OmegaConf.to_container(node, resolve=True)
        assert isinstance(values, dict)
        values.pop("_target_", None)
        try:
            TrainSettings(**values)
        except (TypeError, ValueError) as err:
            named = dict.fromkeys(_FIELD.findall(str(err))) or dict.fromkeys(values)
            keys = {f: _origin_key(node, where, f) for f in named if f in node}
            sources = "; ".join(
                f"{where}.{f} = {values[f]!r} (from {key})" for f, key in keys.items()
            )
            raise TrainSettingsError(
                f"training settings refused: {err} ({sources}). Fix: set "
                + ", ".join(keys.values())
                + " consistently (hardware.deep.epochs is timm25d's, hardware.deep.epochs_3d"
                " cnn3d's), e.g. on the command line, or use the quick preset: preset=quick"
            ) from None


def _origin_key(node: DictConfig, where: str, field: str) -> str:
    if OmegaConf.is_interpolation(node, field):
        return str(node._get_node(field)._value())[2:-1]
    return f"{where}.{field}"


__all__ = [
    "AMP_MODES",
    "BALANCING",
    "MONITORS",
    "SCHEDULES",
    "TrainSettings",
    "TrainSettingsError",
    "check_train_settings",
]
