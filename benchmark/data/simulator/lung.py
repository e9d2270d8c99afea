"""Lung parenchyma that looks like lung: branching vessel trees and a textured background.

Off unless the profile's ``anatomy`` asks for it (``conf/data/realistic.yaml``); it draws from
its own random stream, so a profile without it renders exactly as before.

* **Vessel trees** grow from each hilum: a segment of radius r runs r x U(length_ratio) mm, then
  splits in two by Murray's law (r1^3 + r2^3 = r^3, the smaller child at the ratio
  U(asymmetry)), the children turning away from the parent's axis; a branch stops below
  ``min_radius_mm`` or where it leaves the lung. Segments are drawn with partial volume, in-plane
  and across the slice, so that a vessel of any calibre keeps its true cross-section in any
  voxel: calibres shrink from centimetre hilar vessels to sub-millimetre peripheral ones, as on
  CT.
  Trees start inside the lung, at its medial rim about the hilum, and grow through the lesions'
  margins (vessels run through ground glass).
* **Background**: the parenchyma's own HU plus a correlated Gaussian field (secondary lobules,
  vessels below the resolution) of sd ``texture_hu`` at a point and grain ``texture_mm``. A voxel
  shows the field's average over its volume, so a 5 mm slice shows less of it than a 1 mm one
  (:func:`voxel_average_sd`): the anatomy is the same whichever scanner images it. The field
  also shows through the ground glass of a lesion's margin, which is then patchy, not even.

Both come back as an image of voxel means, apart from the phantom sampled at voxel centres, so
that the scanner averages them over the slice once, not twice (``render._acquire``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import ndimage

from benchmark.data.simulator.grid import Grid
from benchmark.data.simulator.phantom import HALO, LUNG, VESSEL

Vec = tuple[float, float, float]
Segment = tuple[Vec, Vec, float]  # start (x, y, z) mm, end, radius mm


def _unit(v: Vec) -> Vec:
    n = max(math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]), 1e-9)
    return (v[0] / n, v[1] / n, v[2] / n)


def _cross(a: Vec, b: Vec) -> Vec:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _turn(axis: Vec, angle: float, roll: float) -> Vec:
    """``axis`` turned by ``angle`` towards a direction at ``roll`` around it."""
    helper = (1.0, 0.0, 0.0) if abs(axis[0]) < 0.9 else (0.0, 1.0, 0.0)
    u = _unit(_cross(axis, helper))
    w = _cross(axis, u)
    c, s = math.cos(roll), math.sin(roll)
    ca, sa = math.cos(angle), math.sin(angle)
    turned = [ca * a + sa * (c * ui + s * wi) for a, ui, wi in zip(axis, u, w, strict=True)]
    return _unit((turned[0], turned[1], turned[2]))


def grow_tree(
    rng: np.random.Generator,
    root: Sequence[float],
    direction: Sequence[float],
    radius: float,
    in_lung: Callable[[Vec], bool],
    cfg: Mapping[str, Any],
    budget: int,
) -> list[Segment]:
    """Segments (start, end, radius) in mm of one tree, breadth first, at most ``budget``.

    Plain floats, not numpy 3-vectors, and the random numbers drawn a block at a time: a
    patient's trees take ten thousand segments, and numpy's per-call overhead on a few numbers
    was most of the render's time.
    """
    lo, hi = cfg["length_ratio"]
    a_lo, a_hi = cfg["asymmetry"]
    min_r = float(cfg["min_radius_mm"])
    segments: list[Segment] = []
    todo = deque([(tuple(map(float, root)), _unit(tuple(map(float, direction))), float(radius))])
    draws: list[list[float]] = []
    while todo and len(segments) < budget:
        if not draws:  # length, asymmetry, roll and the two children's angles of a branch
            low = (lo, a_lo, 0.0, 0.25, 0.5)
            draws = rng.uniform(low, (hi, a_hi, 2.0 * math.pi, 0.5, 0.9), (256, 5)).tolist()
        u_length, ratio, roll, angle_1, angle_2 = draws.pop()
        start, axis, r = todo.popleft()
        length = max(2.0, r * u_length)
        end = (
            start[0] + axis[0] * length,
            start[1] + axis[1] * length,
            start[2] + axis[2] * length,
        )
        if not in_lung(end):
            continue
        segments.append((start, end, r))
        r1 = r / (1.0 + ratio**3) ** (1.0 / 3.0)
        for child_r, angle, turn in ((r1, angle_1, roll), (ratio * r1, angle_2, roll + math.pi)):
            if child_r >= min_r:
                todo.append((end, _turn(axis, angle, turn), child_r))
    return segments


def _draw_segments(fraction: np.ndarray, grid: Grid, segments: list[Segment]) -> None:
    """Raise ``fraction`` (vessel share per voxel) along each segment, with partial volume.

    Segments whose boxes have the same shape are drawn together, as one array: a patient's
    trees have about ten thousand segments, mostly a few voxels wide, and one at a time the
    per-call overhead dominated. Each voxel's share is computed as for a segment alone, and
    the maximum over segments does not depend on their order.

    A thick slice averages along z as the detector does: the share is the mean over
    ``round(slice / pixel)`` sub-slices, so a thin vessel running in-plane through a 5 mm slice
    keeps only its cross-section's part of it instead of showing at full contrast where it
    crosses the slice's centre and vanishing between.
    """
    if not segments:
        return
    h = float(grid.spacing[:2].min())
    thickness = float(grid.spacing[2])
    subs = max(1, round(thickness / h))
    offsets = ((np.arange(subs) + 0.5) / subs - 0.5) * thickness
    starts = np.array([s for s, _, _ in segments])
    ends = np.array([e for _, e, _ in segments])
    radii = np.array([r for _, _, r in segments])
    widths = np.maximum(radii, h / 2.0)
    # The ramp below spreads a disc of radius r over pi (max(r, h/2)^2 + h^2 / 12) mm^2 of the
    # plane; scaled, every calibre keeps its true cross-section, pi r^2 (a vessel's volume).
    peaks = radii**2 / (widths**2 + h * h / 12.0)
    pad = (widths + h)[:, None]
    reach = [0.0, 0.0, thickness / 2.0 - thickness / (2 * subs)]  # the outer sub-slices
    lo = np.minimum(starts, ends) - pad - reach
    hi = np.maximum(starts, ends) + pad + reach
    bounds = [
        np.searchsorted(axis, [lo[:, n], hi[:, n]])
        for n, axis in enumerate((grid.xs, grid.ys, grid.zs))
    ]
    (i0, i1), (j0, j1), (k0, k1) = bounds
    groups: dict[tuple[int, int, int], list[int]] = {}
    sizes = np.stack([k1 - k0, j1 - j0, i1 - i0], axis=1)
    for n, size in enumerate(map(tuple, sizes.tolist())):
        if min(size) > 0:
            groups.setdefault(size, []).append(n)
    axes_all = ends - starts
    x, y, z = axes_all.T
    norms_all = np.maximum(x * x + y * y + z * z, 1e-9)
    for (nk, nj, ni), members in groups.items():
        m = np.array(members)
        starts_m, axes, norms = starts[m], axes_all[m], norms_all[m]
        corners = np.stack([k0[m], j0[m], i0[m]], axis=1)
        points = np.empty((len(m), nk, nj, ni, 3))  # (x, y, z) mm of each box's voxels
        points[..., 0] = grid.xs[i0[m][:, None] + np.arange(ni)][:, None, None, :]
        points[..., 1] = grid.ys[j0[m][:, None] + np.arange(nj)][:, None, :, None]
        zs = grid.zs[k0[m][:, None] + np.arange(nk)][:, :, None, None]
        at = (slice(None), None, None, None)  # one value per segment, against its box
        start, axis, norm, width = starts_m[at], axes[at], norms[at], widths[m][at]
        share = np.zeros((len(m), nk, nj, ni))
        for dz in offsets:
            points[..., 2] = zs + dz
            along = np.matmul(points - start, axes[:, None, None, :, None])[..., 0]
            t = np.clip(along / norm, 0.0, 1.0)
            distance = np.linalg.norm(points - (start + t[..., None] * axis), axis=-1)
            share += np.clip((width - distance) / h + 0.5, 0.0, 1.0)
        share = (share * (peaks[m][at] / subs)).astype(np.float32)
        for n, (k, j, i) in enumerate(corners.tolist()):
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
) -> np.ndarray:
    """Redraw the lungs of a phantom: background texture, then the vessel trees.

    ``hu`` and ``lab`` change in place to the lungs' smooth level (sampled at voxel centres,
    like the rest of the phantom); the texture and vessels come back as a separate image to
    add, already averaged over each voxel (``_acquire`` must not average them over the slice
    again). ``aerated``: the lung (and its vessels) before the lesions were drawn; the lesions'
    margins inside it (ground glass) get the texture and the vessels too, on top of their own
    HU.
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
    hu[lung] = base + gravity
    lung_or_glass = lung | glass
    averaged = np.zeros_like(hu)
    averaged[lung_or_glass] = field[lung_or_glass]

    trees = cfg["vessels"]

    def in_lung(p: Vec) -> bool:
        voxel = grid.voxel_of(p)
        return voxel is not None and bool(lung_or_glass[voxel])

    fraction = np.zeros(hu.shape, np.float32)
    segments: list[Segment] = []
    roots = _roots(rng, lung, grid, int(trees["roots_per_lung"]))
    per_tree = int(trees["max_segments"]) // max(1, len(roots))
    for hilum, direction in roots:
        radius = rng.uniform(*trees["root_radius_mm"])
        segments += grow_tree(rng, hilum, direction, radius, in_lung, trees, per_tree)
    _draw_segments(fraction, grid, segments)
    fraction[~lung_or_glass] = 0.0
    vessel_hu = np.float32(trees["hu"])
    share = fraction[lung_or_glass]
    # The voxel becomes (1 - share) of what it was and share of blood.
    averaged[lung_or_glass] += (vessel_hu - hu[lung_or_glass] - averaged[lung_or_glass]) * share
    lab[lung & (fraction > 0.5)] = VESSEL  # a margin keeps its label
    return averaged
