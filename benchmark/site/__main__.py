"""``python -m benchmark.site evaluate|export|register``: a site board, from runs to registration.

  evaluate --dataset NAME [--models M ...] [--seeds S ...] [--out DIR] [OVERRIDE ...]
           every model (seeds 0-2) through the protocol on the site's data, e.g.
           data=folder data.root=/secure/trials; runs go to DIR (outputs/site/NAME), resumable
  export --dataset NAME OUT [--runs DIR] [--min-patients N] [--min-events N]
           the aggregate-only site record of those runs: OUT/NAME.json
  register RECORD --holder WHO --description TEXT [--root leaderboard]
           file a site record as a dataset of the leaderboard: datasets/NAME.{yaml,json}

Exit status: 0 done, 1 some run failed, 2 refused.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from benchmark.records.reading import RecordError
from benchmark.records.record_format import PROJECT_ROOT
from benchmark.site.aggregate import MIN_EVENTS, MIN_PATIENTS, load_runs, site_json, site_record
from benchmark.site.evaluate import SEEDS, SiteError, check_sandbox, evaluate, site_models, summary
from benchmark.utils.atomic import write_atomic

DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
RUN_FOLDER = re.compile(r"^(?P<model>[a-z][a-z0-9_]*)__seed(?P<seed>\d+)$")


def _dataset(name: str) -> str:
    if not DATASET_NAME.match(name):
        raise argparse.ArgumentTypeError("a dataset name is lower case: letters, digits, _")
    return name


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("a suppression threshold is at least 1")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.site",
        description=__doc__.split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ev = commands.add_parser("evaluate", help="run every model on the site's data")
    ev.add_argument("--dataset", type=_dataset, required=True)
    ev.add_argument("--models", nargs="+", metavar="M", help="only these (default: all ranked)")
    ev.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS), metavar="S")
    ev.add_argument("--out", type=Path, help="run folders (default: outputs/site/NAME)")
    ev.add_argument("overrides", nargs="*", help="Hydra overrides: data=folder data.root=PATH")
    ex = commands.add_parser("export", help="the aggregate-only site record of the runs")
    ex.add_argument("--dataset", type=_dataset, required=True)
    ex.add_argument("out", type=Path, help="folder the site record NAME.json is written to")
    ex.add_argument("--runs", type=Path, help="run folders (default: outputs/site/NAME)")
    ex.add_argument("--min-patients", type=_at_least_one, default=MIN_PATIENTS)
    ex.add_argument("--min-events", type=_at_least_one, default=MIN_EVENTS)
    rg = commands.add_parser("register", help="add a site record to the leaderboard")
    rg.add_argument("record", type=Path)
    rg.add_argument("--holder", required=True, help="who holds the data (a site, a consortium)")
    rg.add_argument("--description", required=True, help="the cohorts, in a sentence or two")
    rg.add_argument("--root", type=Path, default=PROJECT_ROOT / "leaderboard")
    return parser


def _runs_dir(given: Path | None, dataset: str) -> Path:
    return (given or PROJECT_ROOT / "outputs" / "site" / dataset).resolve()


def _evaluate(opts: argparse.Namespace) -> int:
    models = site_models(opts.models)
    mode = check_sandbox(opts.overrides)
    out = _runs_dir(opts.out, opts.dataset)
    print(
        f"site evaluation of {opts.dataset!r}: {len(models)} models x seeds "
        f"{', '.join(map(str, opts.seeds))}, sandbox {mode}, runs in {out}",
        flush=True,
    )
    clock = time.perf_counter()
    results = evaluate(models, opts.seeds, opts.overrides, out)
    print(f"\n{summary(results)}\n(wall {time.perf_counter() - clock:.0f} s)")
    if any(r.status == "failed" for r in results):
        print("re-run the same command to resume; finished runs are reused", file=sys.stderr)
        return 1
    print(f"now: python -m benchmark.site export --dataset {opts.dataset} OUT")
    return 0


def unfinished(runs_dir: Path) -> dict[str, list[int]]:
    """model -> seeds whose run folder holds no record (the run failed or was stopped)."""
    out: dict[str, list[int]] = {}
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        found = RUN_FOLDER.match(folder.name)
        if found and not (folder / "result.json").is_file():
            out.setdefault(found["model"], []).append(int(found["seed"]))
    return out


def _export(opts: argparse.Namespace) -> int:
    runs_dir = _runs_dir(opts.runs, opts.dataset)
    if not runs_dir.is_dir():
        raise SiteError(f"{runs_dir}: no such folder (python -m benchmark.site evaluate first)")
    runs = load_runs(runs_dir)
    failed = unfinished(runs_dir)
    record = site_record(
        opts.dataset,
        runs,
        failed,
        min_patients=opts.min_patients,
        min_events=opts.min_events,
    )
    target = opts.out / f"{opts.dataset}.json"
    opts.out.mkdir(parents=True, exist_ok=True)
    write_atomic(target, site_json(record))
    shown = sum(not s["suppressed"] for s in record["sections"])
    print(
        f"wrote {target}: {len(record['models'])} models, {len(runs)} runs, "
        f"{shown}/{len(record['sections'])} (cohort, task) cells shown, the rest suppressed "
        f"(< {opts.min_patients} patients or < {opts.min_events} events or non-events)"
    )
    if failed:
        print(f"runs that did not finish (listed in the record): {failed}", file=sys.stderr)
    return 0


def _register(opts: argparse.Namespace) -> int:
    from benchmark.leaderboard.datasets import register

    yaml_path = register(opts.record, opts.holder, opts.description, opts.root)
    print(f"registered {yaml_path}; now rebuild the board: python -m benchmark.leaderboard")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Hydra overrides (key=value) may follow any option (`--seeds 0 1 data=folder`): they are
    # taken out first, so that no option's list swallows them.
    overrides = []
    if argv[:1] == ["evaluate"]:
        overrides = [a for a in argv[1:] if "=" in a and not a.startswith("-")]
    opts = _parser().parse_args([a for a in argv if a not in overrides])
    if opts.command == "evaluate":
        opts.overrides = overrides
    command = {"evaluate": _evaluate, "export": _export, "register": _register}[opts.command]
    try:
        return command(opts)
    except (SiteError, RecordError) as err:
        print(f"site {opts.command} refused: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
