"""Closed planar polygons <-> voxel masks on one slice, without OpenCV.

RTSTRUCT stores a lesion as polygons per slice. Rasterising decides which voxel centres lie inside
(even-odd over every polygon of the slice, so a contour inside another is a hole, as planning
systems draw them). Tracing writes the exact outline of the voxels (their edges, not their
centres), so a traced mask rasterises back to itself.

Coordinates are continuous voxel indices ``(column, row)``: voxel ``(r, c)`` has its centre at
``(c, r)`` and spans ``c - 0.5 .. c + 0.5``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def rasterise(polygons: Sequence[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The voxels of a ``(rows, columns)`` slice whose centres lie inside the polygons (even-odd).

    Each polygon is an ``(n, 2)`` array of ``(column, row)`` vertices, closed implicitly. A centre
    on an edge counts as inside on the edge's left side of a crossing pair (half-open rule), so
    abutting polygons share no voxel.
    """
    rows, cols = shape
    starts, stops = [], []
    for poly in polygons:
        poly = np.asarray(poly, dtype=float)
        if len(poly) < 3:
            continue
        x0, y0 = poly[:, 0], poly[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        keep = y0 != y1
        starts.append(np.stack([x0[keep], y0[keep]], 1))
        stops.append(np.stack([x1[keep], y1[keep]], 1))
    mask = np.zeros(shape, dtype=bool)
    if not starts:
        return mask
    a, b = np.concatenate(starts), np.concatenate(stops)
    low, high = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    first = np.clip(np.ceil(low), 0, rows).astype(np.int64)  # rows r with low <= r < high
    last = np.clip(np.ceil(high), 0, rows).astype(np.int64)
    counts = last - first
    if counts.sum() == 0:
        return mask
    edge = np.repeat(np.arange(len(a)), counts)
    row = first[edge] + (np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts))
    t = (row - a[edge, 1]) / (b[edge, 1] - a[edge, 1])
    x = a[edge, 0] + t * (b[edge, 0] - a[edge, 0])
    order = np.lexsort((x, row))
    row, x = row[order], x[order]
    # Each row has an even number of crossings (closed polygons): pair them in order.
    left = np.clip(np.ceil(x[0::2]), 0, cols).astype(np.int64)
    right = np.clip(np.ceil(x[1::2]), 0, cols).astype(np.int64)
    diff = np.zeros((rows, cols + 1), dtype=np.int32)
    np.add.at(diff, (row[0::2], left), 1)
    np.add.at(diff, (row[0::2], right), -1)
    return np.cumsum(diff[:, :cols], axis=1) > 0


def trace(mask: np.ndarray) -> list[np.ndarray]:
    """Closed polygons (``(n, 2)`` ``(column, row)`` vertices) along the voxel edges of ``mask``.

    Every outline and hole becomes one polygon; :func:`rasterise` of the result is ``mask``.
    Collinear vertices are dropped.
    """
    m = np.pad(np.asarray(mask, dtype=bool), 1)
    edges: list[np.ndarray] = []
    # Each inside voxel's sides facing an outside voxel, clockwise on screen (x right, y down),
    # as corner coordinates of the padded grid: voxel (r, c) spans x in [c, c+1], y in [r, r+1].
    for dr, dc, p, q in (
        (-1, 0, (0, 0), (1, 0)),  # top: (c, r) -> (c+1, r)
        (0, 1, (1, 0), (1, 1)),  # right
        (1, 0, (1, 1), (0, 1)),  # bottom
        (0, -1, (0, 1), (0, 0)),  # left
    ):
        neighbour = np.roll(m, (-dr, -dc), axis=(0, 1))
        r, c = np.nonzero(m & ~neighbour)
        edges.append(np.stack([c + p[0], r + p[1], c + q[0], r + q[1]], 1))
    all_edges = np.concatenate(edges)
    outgoing: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for x0, y0, x1, y1 in all_edges.tolist():
        outgoing.setdefault((x0, y0), []).append((x1, y1))
    polygons = []
    while outgoing:
        start = next(iter(outgoing))
        loop, here = [start], start
        while True:
            targets = outgoing[here]
            nxt = targets.pop()
            if not targets:
                del outgoing[here]
            if nxt == start:
                break
            loop.append(nxt)
            here = nxt
        points = np.asarray(loop, dtype=float)
        polygons.append(_drop_collinear(points) - 1.5)  # padded corner -> voxel index
    return polygons


def _drop_collinear(points: np.ndarray) -> np.ndarray:
    prev, nxt = np.roll(points, 1, axis=0), np.roll(points, -1, axis=0)
    cross = (points[:, 0] - prev[:, 0]) * (nxt[:, 1] - points[:, 1]) - (
        points[:, 1] - prev[:, 1]
    ) * (nxt[:, 0] - points[:, 0])
    return points[cross != 0]


__all__ = ["rasterise", "trace"]
