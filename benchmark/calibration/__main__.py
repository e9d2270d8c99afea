"""``python -m benchmark.calibration``: each simulator calibration target beside the study's
figure and ours (README, "What the simulator encodes"); exits 1 when an evaluated target fails.

    python -m benchmark.calibration [--seeds 20] [--coverage N] [--draws N [--draw-models M ...]]
                                    [--workers N] [--out ...]

``--draws N`` runs the models of the model-based targets on N draws with data seeds picked at
random and judges those targets on the mean over the draws (on 2 cores and the default profile a
draw takes about 3 minutes for rf_radiomics, rsf and rsf_clinical, about 13 more for cnn3d);
without it the committed ``draws.json`` is read. Fewer than 10 draws are shown but judge nothing
(the one-draw records then keep their verdict).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.calibration import calibrate, render
from benchmark.calibration.draws import (
    DEFAULT_MODELS,
    MIN_DRAWS,
    RUNS_DIR,
    DrawsFailed,
    DrawsRefused,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.calibration",
        description="Each calibration target of the default cohorts beside the study's figure "
        "and ours: model-free targets from the simulator's truth over data seeds, the coverage "
        "of the bootstrap CIs, and the model-based targets on the mean over random draws "
        "(beside the committed leaderboard records, one draw). Writes calibration.json and "
        "calibration.png under --out.",
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
        "--draws",
        type=int,
        default=0,
        metavar="N",
        help=f"run --draw-models on N draws with random data seeds (N >= 2; the targets are "
        f"judged from {MIN_DRAWS} on) and write draws.json to --out; an interrupted command "
        "resumes its draws; default: read the committed draws.json",
    )
    parser.add_argument(
        "--draw-models",
        nargs="+",
        default=list(DEFAULT_MODELS),
        metavar="M",
        help=f"models run on each draw (default: {' '.join(DEFAULT_MODELS)})",
    )
    parser.add_argument(
        "--draw-runs",
        type=Path,
        default=RUNS_DIR,
        help="the draws' run folders, <this>/<profile>/data-seed<K>/<model> (default: "
        "outputs/calibration-draws)",
    )
    parser.add_argument(
        "--keep-draw-data",
        action="store_true",
        help="keep the draws' simulated datasets in the cache (about 0.8 GB each on the default "
        "profile; by default removed once the draws are done)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes for the coverage study and for the draws (one draw per process; default 1)",
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
        help="where calibration.json, calibration.png, coverage.json and draws.json go "
        "(default: %(default)s)",
    )
    parser.add_argument("--no-figure", action="store_true", help="skip calibration.png")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status: 0 every evaluated target holds, 1 one fails or a draw's run failed, 2 refused
    before running."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.draws == 1 or args.draws < 0:
        parser.error("--draws needs at least 2 draws (a spread needs two)")
    try:
        report = calibrate(
            profile=args.profile,
            seeds=range(args.seeds),
            coverage_seeds=args.coverage,
            draws=args.draws,
            draw_models=args.draw_models,
            draw_runs=args.draw_runs,
            keep_draw_data=args.keep_draw_data,
            workers=args.workers,
            results=args.results,
            out=args.out,
            figure=not args.no_figure,
            progress=sys.stderr.isatty(),
        )
    except DrawsFailed as err:
        print(f"calibration: {err}", file=sys.stderr)
        return 1
    except DrawsRefused as err:
        print(f"calibration refused: {err}", file=sys.stderr)
        return 2
    print(render(report))
    return 1 if report.failing else 0


if __name__ == "__main__":
    sys.exit(main())
