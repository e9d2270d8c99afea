"""``python -m benchmark.calibration``: each simulator calibration target beside the study's
figure and ours (README, "What the simulator encodes"); exits 1 when an evaluated target fails.

    python -m benchmark.calibration [--seeds 20] [--coverage N [--workers N]] [--out ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.calibration import calibrate, render


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.calibration",
        description="Each calibration target of the default cohorts beside the study's figure "
        "and ours: model-free targets from the simulator's truth over data seeds, the coverage "
        "of the bootstrap CIs, and the targets from the committed leaderboard records. Writes "
        "calibration.json and calibration.png under --out.",
    )
    parser.add_argument("--profile", default="default", help="simulator profile (conf/data/)")
    parser.add_argument(
        "--seeds", type=int, default=20, help="data seeds for the model-free targets (default 20)"
    )
    parser.add_argument(
        "--coverage",
        type=int,
        default=0,
        metavar="N",
        help="re-run the CI coverage study over N data seeds (minutes for 1000) and write it "
        "to --out; default: read the committed one",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes for the coverage study (default 1)"
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("leaderboard/results"),
        help="the leaderboard records (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("leaderboard/calibration"),
        help="where calibration.json, calibration.png and coverage.json go (default: %(default)s)",
    )
    parser.add_argument("--no-figure", action="store_true", help="skip calibration.png")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    report = calibrate(
        profile=args.profile,
        seeds=range(args.seeds),
        coverage_seeds=args.coverage,
        workers=args.workers,
        results=args.results,
        out=args.out,
        figure=not args.no_figure,
        progress=sys.stderr.isatty(),
    )
    print(render(report))
    return 1 if report.failing else 0


if __name__ == "__main__":
    sys.exit(main())
