"""Where a lesion goes: inside the structure of its site, apart from the patient's other lesions.

Placement searches the phantom's labels, so a lesion sits where a reader expects its site.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.simulator.grid import Grid
from benchmark.data.simulator.lesions import PLEURA_FLATTEN, Shape
from benchmark.data.simulator.phantom import (
    ADRENAL,
    AIR,
    AORTA,
    CANAL,
    CORTEX,
    DISC,
    FAT,
    HEART,
    LIVER,
    LUNG,
    MARROW,
    SOFT,
    VESSEL,
)

# Directions used to test where a lesion would lie (26 neighbours of a cube, normalised).
_DIRS = np.array(
    [
        (x, y, z)
        for x in (-1, 0, 1)
        for y in (-1, 0, 1)
        for z in (-1, 0, 1)
        if (x, y, z) != (0, 0, 0)
    ],
    float,
)
_DIRS /= np.linalg.norm(_DIRS, axis=1, keepdims=True)


# Where each site's lesion may lie: the tissue allowed around it, and the fraction required.
_ALLOWED = {
    "lung": ({LUNG, VESSEL}, 0.8),
    "lymph_node": ({FAT, SOFT, LUNG, VESSEL, HEART}, 0.85),
    "liver": ({LIVER}, 0.9),
    "adrenal": ({FAT, SOFT, LIVER, ADRENAL, LUNG, VESSEL}, 0.9),
    "bone": ({FAT, SOFT, LUNG, VESSEL, CORTEX, MARROW, DISC, CANAL, HEART, AORTA}, 0.95),
    "pleura": ({LUNG, VESSEL, SOFT, FAT, CORTEX}, 0.95),
}


class Placer:
    """Proposes lesion centres inside the structure of each site; keeps lesions apart."""

    def __init__(self, rng: np.random.Generator, grid: Grid, lab: np.ndarray, geometry: dict):
        self.rng, self.grid, self.lab, self.geo = rng, grid, lab, geometry
        self.pools: dict[str, np.ndarray] = {}
        self.placed: list[tuple[np.ndarray, float]] = []  # (centre, reach incl. halo)

    def _pool(self, name: str) -> np.ndarray:
        """Flat voxel indices where a lesion of a site may be centred (computed once, lazily)."""
        if name in self.pools:
            return self.pools[name]
        lab, grid, g = self.lab, self.grid, self.geo
        x = np.abs(grid.xs)[None, None, :]
        y = grid.ys[None, :, None]
        z = grid.zs[:, None, None]
        lungish = (lab == LUNG) | (lab == VESSEL)
        fatty = (lab == FAT) | (lab == SOFT)
        if name in ("lung", "liver", "marrow", "rib"):
            label = {"lung": LUNG, "liver": LIVER, "marrow": MARROW, "rib": CORTEX}[name]
            where = lab == label
        elif name == "lymph_node":
            # Mediastinal fat above the heart, and the lung next to the mediastinum (hilum).
            station = (y > -0.7 * g["Bc"]) & (y < g["yv"] - g["rv"] + 4.0)
            station = station & (z > g["heart_top"] - 25.0)
            where = station & (
                (fatty & (x < g["med_w"] + 30.0)) | (lungish & (x < g["med_w"] + 10.0))
            )
        elif name == "lymph_node_wide":  # anywhere in the thorax near the midline
            where = (fatty | lungish | (lab == HEART)) & (x < g["med_w"] + 40.0)
        elif name == "pleura":  # lung next to the cavity wall
            rho = np.sqrt((grid.xs[None, :] / g["Ac"]) ** 2 + (grid.ys[:, None] / g["Bc"]) ** 2)
            where = (lab == LUNG) & (rho > 1.0 - 6.0 / g["Bc"])[None]
        elif name == "body":  # last resort: any soft tissue, fat, lung or liver
            where = fatty | lungish | (lab == LIVER)
        else:
            raise KeyError(name)
        pool = np.flatnonzero(where)
        if len(pool) == 0:
            pool = np.flatnonzero(lab != AIR)
        self.pools[name] = pool
        return pool

    def _propose(self, site: str, rmax: float, wide: bool) -> tuple[np.ndarray, np.ndarray | None]:
        rng, g = self.rng, self.geo
        if wide:
            pool = self._pool("lymph_node_wide" if site == "lymph_node" else "body")
        elif site == "adrenal":
            centre = np.array(g["adrenals"][int(rng.integers(2))]) + rng.normal(0, 3.0, 3)
            centre[2] = max(centre[2], self.grid.lo[2] + rmax + 2.0) + rng.uniform(0, 4.0)
            return centre, None
        elif site == "bone":
            pool = self._pool("marrow" if rng.random() < 0.7 else "rib")
        else:
            pool = self._pool(site)
        centre = self.grid.position(pool[rng.integers(len(pool))])
        centre = centre + rng.uniform(-0.5, 0.5, 3) * self.grid.spacing
        if site != "pleura" or wide:
            return centre, None
        normal = np.array([centre[0] / g["Ac"] ** 2, centre[1] / g["Bc"] ** 2, 0.0])
        normal /= np.linalg.norm(normal)
        return centre, normal

    def place(self, site: str, shape: Shape, halo: float) -> tuple[np.ndarray, np.ndarray | None]:
        """A centre (and lens normal for pleura) for a lesion; tries the site's structure first,
        relaxes how much of the lesion must lie in allowed tissue, then widens the search."""
        allowed, need = _ALLOWED[site]
        allowed = np.array(sorted(allowed))
        reach = shape.rmax + halo
        margin = shape.rmax + 0.6 * self.grid.spacing
        probe_r = shape.r0 * (1.0 + 0.5 * shape.lobulation)
        best, best_score = None, -1.0
        for attempt in range(3000):
            wide = attempt >= 1200
            centre, normal = self._propose(site, shape.rmax, wide)
            if normal is not None:  # the lens sits on the pleura, partly in the chest wall
                centre = centre + 0.3 * PLEURA_FLATTEN * shape.r0 * normal
            if np.any(centre - margin < self.grid.lo) or np.any(centre + margin > self.grid.hi):
                continue
            if any(np.linalg.norm(centre - c) < reach + r + 2.0 for c, r in self.placed):
                continue
            probes = centre + probe_r * (_DIRS if normal is None else _flatten_dirs(_DIRS, normal))
            score = float(np.isin(self.lab[self.grid.index(probes)], allowed).mean())
            if score > best_score:
                best, best_score = (centre, normal), score
            if score >= need - 0.1 * min(attempt // 300, 3) or (wide and attempt >= 1500):
                break
        if best is None:
            raise RuntimeError(f"could not place a {site} lesion of {2 * shape.r0:.0f} mm")
        self.placed.append((best[0], reach))
        return best


def _flatten_dirs(dirs: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Directions scaled onto the surface of a lens flattened along ``normal``."""
    along = dirs @ normal
    return dirs - (1.0 - PLEURA_FLATTEN) * along[:, None] * normal[None, :]
