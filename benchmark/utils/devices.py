"""The torch device a run asks for (``hardware.device``), or a clear error when it is absent.

Shared by the protocol's deep fits (``benchmark/training.py``) and the throughput tool, so a
missing GPU fails the same way, before any minutes of crops or measurement.
"""

from __future__ import annotations

import os

import torch


def resolve_device(name: str) -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:1``) as a torch device; raises when CUDA is absent."""
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device {name!r} asked for (hardware.device) but torch sees no CUDA device "
            f"(torch {torch.__version__}, built for CUDA {torch.version.cuda}, "
            f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}); "
            "run with hardware=cpu, or on a machine with a GPU"
        )
    return device


__all__ = ["resolve_device"]
