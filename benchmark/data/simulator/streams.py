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

# The stream keys: one per use of randomness, so that no two uses share draws.
STREAM_TABLES, STREAM_RENDER, STREAM_REFERENCE, STREAM_OUTCOMES, STREAM_ANATOMY = 0, 1, 2, 3, 4


def cohort_code(name: str) -> int:
    """A cohort name as an integer seed key (stable across runs and machines, unlike ``hash``)."""
    return zlib.crc32(name.encode())


def stream_rng(*keys: int) -> np.random.Generator:
    """The generator of one stream: (seed, cohort code, stream key[, patient]) -> its draws."""
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in keys]))


def check_seed(seed: int) -> int:
    """A data seed as an int; ValueError unless it is a non-negative integer."""
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)
