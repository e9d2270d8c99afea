"""``python -m benchmark.leaderboard [build|submit RUN_DIR...|oracle|check|site OUT|verify|...]``.

  build (default)  regenerate leaderboard/README.md and leaderboard/figures/ from the records
  site OUT         write the board as a static web site into OUT (replacing a site built there)
  submit RUN_DIR   validate a run folder (result.json + predictions.csv) and add it to
                   leaderboard/results/ as <model>__seed<k>.json (+ .predictions.csv.gz):
                   a valid model card, a clean commit holding the model's files, one of the
                   seeds its board.yaml declares (a model without all of them is shown, not
                   ranked);
                   --replace to replace a different record of the same model and seed
  oracle           write leaderboard/results/oracle.predictions.csv.gz, the simulator truth's
                   predictions (submit does when it is missing or stale)
  check            exit 1 when the committed README differs from a regeneration (CI)
  schema NAME      print a JSON Schema (result, model_card, throughput, fresh, site)
  fresh --data-seeds K [K ...] [--models M ...]
                   every ranked model on fresh draws of the profile (data.seed=K), aggregates
                   to leaderboard/fresh/<model>.json; `fresh --help` for its options
  verify [RECORD]  re-run records in fresh processes; they must reproduce (verify --help)

Exit status: 0 done, 1 README out of date, 2 a record or run was refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.leaderboard import verify
from benchmark.leaderboard.board import LEADERBOARD_DIR, Paths, load_board
from benchmark.leaderboard.build import check, regenerate
from benchmark.leaderboard.checks import load_seeds, missing_seeds
from benchmark.leaderboard.store import RECORD_NAME, LeaderboardError, submit
from benchmark.records.catalog import by_name
from benchmark.records.reading import RecordError, Reference
from benchmark.records.schemas import SCHEMAS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.leaderboard",
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="build",
        choices=["build", "submit", "oracle", "check", "site", "verify", "schema"],
    )
    parser.add_argument(
        "args", nargs="*", help="RUN_DIR... for submit, OUT for site, NAME for schema"
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=LEADERBOARD_DIR,
        help="leaderboard folder holding results/, throughput/, figures/, README.md "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--data",
        default="default",
        help="the conf/data option whose records this leaderboard accepts (default: %(default)s)",
    )
    parser.add_argument("--no-figures", action="store_true", help="build: skip the figures")
    parser.add_argument(
        "--replace",
        action="store_true",
        help="submit: replace a record of the same model and seed that differs",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="submit: accept runs of uncommitted code, on a scratch board only (refused for "
        f"{LEADERBOARD_DIR.name}/)",
    )
    return parser


def incomplete_notes(results: Path, required: tuple[int, ...]) -> list[str]:
    """One line per model on the board without every seed: shown, not ranked, until they are."""
    seeds: dict[str, set[int]] = {}
    for path in results.glob("*.json"):
        found = RECORD_NAME.match(path.name)
        if found:
            seeds.setdefault(found["model"], set()).add(int(found["seed"]))
    notes = []
    for model, have in sorted(seeds.items()):
        missing = missing_seeds(have, required)
        if missing:
            notes.append(
                f"{model}: seed(s) {', '.join(map(str, missing))} still missing: the board shows "
                "it as incomplete, without a rank, until they are submitted"
            )
    return notes


def _oracle(paths: Paths, reference: Reference) -> int:
    """Write the oracle's predictions from the board's data, then load the board: the file must
    agree with the records (a board of other data is refused, naming the difference)."""
    from benchmark.leaderboard.oracle import write_oracle
    from benchmark.leaderboard.rescore import board_data

    try:
        data = board_data(reference)
    except (OSError, ValueError) as err:  # a malformed cohort is a ValueError (CohortError)
        print(f"cannot load the board's data: {err}", file=sys.stderr)
        return 2
    written = write_oracle(paths.results, data, reference.protocol)
    if written is None and not paths.oracle.is_file():
        print(f"{reference.data_name}: data without a simulator truth have no oracle")
        return 0
    load_board(paths, reference, ranked=False)  # LeaderboardError: refused with the difference
    state = "wrote" if written else "up to date:"
    print(f"{state} {paths.oracle} (data {data.dataset.fingerprint[:19]}…)")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["fresh"]:  # options of its own: benchmark/leaderboard/fresh.py
        from benchmark.leaderboard.fresh import main as fresh_main

        return fresh_main(argv[1:])
    if argv[:1] == ["verify"]:
        return verify.main(argv[1:])
    opts = _parser().parse_intermixed_args(argv)  # flags before or after the RUN_DIRs
    if opts.command == "schema":
        if len(opts.args) != 1 or opts.args[0] not in SCHEMAS:
            print(f"schema NAME, NAME one of {sorted(SCHEMAS)}", file=sys.stderr)
            return 2
        print(json.dumps(SCHEMAS[opts.args[0]], indent=2))
        return 0
    paths = Paths.under(opts.root)
    reference = Reference.from_conf(opts.data)
    try:
        if opts.command == "submit":
            if not opts.args:
                print("submit needs at least one RUN_DIR", file=sys.stderr)
                return 2
            try:
                models = by_name()
            except ValueError as err:  # two configs define one model name
                print(err, file=sys.stderr)
                return 2
            if opts.allow_dirty and opts.root.resolve() == LEADERBOARD_DIR.resolve():
                print(
                    f"--allow-dirty is for a scratch board (--root), never {LEADERBOARD_DIR}: "
                    "commit the model and re-run it",
                    file=sys.stderr,
                )
                return 2
            seeds, problems = load_seeds(paths.declaration)
            if problems:
                raise LeaderboardError(problems)
            refused = 0
            for run_dir in opts.args:
                try:
                    target = submit(
                        Path(run_dir),
                        paths.results,
                        reference,
                        models,
                        replace=opts.replace,
                        allow_dirty=opts.allow_dirty,
                        seeds=seeds,
                    )
                except RecordError as err:
                    print(err, file=sys.stderr)
                    refused += 1
                    continue
                print(f"submitted {run_dir} -> {target}")
            for note in incomplete_notes(paths.results, seeds):
                print(note)
            if not refused:
                print("now rebuild the table: python -m benchmark.leaderboard")
            return 2 if refused else 0
        if opts.command == "oracle":
            return _oracle(paths, reference)
        if opts.command == "site":
            if len(opts.args) != 1:
                print("site OUT: one output folder", file=sys.stderr)
                return 2
            from benchmark.leaderboard.web.build import build_site

            try:
                built = build_site(paths, reference, Path(opts.args[0]))
            except FileExistsError as err:
                print(err, file=sys.stderr)
                return 2
            print(f"wrote {opts.args[0]} ({built['files']} files, {built['bytes']:,} bytes)")
            return 0
        if opts.command == "check":
            diff = check(paths, reference)
            if diff:
                sys.stdout.writelines(diff[:200])
                print(
                    f"\n{paths.readme} is out of date: run `python -m benchmark.leaderboard` "
                    "and commit the result",
                    file=sys.stderr,
                )
                return 1
            print(f"{paths.readme} is up to date with {paths.results}")
            return 0
        board = regenerate(paths, reference, figures=not opts.no_figures)
    except LeaderboardError as err:
        print(f"leaderboard refused: {err}", file=sys.stderr)
        return 2
    print(f"wrote {paths.readme} ({len(board.entries)} records, {len(board.models)} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
