"""What a simulated dataset is a function of: (profile, seed, ``GENERATOR_VERSION``), nothing else.

Every random stream derives from ``numpy.random.SeedSequence`` of (seed, cohort code, stream,
[patient]); the output is the same whatever ``workers`` is and whichever module draws first.
A patient's image and event times come from streams of its own, so they do not change when the
cohort around it does (another arm size, another patient count).
"""

from __future__ import annotations

import zlib

import numpy as np

GENERATOR_NAME = "nsclc-io-bench-simulator"
GENERATOR_VERSION = "2.0.0"  # bump whenever the output for a (profile, seed) changes

_STREAM_TABLES, _STREAM_RENDER, _STREAM_REFERENCE, _STREAM_OUTCOMES = 0, 1, 2, 3


def _code(name: str) -> int:
    return zlib.crc32(name.encode())


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
