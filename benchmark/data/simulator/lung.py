"""Lung parenchyma that looks like lung: branching vessel trees and a textured background.

Off unless the profile's ``anatomy`` asks for it (``conf/data/realistic.yaml``); it draws from
its own random stream, so a profile without it renders exactly as before.

* **Vessel trees** grow from each hilum: a segment of radius r runs r x U(length_ratio) mm, then
  splits in two by Murray's law (r1^3 + r2^3 = r^3, the smaller child at the ratio
  U(asymmetry)), the children turning away from the parent's axis; a branch stops below
  ``min_radius_mm`` or where it leaves the lung. Segments are drawn with partial volume (a
  sub-voxel vessel keeps its cross-section's share of the voxel), so calibres shrink from
  centimetre hilar vessels to sub-millimetre peripheral ones, as on CT.
  Trees start inside the lung, at its medial rim about the hilum, and grow through the lesions'
  margins (vessels run through ground glass).
* **Background**: the parenchyma's own HU plus a correlated Gaussian field (secondary lobules,
  vessels below the resolution) of sd ``texture_hu`` at a point and grain ``texture_mm``. A voxel
  shows the field's average over its volume, so a 5 mm slice shows less of it than a 1 mm one
  (:func:`voxel_average_sd`): the anatomy is the same whichever scanner images it. The field
  also shows through the ground glass of a lesion's margin, which is then patchy, not even.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from benchmark.data.simulator.grid import Grid
from benchmark.data.simulator.phantom import HALO, LUNG, VESSEL


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(math.sqrt(float(v @ v)), 1e-9)  # np.linalg.norm's arithmetic, less overhead


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.cross`` of two 3-vectors, the same arithmetic without its general-case overhead
    (a patient's trees take ten thousand of them)."""
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _turn(axis: np.ndarray, angle: float, roll: float) -> np.ndarray:
    """``axis`` turned by ``angle`` towards a direction at ``roll`` around it."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = _unit(_cross(axis, helper))
    w = _cross(axis, u)
    side = np.cos(roll) * u + np.sin(roll) * w
    return _unit(np.cos(angle) * axis + np.sin(angle) * side)


def grow_tree(
    rng: np.random.Generator,
    root: np.ndarray,
    direction: np.ndarray,
    radius: float,
    in_lung,
    cfg: Mapping[str, Any],
    budget: int,
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Segments (start, end, radius) in mm of one tree, breadth first, at most ``budget``."""
    lo, hi = cfg["length_ratio"]
    a_lo, a_hi = cfg["asymmetry"]
    min_r = float(cfg["min_radius_mm"])
    segments = []
    todo = [(root, _unit(direction), radius)]
    while todo and len(segments) < budget:
        start, axis, r = todo.pop(0)
        end = start + axis * max(2.0, r * rng.uniform(lo, hi))
        if not in_lung(end):
            continue
        segments.append((start, end, r))
        ratio = rng.uniform(a_lo, a_hi)
        r1 = r / (1.0 + ratio**3) ** (1.0 / 3.0)
        roll = rng.uniform(0.0, 2.0 * np.pi)
        for child_r, angle, turn in (
            (r1, rng.uniform(0.25, 0.5), roll),
            (ratio * r1, rng.uniform(0.5, 0.9), roll + np.pi),
        ):
            if child_r >= min_r:
                todo.append((end, _turn(axis, angle, turn), child_r))
    return segments


def _draw_segments(
    fraction: np.ndarray, grid: Grid, segments: list[tuple[np.ndarray, np.ndarray, float]]
) -> None:
    """Raise ``fraction`` (vessel share per voxel) along each segment, with partial volume.

    Segments whose boxes have the same shape are drawn together, as one array: a patient's
    trees have about ten thousand segments, mostly a few voxels wide, and one at a time the
    per-call overhead dominated. Each voxel's share is computed as for a segment alone, and
    the maximum over segments does not depend on their order.
    """
    h = float(grid.spacing[:2].min())
    groups: dict[tuple[int, int, int], list] = {}
    for start, end, r in segments:
        width = max(r, h / 2.0)
        peak = min(1.0, (r / width) ** 2)
        pad = width + h
        lo = np.minimum(start, end) - pad
        hi = np.maximum(start, end) + pad
        i0, i1 = np.searchsorted(grid.xs, [lo[0], hi[0]])
        j0, j1 = np.searchsorted(grid.ys, [lo[1], hi[1]])
        k0, k1 = np.searchsorted(grid.zs, [lo[2], hi[2]])
        if i0 >= i1 or j0 >= j1 or k0 >= k1:
            continue
        axis = end - start
        row = (start, axis, max(float(axis @ axis), 1e-9), width, peak, (k0, j0, i0))
        groups.setdefault((k1 - k0, j1 - j0, i1 - i0), []).append(row)
    for (nk, nj, ni), rows in groups.items():
        starts, axes, norms, widths, peaks, corners = (np.array(c) for c in zip(*rows, strict=True))
        k0, j0, i0 = corners.T
        points = np.empty((len(rows), nk, nj, ni, 3))  # (x, y, z) mm of each box's voxels
        points[..., 0] = grid.xs[i0[:, None] + np.arange(ni)][:, None, None, :]
        points[..., 1] = grid.ys[j0[:, None] + np.arange(nj)][:, None, :, None]
        points[..., 2] = grid.zs[k0[:, None] + np.arange(nk)][:, :, None, None]
        at = (slice(None), None, None, None)
        along = np.matmul(points - starts[at], axes[:, None, None, :, None])[..., 0]
        t = np.clip(along / norms[at], 0.0, 1.0)
        distance = np.linalg.norm(points - (starts[at] + t[..., None] * axes[at]), axis=-1)
        share = (peaks[at] * np.clip((widths[at] - distance) / h + 0.5, 0.0, 1.0)).astype(
            np.float32
        )
        for n, (k, j, i) in enumerate(corners):
            box = fraction[k : k + nk, j : j + nj, i : i + ni]
            np.maximum(box, share[n], out=box)


