"""``python -m benchmark.data``: check a dataset folder, or build one with the trial simulator.

    python -m benchmark.data validate ROOT [--cohorts pembro_rt,nivorad] [--cache-dir DIR]
    python -m benchmark.data simulate --profile default [--seed N] [--workers N] OUT
    python -m benchmark.data import-dicom SRC --manifest MANIFEST.csv --clinical CLINICAL.csv OUT
    python -m benchmark.data export-dicom ROOT OUT [--cohorts pembro_rt,...]

``validate`` prints every problem, one per line, then a summary line; it exits 1 when there is
any problem and 0 when the dataset is valid. ``import-dicom`` prints every problem and exits 1
(writing nothing) when the DICOM cannot be imported as it is (docs/dicom.md). The
simulator's calibration against the study is ``python -m benchmark.calibration``: it runs the
simulator and reads the leaderboard, which sit above the data.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmark.api.cohort import COHORTS


def _cohorts(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in COHORTS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown cohort(s) {', '.join(unknown) or '(none given)'}; "
            f"expected a comma-separated subset of {','.join(COHORTS)}"
        )
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.data",
        description="Check a dataset folder in the cohort layout, or simulate one.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check a dataset folder; print every problem; exit 1 if there is any",
        description="Check ROOT/<cohort>/{patients.csv, lesions.csv, images/, masks/}: columns, "
        "ids, values, censoring, image/mask geometry and labels, NIfTI headers, voxel values "
        "(finite, in HU), lesions too small for radiomics, duplicate scans. Reads every voxel. "
        "Prints every problem, one per line, then a summary with the dataset fingerprint.",
    )
    validate.add_argument("root", type=Path, metavar="ROOT", help="the dataset folder")
    validate.add_argument(
        "--cohorts",
        type=_cohorts,
        default=COHORTS,
        help=f"comma-separated cohorts to check (default: {','.join(COHORTS)})",
    )
    validate.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="keep per-file results here, so that a second run reads only changed files",
    )
    validate.add_argument("--workers", type=int, default=None, help="reader threads (default 4)")
    validate.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )

    simulate = commands.add_parser(
        "simulate",
        help="write the simulated trial cohorts in the cohort layout",
        description="Write the three simulated cohorts (with their truth) under OUT, then "
        "validate them.",
    )
    simulate.add_argument("out", type=Path, metavar="OUT", help="the folder to write")
    simulate.add_argument("--profile", default="default", help="simulator profile (conf/data/)")
    simulate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    simulate.add_argument("--workers", type=int, default=None, help="worker processes")
    simulate.add_argument(
        "--no-validate",
        dest="check",
        action="store_false",
        help="skip validating what was written",
    )
    _dicom_parsers(commands)
    return parser


def _dicom_parsers(commands) -> None:
    importer = commands.add_parser(
        "import-dicom",
        help="DICOM CT with RTSTRUCT or SEG lesions, plus a clinical table, into the layout",
        description="Read each patient's CT series and segmentation named in MANIFEST (one row "
        "per lesion: cohort, patient_id, ct_series_uid, segmentation, roi, lesion_id, site, "
        "irradiated, pd) and the clinical table (the layout's patient columns), check them, and "
        "write the cohort layout to OUT, all or nothing. Prints every problem and exits 1 when "
        "any patient cannot be imported.",
    )
    importer.add_argument("src", type=Path, metavar="SRC", help="folder holding the DICOM files")
    importer.add_argument("out", type=Path, metavar="OUT", help="the layout folder to write")
    importer.add_argument("--manifest", type=Path, required=True, help="the lesion manifest CSV")
    importer.add_argument(
        "--clinical", type=Path, required=True, help="one row per patient: the patient columns"
    )
    importer.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bars"
    )
    exporter = commands.add_parser(
        "export-dicom",
        help="write layout cohorts as DICOM CT series with SEG, RTSTRUCT and manifests",
        description="Write each patient of ROOT's cohorts as a DICOM CT series, a SEG and an "
        "RTSTRUCT (one segment / ROI per lesion), with import manifests and a clinical table.",
    )
    exporter.add_argument("root", type=Path, metavar="ROOT", help="a folder in the layout")
    exporter.add_argument("out", type=Path, metavar="OUT", help="the DICOM folder to write")
    exporter.add_argument(
        "--cohorts", type=_cohorts, default=None, help="cohorts to export (default: all present)"
    )
    exporter.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bars"
    )


def _report(root: Path, cohorts: Sequence[str], **options: object) -> int:
    from benchmark.data import layout

    result = layout.scan(root, cohorts, **options)  # type: ignore[arg-type]
    for problem in result.problems:
        print(problem)
    if result.problems:
        n = len(result.problems)
        print(f"{n} problem{'' if n == 1 else 's'} in {root}")
        return 1
    counts = ", ".join(
        f"{name} {patients} patients/{lesions} lesions"
        for name, (patients, lesions) in result.counts.items()
    )
    print(f"{root} is valid: {result.fingerprint}, {counts}")
    return 0


MOVED = {"calibrate": "python -m benchmark.calibration"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in MOVED:
        print(f"`python -m benchmark.data {argv[0]}` is now `{MOVED[argv[0]]}`", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv)
    if args.command == "validate":
        progress = sys.stderr.isatty() if args.progress is None else args.progress
        return _report(
            args.root,
            args.cohorts,
            progress=progress,
            cache_dir=args.cache_dir,
            workers=args.workers,
        )
    if args.command == "simulate":
        from benchmark.data.simulator import simulate

        options = {} if args.workers is None else {"workers": args.workers}
        simulate(args.profile, args.seed, Path(args.out), **options)
        print(f"wrote profile {args.profile!r}, seed {args.seed}, to {args.out}")
        if not args.check:
            return 0
        return _report(Path(args.out), COHORTS, progress=sys.stderr.isatty())
    if args.command == "import-dicom":
        from benchmark.data.dicom import DicomImportError, import_dicom

        progress = sys.stderr.isatty() if args.progress is None else args.progress
        try:
            report = import_dicom(
                args.src, args.manifest, args.clinical, args.out, progress=progress
            )
        except DicomImportError as err:
            print(err)
            return 1
        counts = ", ".join(f"{c} {p} patients/{n} lesions" for c, (p, n) in report.counts.items())
        print(f"wrote {report.out}: {report.fingerprint}, {counts}")
        return 0
    if args.command == "export-dicom":
        from benchmark.data.dicom import export_dicom

        progress = sys.stderr.isatty() if args.progress is None else args.progress
        exported = export_dicom(args.root, args.out, cohorts=args.cohorts, progress=progress)
        counts = ", ".join(f"{c} {p} patients/{n} lesions" for c, (p, n) in exported.counts.items())
        print(f"wrote {exported.out}: {counts}; manifests manifest_seg.csv, manifest_rtstruct.csv")
        return 0
    raise AssertionError(args.command)  # argparse allows no other


if __name__ == "__main__":
    sys.exit(main())
