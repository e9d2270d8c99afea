"""``python -m benchmark.calibration.realism``: the simulated cohorts against real chest CT.

    python -m benchmark.calibration.realism [--profile default] [--seed 0] [--out DIR]

Prints the tables and the targets; writes realism.json and two figures (slices, measures) under
--out (default docs/realism/<profile>); exits 1 when a target fails (docs/realism.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.calibration.committed import generator
from benchmark.calibration.realism import measure
from benchmark.calibration.realism.figure import measures_figure, slices_figure
from benchmark.calibration.realism.report import render
from benchmark.calibration.realism.scans import real_scans, simulated_scans
from benchmark.data.simulator import load_profile
from benchmark.data.simulator.profiles import cohort_settings
from benchmark.utils.atomic import write_atomic

# `make fixtures` puts pyradiomics' real CT here (tests/fetch_fixtures.py).
REAL_DIR = Path(os.environ.get("NSCLC_IO_BENCH_FIXTURES") or ".fixtures") / "pyradiomics"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.calibration.realism",
        description="Compare the simulated cohorts with real NSCLC CT: HU per tissue, noise "
        "power spectrum, patch texture and a classifier two-sample test.",
    )
    parser.add_argument("--profile", default="default", help="simulator profile (conf/data/)")
    parser.add_argument("--seed", type=int, default=0, help="data seed (default 0, the public)")
    parser.add_argument("--real", type=Path, default=REAL_DIR, help="real CT (default %(default)s)")
    parser.add_argument(
        "--per-cohort", type=int, default=12, help="simulated scans per cohort (default 12)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="processes rendering the scans (default 2)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="realism.json and the figures (default docs/realism/<profile>)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.out = args.out or Path("docs/realism") / args.profile
    profile = load_profile(args.profile)
    cohorts = list(profile["cohorts"])
    kernels = {
        c: cohort_settings(profile, c)["acquisition"].get("kernel", "unknown") for c in cohorts
    }
    progress = sys.stderr.isatty()
    real = real_scans(args.real)
    simulated = simulated_scans(
        profile, args.seed, kernels, args.per_cohort, args.workers, progress
    )
    report = measure(real + simulated, cohorts, kernels, seed=args.seed, progress=progress)
    print(render(report))
    args.out.mkdir(parents=True, exist_ok=True)
    payload = {
        "generator": generator(),
        "profile": args.profile,
        "data_seed": args.seed,
        **report.to_dict(),
    }
    # numpy scalars (np.int64, np.bool_) as plain JSON numbers and booleans
    text = json.dumps(payload, indent=1, default=lambda value: value.item())
    write_atomic(args.out / "realism.json", text + "\n")
    # The last real scan, and each cohort's first.
    rows = [(f"real {real[-1].name}", real[-1])]
    for cohort in cohorts:
        first = next((s for s in simulated if s.source == cohort), None)
        if first is not None:
            rows.append((f"{cohort} {first.name}", first))
    slices_figure(rows, args.out / "slices.png")
    measures_figure(report, args.out / "measures.png")
    print(f"\nwrote {args.out}/realism.json, slices.png, measures.png")
    return 1 if report.failing else 0


if __name__ == "__main__":
    sys.exit(main())
