"""The hyper-parameters of the deep baselines' training loop (``conf/train/default.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass

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
        if self.epochs < 1 or self.batch_size < 2:
            raise ValueError("train.epochs must be >= 1 and train.batch_size >= 2")
        if not 0 <= self.min_epochs <= self.epochs:
            raise ValueError("train.min_epochs must be in [0, train.epochs]")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"train.val_fraction must be in [0, 1), got {self.val_fraction}")


__all__ = ["AMP_MODES", "BALANCING", "MONITORS", "SCHEDULES", "TrainSettings"]
