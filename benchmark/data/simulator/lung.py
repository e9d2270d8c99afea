"""Lung parenchyma that looks like lung: branching vessel trees and a textured background.

Off unless the profile's ``anatomy`` asks for it (``conf/data/realistic.yaml``); it draws from
its own random stream, so a profile without it renders exactly as before.

* **Vessel trees** grow from each hilum: a segment of radius r runs r x U(length_ratio) mm, then
  splits in two by Murray's law (r1^3 + r2^3 = r^3, the smaller child at the ratio
  U(asymmetry)), the children turning away from the parent's axis; a branch stops below
  ``min_radius_mm`` or where it leaves the lung. Segments are drawn with partial volume (a
  sub-voxel vessel keeps its cross-section's share of the voxel), so calibres shrink from
  centimetre hilar vessels to sub-millimetre peripheral ones, as on CT.
* **Background**: the parenchyma's own HU plus a correlated Gaussian field (secondary lobules,
  vessels below the resolution), ``texture_hu`` sd at ``texture_mm`` grain.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy import ndimage

from benchmark.data.simulator.grid import Grid
from benchmark.data.simulator.phantom import LUNG, VESSEL


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _turn(rng: np.random.Generator, axis: np.ndarray, angle: float, roll: float) -> np.ndarray:
    """``axis`` turned by ``angle`` towards a direction at ``roll`` around it."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = _unit(np.cross(axis, helper))
    w = np.cross(axis, u)
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
                todo.append((end, _turn(rng, axis, angle, turn), child_r))
    return segments


def _draw_segment(
    fraction: np.ndarray, grid: Grid, start: np.ndarray, end: np.ndarray, r: float
) -> None:
    """Raise ``fraction`` (vessel share per voxel) along one segment, with partial volume."""
    h = float(grid.spacing[:2].min())
    width = max(r, h / 2.0)
    peak = min(1.0, (r / width) ** 2)
    pad = width + h
    lo = np.minimum(start, end) - pad
    hi = np.maximum(start, end) + pad
    i0, i1 = np.searchsorted(grid.xs, [lo[0], hi[0]])
    j0, j1 = np.searchsorted(grid.ys, [lo[1], hi[1]])
    k0, k1 = np.searchsorted(grid.zs, [lo[2], hi[2]])
    if i0 >= i1 or j0 >= j1 or k0 >= k1:
        return
    z, y, x = np.meshgrid(grid.zs[k0:k1], grid.ys[j0:j1], grid.xs[i0:i1], indexing="ij")
    points = np.stack([x, y, z], axis=-1)
    axis = end - start
    t = np.clip(((points - start) @ axis) / max(float(axis @ axis), 1e-9), 0.0, 1.0)
    distance = np.linalg.norm(points - (start + t[..., None] * axis), axis=-1)
    share = peak * np.clip((width - distance) / h + 0.5, 0.0, 1.0)
    box = fraction[k0:k1, j0:j1, i0:i1]
    np.maximum(box, share.astype(np.float32), out=box)


def _roots(rng: np.random.Generator, lung: np.ndarray, grid: Grid, n: int) -> list[tuple]:
    """(hilum point, first direction) per tree: from the medial middle of each lung towards a
    random point of that lung."""
    roots = []
    k, j, i = np.nonzero(lung)
    points = np.stack([grid.xs[i], grid.ys[j], grid.zs[k]], axis=1)
    for side in (-1.0, 1.0):
        own = points[np.sign(points[:, 0]) == side]
        if len(own) < 100:
            continue
        medial = own[np.abs(own[:, 0]) <= np.percentile(np.abs(own[:, 0]), 8)]
        centre = np.median(medial, axis=0)
        for _ in range(n):
            hilum = centre + rng.normal(0.0, [2.0, 8.0, 10.0])
            target = own[rng.integers(len(own))]
            roots.append((hilum, target - hilum))
    return roots


def realistic_lung(
    rng: np.random.Generator, grid: Grid, lab: np.ndarray, hu: np.ndarray, cfg: Mapping[str, Any]
) -> None:
    """Redraw the lungs of a phantom in place: background texture, then the vessel trees."""
    old = lab == VESSEL  # the phantom's vessel sticks go
    hu[old] = np.median(hu[lab == LUNG])
    lab[old] = LUNG
    lung = lab == LUNG
    sx, sy, sz = grid.spacing
    paren = cfg["parenchyma"]
    field = rng.standard_normal(hu.shape, dtype=np.float32)
    grain = float(paren["texture_mm"])
    field = ndimage.gaussian_filter(field, (grain / sz, grain / sy, grain / sx))
    field *= np.float32(paren["texture_hu"]) / max(float(field.std()), 1e-6)
    base = np.float32(rng.uniform(*paren["hu"]))
    gravity = hu[lung] - np.float32(np.median(hu[lung]))  # keep the phantom's gradient
    hu[lung] = base + gravity + field[lung]

    trees = cfg["vessels"]

    def in_lung(p: np.ndarray) -> bool:
        if np.any(p < grid.lo) or np.any(p > grid.hi):
            return False
        k, j, i = grid.index(p)
        return bool(lung[k, j, i])

    fraction = np.zeros(hu.shape, np.float32)
    budget = int(trees["max_segments"])
    roots = _roots(rng, lung, grid, int(trees["roots_per_lung"]))
    for hilum, direction in roots:
        radius = rng.uniform(*trees["root_radius_mm"])
        share = budget // max(1, len(roots))
        for start, end, r in grow_tree(rng, hilum, direction, radius, in_lung, trees, share):
            _draw_segment(fraction, grid, start, end, r)
    fraction[~lung] = 0.0
    vessel_hu = np.float32(trees["hu"])
    hu[lung] = hu[lung] * (1.0 - fraction[lung]) + vessel_hu * fraction[lung]
    lab[lung & (fraction > 0.5)] = VESSEL
