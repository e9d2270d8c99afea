"""The per-patient thoracic / upper-abdominal phantom: tissue labels and noiseless HU.

Its tissue labels also tell the lesion placement which structure each site lives in.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.simulator.grid import Grid

# Tissue labels of the phantom (returned by render_patient for checks; never written to disk).
AIR, FAT, SOFT, LUNG, VESSEL, HEART, AORTA, CORTEX, MARROW, DISC, CANAL, LIVER, ADRENAL, AIRWAY = (
    range(14)
)
LESION, HALO = 20, 21
ANATOMY_LABELS = {
    "air": AIR,
    "fat": FAT,
    "soft_tissue": SOFT,
    "lung": LUNG,
    "vessel": VESSEL,
    "heart": HEART,
    "aorta": AORTA,
    "cortical_bone": CORTEX,
    "marrow": MARROW,
    "disc": DISC,
    "spinal_canal": CANAL,
    "liver": LIVER,
    "adrenal": ADRENAL,
    "airway": AIRWAY,
    "lesion": LESION,
    "halo": HALO,
}


def draw_phantom(rng: np.random.Generator, grid: Grid) -> tuple[np.ndarray, np.ndarray, dict]:
    """Tissue labels and noiseless HU of a thorax + upper abdomen; geometry for the placement."""
    xx, yy = grid.xs[None, :], grid.ys[:, None]  # (1, nx), (ny, 1)
    zz = grid.zs[:, None, None]
    s = rng.uniform(0.93, 1.03)
    A, B = 128.0 * s, 90.0 * s
    fat, wall = rng.uniform(7.0, 16.0), rng.uniform(8.0, 12.0)
    Ac, Bc = A - fat - wall, B - fat - wall
    dome_r, dome_l = rng.uniform(62.0, 72.0), rng.uniform(54.0, 62.0)
    yv, rv = 0.45 * Bc, 15.0 * s
    r_ao = 11.0 * s
    ao = (rv + r_ao + 4.0, yv - 10.0)
    med_w = 14.0 * s
    z_carina = grid.zs[-1] - rng.uniform(30.0, 40.0)
    heart = (0.12 * Ac, -0.3 * Bc, dome_l + 22.0, 0.40 * Ac, 0.45 * Bc, 36.0)
    rib_period, rib_phase = rng.uniform(20.0, 25.0), rng.uniform()
    disc_period, disc_phase = rng.uniform(25.0, 29.0), rng.uniform(0.0, 30.0)

    def ellipse(cx, cy, ax, ay):
        return ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 <= 1.0

    def dome(x, y):
        right = dome_r - 40.0 * (((x + 0.45 * Ac) / (0.6 * Ac)) ** 2 + ((y + 0.1 * Bc) / Bc) ** 2)
        left = dome_l - 40.0 * (((x - 0.45 * Ac) / (0.6 * Ac)) ** 2 + ((y + 0.1 * Bc) / Bc) ** 2)
        return np.where(x < 0, right, left)

    body, inner, cavity = (
        ellipse(0, 0, A, B),
        ellipse(0, 0, A - fat, B - fat),
        ellipse(0, 0, Ac, Bc),
    )
    zd = dome(xx, yy)  # (ny, nx): diaphragm height
    above = zz > zd[None]
    lab = np.zeros(grid.shape, np.uint8)
    lab[:, body] = FAT
    lab[:, inner] = SOFT

    vertebra = ellipse(0, yv, rv, rv)
    mediastinum = (
        ((np.abs(xx) < med_w) & (yy < yv))
        | ellipse(0, yv, rv + 6.0, rv + 6.0)
        | ((np.abs(xx) < rv + 4.0) & (yy > yv))
        | ellipse(*ao, r_ao + 3.0, r_ao + 3.0)
    )
    hx, hy, hz, hax, hay, haz = heart
    heart3 = (
        (((xx - hx) / hax) ** 2 + ((yy - hy) / hay) ** 2)[None] + ((zz - hz) / haz) ** 2 <= 1.0
    ) & (above & cavity[None])
    thorax = above & cavity[None]
    lab[thorax & mediastinum[None]] = FAT
    lab[thorax & ~mediastinum[None] & ~heart3] = LUNG
    lab[heart3] = HEART

    # Abdomen below the domes: liver (right, anterior), retroperitoneal fat, adrenals.
    below = zz < zd[None] - 4.0
    liver2 = (
        cavity
        & (xx < 12.0 - 0.35 * yy)
        & ~ellipse(0, yv, rv + 14.0, rv + 14.0)
        & ~ellipse(*ao, r_ao + 6.0, r_ao + 6.0)
    )
    adrenals = []
    for side in (-1.0, 1.0):
        ax_, ay_ = side * 0.3 * Ac, yv - 2.0
        az_ = float(dome(np.array(ax_), np.array(ay_))) - 20.0
        adrenals.append((ax_, ay_, az_))
        liver2 &= ~ellipse(ax_, ay_, 22.0, 18.0)
    lab[below & liver2[None]] = LIVER
    for ax_, ay_, az_ in adrenals:
        around = ((xx - ax_) / 20.0) ** 2 + ((yy - ay_) / 16.0) ** 2
        gland = ((xx - ax_) / 5.0) ** 2 + ((yy - ay_) / 10.0) ** 2
        zterm = ((zz - az_) / 26.0) ** 2
        lab[below & cavity[None] & (around[None] + zterm <= 1.0)] = FAT
        lab[below & (gland[None] + ((zz - az_) / 12.0) ** 2 <= 1.0)] = ADRENAL

    lab[:, ellipse(*ao, r_ao, r_ao) & cavity] = AORTA
    trachea = ellipse(0, yv - rv - 12.0, 8.0, 7.0)
    lab[(zz > z_carina) & trachea[None]] = AIRWAY

    # Spine: cortex, marrow, discs, canal, posterior elements.
    marrow = ellipse(0, yv, rv - 2.5, rv - 2.5)
    canal_c = (0.0, yv + rv + 6.0)
    posterior = (ellipse(*canal_c, 10.0, 10.0) | ellipse(0, yv + rv + 16.0, 4.0, 8.0)) & ~vertebra
    lab[:, vertebra] = CORTEX
    lab[:, marrow] = MARROW
    disc = (np.mod(grid.zs + disc_phase, disc_period) < 5.0)[:, None, None]
    lab[disc & vertebra[None]] = DISC
    lab[:, posterior] = CORTEX
    lab[:, ellipse(*canal_c, 6.0, 6.0)] = CANAL

    # Ribs in the chest wall (slanted), sternum anteriorly.
    rho_out = np.sqrt((xx / (A - fat - 1.0)) ** 2 + (yy / (B - fat - 1.0)) ** 2)
    rho_in = np.sqrt((xx / (A - fat - 7.0)) ** 2 + (yy / (B - fat - 7.0)) ** 2)
    theta = np.arctan2(yy, xx)
    band = (rho_out <= 1.0) & (rho_in > 1.0) & (np.abs(xx) > 20.0) & (yy > -0.75 * B)
    slant = 12.0 * np.sin(theta)
    ribs = band[None] & (np.mod((zz + slant[None]) / rib_period + rib_phase, 1.0) < 0.28)
    lab[ribs] = CORTEX
    lab[(zz > 45.0) & ellipse(0, -(B - fat - 6.0), 14.0, 5.0)[None]] = CORTEX

    # Faint lung vessels: random walks from the hila.
    n_vessels = int(rng.integers(26, 40))
    steps = 45
    side = np.where(np.arange(n_vessels) % 2 == 0, -1.0, 1.0)
    start = np.stack(
        [
            side * (med_w + 6.0),
            rng.uniform(-0.3 * Bc, 0.2 * Bc, n_vessels),
            rng.uniform(50.0, grid.zs[-1] - 10.0, n_vessels),
        ],
        axis=1,
    )
    heading = np.stack(
        [side * rng.uniform(0.4, 1.0, n_vessels), rng.normal(0, 0.6, n_vessels)], axis=1
    )
    heading = np.column_stack([heading, rng.normal(0, 0.5, n_vessels)])
    walk = heading[:, None, :] + np.cumsum(rng.normal(0, 0.12, (n_vessels, steps, 3)), axis=1)
    walk /= np.linalg.norm(walk, axis=2, keepdims=True)
    points = start[:, None, :] + 2.0 * np.cumsum(walk, axis=1)
    thick = np.zeros(points.shape[:2], bool)
    thick[:, : int(0.45 * steps)] = True
    inside = np.all((points >= grid.lo) & (points <= grid.hi), axis=2)
    k, j, i = grid.index(points[inside])
    kk, jj, ii = [k], [j], [i]
    tk, tj, ti = grid.index(points[inside & thick])
    for dj, di in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        kk.append(tk)
        jj.append(np.clip(tj + dj, 0, grid.ny - 1))
        ii.append(np.clip(ti + di, 0, grid.nx - 1))
    k, j, i = np.concatenate(kk), np.concatenate(jj), np.concatenate(ii)
    lung_hit = lab[k, j, i] == LUNG
    lab[k[lung_hit], j[lung_hit], i[lung_hit]] = VESSEL

    lut = np.zeros(32, np.float32)
    lut[AIR], lut[AIRWAY] = -1000.0, -1000.0
    lut[FAT] = rng.uniform(-110.0, -85.0)
    lut[SOFT] = rng.uniform(38.0, 52.0)
    lut[LUNG] = rng.uniform(-875.0, -835.0)
    lut[VESSEL] = 40.0
    lut[HEART] = rng.uniform(35.0, 45.0)
    lut[AORTA] = rng.uniform(38.0, 48.0)
    lut[CORTEX] = rng.uniform(700.0, 950.0)
    lut[MARROW] = rng.uniform(340.0, 420.0)
    lut[DISC] = 80.0
    lut[CANAL] = 12.0
    lut[LIVER] = rng.uniform(52.0, 66.0)
    lut[ADRENAL] = 30.0
    hu = lut[lab]
    gravity = rng.uniform(30.0, 70.0)  # dependent (posterior) lung is denser
    hu += np.where(lab == LUNG, (gravity * yy / Bc).astype(np.float32)[None], np.float32(0.0))

    geometry = {
        "Ac": Ac,
        "Bc": Bc,
        "yv": yv,
        "rv": rv,
        "med_w": med_w,
        "heart_top": hz + haz,
        "adrenals": adrenals,
    }
    return lab, hu, geometry