def voxel_average_sd(grain_mm: float, spacing_mm: tuple[float, float, float]) -> float:
    """The sd of a voxel's mean of a field of unit sd and Gaussian grain ``grain_mm``.

    A scanner's voxel averages the anatomy inside it, so the same lung shows less texture per
    voxel in a 5 mm slice than in a 1 mm one. Per axis of width a, the variance of the mean of
    white noise smoothed by a Gaussian of sd g falls from 1 (a << g) to 2 sqrt(pi) g / a
    (a >> g); 1 / sqrt(1 + (a / (2 sqrt(pi) g))^2) joins the two limits (within 3% between).
    """
    variance = 1.0
    for a in spacing_mm:
        variance /= np.sqrt(1.0 + (float(a) / (2.0 * np.sqrt(np.pi) * grain_mm)) ** 2)
    return float(np.sqrt(variance))


def _roots(rng: np.random.Generator, lung: np.ndarray, grid: Grid, n: int) -> list[tuple]:
    """(hilum point, first direction) per tree: from the medial rim of each lung, about its
    middle, towards a random point of that lung."""
    roots = []
    k, j, i = np.nonzero(lung)
    points = np.stack([grid.xs[i], grid.ys[j], grid.zs[k]], axis=1)
    for side in (-1.0, 1.0):
        own = points[np.sign(points[:, 0]) == side]
        if len(own) < 100:
            continue
        medial = own[np.abs(own[:, 0]) <= np.percentile(np.abs(own[:, 0]), 8)]
        centre = np.median(medial, axis=0)
        # Each tree starts at the lung voxel of the medial rim nearest a point scattered about
        # the hilum: inside the lung, so that no tree dies at its first segment.
        for _ in range(n):
            near = centre + rng.normal(0.0, [2.0, 8.0, 10.0])
            hilum = medial[np.argmin(np.linalg.norm(medial - near, axis=1))]
            target = own[rng.integers(len(own))]
            roots.append((hilum, target - hilum))
    return roots


def realistic_lung(
    rng: np.random.Generator,
    grid: Grid,
    lab: np.ndarray,
    hu: np.ndarray,
    cfg: Mapping[str, Any],
    aerated: np.ndarray | None = None,
) -> None:
    """Redraw the lungs of a phantom in place: background texture, then the vessel trees.

    ``aerated``: the lung (and its vessels) before the lesions were drawn; the lesions' margins
    inside it (ground glass) get the texture and the vessels too, on top of their own HU.
    """
    old = lab == VESSEL  # the phantom's vessel sticks go
    hu[old] = np.median(hu[lab == LUNG])
    lab[old] = LUNG
    lung = lab == LUNG
    glass = (lab == HALO) & aerated if aerated is not None else np.zeros_like(lung)
    sx, sy, sz = grid.spacing
    paren = cfg["parenchyma"]
    field = rng.standard_normal(hu.shape, dtype=np.float32)
    grain = float(paren["texture_mm"])
    field = ndimage.gaussian_filter(field, (grain / sz, grain / sy, grain / sx))
    sd = float(paren["texture_hu"]) * voxel_average_sd(grain, (sx, sy, sz))
    field *= np.float32(sd / max(float(field.std()), 1e-6))
    base = np.float32(rng.uniform(*paren["hu"]))
    gravity = hu[lung] - np.float32(np.median(hu[lung]))  # keep the phantom's gradient
    hu[lung] = base + gravity + field[lung]
    hu[glass] += field[glass]
    lung_or_glass = lung | glass

    trees = cfg["vessels"]

    def in_lung(p: np.ndarray) -> bool:
        voxel = grid.voxel_of(p)
        return voxel is not None and bool(lung_or_glass[voxel])

    fraction = np.zeros(hu.shape, np.float32)
    segments: list[tuple[np.ndarray, np.ndarray, float]] = []
    roots = _roots(rng, lung, grid, int(trees["roots_per_lung"]))
    per_tree = int(trees["max_segments"]) // max(1, len(roots))
    for hilum, direction in roots:
        radius = rng.uniform(*trees["root_radius_mm"])
        segments += grow_tree(rng, hilum, direction, radius, in_lung, trees, per_tree)
    _draw_segments(fraction, grid, segments)
    fraction[~lung_or_glass] = 0.0
    vessel_hu = np.float32(trees["hu"])
    share = fraction[lung_or_glass]
    hu[lung_or_glass] = hu[lung_or_glass] * (1.0 - share) + vessel_hu * share
    lab[lung & (fraction > 0.5)] = VESSEL  # a margin keeps its label
