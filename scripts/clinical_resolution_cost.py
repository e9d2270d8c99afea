"""Per-lesion cost of radiomics and crops at clinical resolution against the simulator's.

    PYTHONPATH=. python scripts/clinical_resolution_cost.py [--patients 8] [--fixtures .fixtures]

Times, in this process on one core, the harness's radiomics extraction (conf/radiomics/default.yaml,
no cache) and its lesion crops (crop_patient, hardware=cpu and gpu presets, read from
conf/hardware) for pyradiomics' real lung CTs (512x512, ``make fixtures``) and for the first
patients of the simulated default PEMBRO-RT cohort; prints a Markdown table (docs/real-ct.md, "Cost
at clinical resolution"). Each figure is the median over ``--repeats`` passes and over patients of a
patient's time divided by its lesions (reading the image included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import SimpleITK as sitk
from omegaconf import OmegaConf

from benchmark.api.cohort import Cohort
from benchmark.data import layout
from benchmark.data.crops import crop_patient
from benchmark.data.simulator import load_profile
from benchmark.data.source import resolve_root
from benchmark.features.radiomics import RadiomicsExtractor
from benchmark.utils.threads import torch_threads

REPO = Path(__file__).resolve().parents[1]
WINDOW = (-1000.0, 400.0)


def _presets() -> dict[str, tuple[float, float]]:
    """(spacing, cube edge) mm of the crops of each hardware preset (conf/hardware/*.yaml)."""
    out = {}
    for preset in ("cpu", "gpu"):
        deep = OmegaConf.load(REPO / "conf" / "hardware" / f"{preset}.yaml").deep
        out[preset] = (float(deep.spacing_mm), float(deep.size_mm))
    return out


PRESETS = _presets()


def _grid(cohort: Cohort) -> str:
    sizes, spacings = set(), set()
    for path in cohort.images.values():
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        sizes.add("x".join(str(n) for n in reader.GetSize()[:2]))
        spacings.add(tuple(round(s, 2) for s in reader.GetSpacing()))
    inplane = "-".join(dict.fromkeys(f"{s[0]:g}" for s in sorted(spacings)))
    slices = "/".join(sorted({f"{s[2]:g}" for s in spacings}))
    return f"{'/'.join(sorted(sizes))}, {inplane} mm, {slices} mm slices"


def measure(cohort: Cohort, repeats: int = 1) -> dict[str, float]:
    conf = OmegaConf.load(REPO / "conf" / "radiomics" / "default.yaml")
    extractor = RadiomicsExtractor(
        settings=conf.settings,
        feature_classes=conf.feature_classes,
        image_types=conf.image_types,
        cache_dir=None,
        workers=1,
        progress=False,
    )
    extractor(cohort.subset(cohort.patient_ids[:1]))  # warm-up: imports, extractor build
    times: dict[str, list[float]] = {"radiomics": [], "crop cpu": [], "crop gpu": []}
    for _ in range(repeats):
        for pid in cohort.patient_ids:
            n = int((cohort.lesions["patient_id"] == pid).sum())
            one = cohort.subset([pid])
            began = time.perf_counter()
            extractor(one)
            times["radiomics"].append((time.perf_counter() - began) / n)
            for preset, (spacing, edge) in PRESETS.items():
                args = (
                    str(cohort.images[pid]),
                    str(cohort.masks[pid]),
                    spacing,
                    round(edge / spacing),
                )
                with torch_threads(1):
                    began = time.perf_counter()
                    crop_patient(*args, WINDOW)
                    times[f"crop {preset}"].append((time.perf_counter() - began) / n)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=8, help="simulated patients (default 8)")
    parser.add_argument("--fixtures", type=Path, default=REPO / ".fixtures")
    parser.add_argument("--repeats", type=int, default=3, help="passes over each cohort (median)")
    args = parser.parse_args(argv)
    cache = Path(os.environ.get("NSCLC_IO_BENCH_CACHE") or REPO / ".cache")
    simulated = resolve_root(
        {"source": "simulated", "seed": 0, "profile": load_profile("default")}, cache
    )
    lungs = args.fixtures / "lung_cohorts"
    if not lungs.is_dir():
        print(f"{lungs} missing: run `make fixtures`", file=sys.stderr)
        return 1
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    rows = []
    views = cache / "views"
    sim, _ = layout.load(simulated, "pembro_rt", view_dir=views / "cost-sim", cache_dir=cache)
    real, _ = layout.load(lungs, "pembro_rt", view_dir=views / "cost-lungs", cache_dir=cache)
    for name, cohort in (
        (f"simulator (default profile, PEMBRO-RT, {args.patients} patients)",
         sim.subset(sim.patient_ids[: args.patients])),
        ("lung1 (real CT, pyradiomics)", real.subset(["PRT-LUNG1"])),
        ("lung2 (real CT, pyradiomics)", real.subset(["PRT-LUNG2"])),
    ):  # fmt: skip
        figures = measure(cohort, args.repeats)
        rows.append(
            f"| {name} | {_grid(cohort)} | {len(cohort.lesions)} | "
            + " | ".join(f"{1000 * figures[k]:.0f}" for k in ("radiomics", "crop cpu", "crop gpu"))
            + " |"
        )
    (cs, ce), (gs, ge) = PRESETS["cpu"], PRESETS["gpu"]
    print(f"| cohort | images | lesions | radiomics ms/lesion "
          f"| crop ms/lesion (`hardware=cpu`: {cs:g} mm, {ce:g} mm cube) "
          f"| crop ms/lesion (`hardware=gpu`: {gs:g} mm, {ge:g} mm) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
