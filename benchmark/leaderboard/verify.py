"""``python -m benchmark.leaderboard verify [RECORD ...] [--changed-since REF] [--sample N]``.

Every board record is re-run before it counts. Each selected record runs again in a fresh
process (:mod:`.rerun`: the harness's own config of its model and seed, which the record's stored
config must equal), and its predictions and its record must be the committed ones:

- bit-identical on the CPU type the record was made on (``provenance.hardware`` key,
  :mod:`benchmark.records.cpu`);
- a classical model on another CPU type: within rounding (1e-9);
- a deep (torch) model on another CPU type, where its training rounds differently: re-trained,
  its outcome columns identical and each primary metric within the model's seed-to-seed
  tolerance (:mod:`.seed_tolerance`);
- a GPU record on that GPU: within the throughput accuracy gate's tolerance for its precision
  (fp32 1e-4, bf16 and fp16 1e-2: ``benchmark.throughput.settings.DEFAULT_TOLERANCE``).

A record marked in ``leaderboard/unverified.yaml`` (the board shows it unverified, without a
rank) is not re-run; its outcome columns and metrics are checked against the harness's own data
and scoring. A record nothing here can re-run (a GPU record without that GPU) must be marked.
A failure names the record and the first differing id (or metric).

RECORD is a path to ``<root>/results/<model>__seed<k>.json`` or its stem; none (and no
``--changed-since``) means every record. Exit status: 0 every record verified (or marked
unverified), 1 a record failed, 2 input refused (unknown record, unreadable record, unknown REF).
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.leaderboard.board import LEADERBOARD_DIR, Paths
from benchmark.leaderboard.checks import MARKS, device_type, is_deep, load_marks
from benchmark.leaderboard.differences import (
    first_prediction_difference,
    first_record_difference,
    max_prediction_difference,
)
from benchmark.leaderboard.predictions import PREDICTIONS_SUFFIX, predictions_path, read_predictions
from benchmark.leaderboard.rerun import ConfigDrift, rerun_config
from benchmark.leaderboard.rescore import cache_dir, rescore_problems
from benchmark.leaderboard.seed_tolerance import (
    deep_tolerance,
    first_outside,
    largest_difference,
    seed_spread,
)
from benchmark.records.cpu import numerics_key, same_numerics
from benchmark.records.reading import RecordError, Reference, load_record
from benchmark.records.record_format import PROJECT_ROOT
from benchmark.runner.run_folder import PREDICTIONS, RECORD

VERIFIED = "verified"
RETRAINED = "re-trained"  # a deep record on another CPU type: within its seed tolerance
MARKED = "unverified (marked)"
FAILED = "FAILED"
STATUSES = (VERIFIED, RETRAINED, MARKED, FAILED)
LOG_TAIL = 15
# A classical model's numbers on another CPU type: rounding only (measured: at most 1e-15).
ROUNDING = 1e-9


class Refused(Exception):
    """The input names no record this command can check (exit status 2)."""


@dataclass(frozen=True)
class Outcome:
    record: str
    status: str
    seconds: float
    detail: str = ""
    max_diff: float | None = None  # max |prediction - committed| of a re-run
    # A deep record re-trained on another CPU type, judged once its model's spread is known:
    model: str = ""
    committed: Mapping[str, Any] | None = None
    retrained: Mapping[str, Any] | None = None


# --------------------------------------------------------------------------------------------
# Which records


def named_records(results_dir: Path, names: Sequence[str]) -> list[Path]:
    """RECORD arguments (paths or stems) as record paths; :class:`Refused` for unknown ones."""
    found, unknown = [], []
    for name in names:
        path = Path(name)
        if not path.is_file():
            stem = path.name.removesuffix(".json").removesuffix(PREDICTIONS_SUFFIX)
            path = results_dir / (stem + ".json")
        if path.is_file() and path.name.endswith(".json"):
            found.append(path)
        else:
            unknown.append(name)
    if unknown:
        raise Refused(f"no such record in {results_dir}: {', '.join(unknown)}")
    return found


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True
    ).stdout


def changed_records(results_dir: Path, ref: str) -> list[Path]:
    """Records whose ``.json`` or predictions differ between ``ref`` and the working tree (new
    untracked ones included; deleted ones have nothing to verify)."""
    results_dir = Path(results_dir).resolve()
    try:
        top = Path(_git(results_dir, "rev-parse", "--show-toplevel").strip())
    except (OSError, subprocess.CalledProcessError):
        raise Refused(f"--changed-since: {results_dir} is not in a git checkout") from None
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except subprocess.CalledProcessError:
        raise Refused(
            f"--changed-since {ref}: no such commit in this clone (a shallow clone lacks "
            "history: fetch more of it, or name the records)"
        ) from None
    changed = _git(top, "diff", "--name-only", ref, "--", str(results_dir)).split()
    changed += _git(
        top, "ls-files", "--others", "--exclude-standard", "--full-name", "--", str(results_dir)
    ).split()
    records = set(_remarked(top, results_dir, ref))
    for name in changed:
        path = top / name
        if path.name.endswith(PREDICTIONS_SUFFIX):
            path = path.with_name(path.name.removesuffix(PREDICTIONS_SUFFIX) + ".json")
        if path.name.endswith(".json") and path.is_file():
            records.add(path)
    return sorted(records)


def _remarked(top: Path, results_dir: Path, ref: str) -> list[Path]:
    """Records whose mark in ``unverified.yaml`` changed since ``ref``: a record that loses its
    mark must be re-run before it takes a rank."""
    import yaml

    marks = results_dir.parent / MARKS
    name = marks.relative_to(top).as_posix()
    try:
        before = yaml.safe_load(_git(top, "show", f"{ref}:{name}")) or {}
    except (subprocess.CalledProcessError, yaml.YAMLError):
        before = {}
    before = before if isinstance(before, dict) else {}
    after, _ = load_marks(marks)
    stems = {k for k in {*before, *after} if before.get(k) != after.get(k)}
    return [
        results_dir / f"{stem}.json" for stem in stems if (results_dir / f"{stem}.json").is_file()
    ]


@dataclass(frozen=True)
class Machine:
    """This machine, as a record's provenance describes one."""

    hardware: Mapping[str, Any]
    gpu: str | None

    @classmethod
    def here(cls) -> Machine:
        from benchmark.records.record_format import hardware

        info = hardware()
        return cls(info, info.get("gpu"))


def not_rerunnable(record: Mapping[str, Any], machine: Machine) -> str | None:
    """Why this machine cannot re-run ``record`` (None: it can): a GPU record without that GPU."""
    if device_type(record["provenance"]["config"]) == "cpu":
        return None
    theirs = record["provenance"]["hardware"].get("gpu", "GPU")
    if machine.gpu is None:
        return f"a {theirs} record; this machine has no GPU"
    if theirs != machine.gpu:
        return f"a {theirs} record; this machine has a {machine.gpu}"
    return None


def retrains(record: Mapping[str, Any], machine: Machine) -> bool:
    """A deep CPU record made on another CPU type: compared within its seed tolerance."""
    config, theirs = record["provenance"]["config"], record["provenance"]["hardware"]
    return (
        device_type(config) == "cpu"
        and is_deep(config)
        and not same_numerics(theirs, machine.hardware)
    )


# --------------------------------------------------------------------------------------------
# One record


def tolerance(record: Mapping[str, Any], machine: Machine) -> float:
    """How far a re-run's numbers may be from the record's.

    0 (bit-identical) on the CPU type the record was made on; a classical model on another CPU
    type :data:`ROUNDING` (numpy, BLAS and OpenMP reductions take other SIMD paths there, which
    moves the last bits); on a GPU the accuracy gate's tolerance for the record's training
    precision (``train.amp``: off = fp32).
    """
    config = record["provenance"]["config"]
    if device_type(config) == "cpu":
        return (
            0.0 if same_numerics(record["provenance"]["hardware"], machine.hardware) else ROUNDING
        )
    from benchmark.throughput.settings import DEFAULT_TOLERANCE

    train = config["model"]["submission"].get("train") or {}
    amp = str(train.get("amp") or "off")
    return DEFAULT_TOLERANCE.get(amp, DEFAULT_TOLERANCE["fp32"])


def _package_changes(record: Mapping[str, Any], rerun: Mapping[str, Any]) -> str:
    ours, theirs = record["provenance"]["packages"], rerun["provenance"]["packages"]
    changed = [f"{k} {ours[k]} -> {theirs.get(k)}" for k in ours if ours[k] != theirs.get(k)]
    return f" (packages differ from the record's: {', '.join(changed)})" if changed else ""


def _log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
    return "\n    " + "\n    ".join(lines)


def rerun(
    path: Path, out_dir: Path, log: Path, tick: Callable[[float], None], data: str = "default"
) -> int:
    """Run ``path``'s record again into ``out_dir`` in a fresh interpreter; its exit status."""
    command = [sys.executable, "-m", "benchmark.leaderboard.rerun", str(path), str(out_dir)]
    clock = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*command, str(cache_dir()), data],
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        while True:
            try:
                return proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                tick(time.perf_counter() - clock)


def verify_record(
    path: Path,
    machine: Machine,
    workdir: Path,
    tick: Callable[[float], None] = lambda s: None,
    data: str = "default",
    marks: Mapping[str, str] | None = None,
) -> Outcome:
    """Re-run one record and compare; never raises for a record that does not reproduce. A deep
    record re-trained on another CPU type comes back undecided (:func:`judge_retrained`)."""
    name = path.name.removesuffix(".json")
    record = load_record(path)
    committed = read_predictions(predictions_path(path))
    marks = marks or {}
    reason = not_rerunnable(record, machine)
    if name in marks:  # unranked on the board: its figures are still the harness's to score
        return _marked(name, record, committed, reason, data, marks[name])
    if reason:
        return Outcome(
            name,
            FAILED,
            0.0,
            f"{reason}: nothing here can re-run it, and it is not marked in "
            f"leaderboard/{MARKS} (record stem: reason), which shows it unverified and unranked",
        )
    try:  # the harness composes the run; the record's own config is only compared with it
        rerun_config(record, cache_dir(), data)
    except ConfigDrift as err:
        return Outcome(name, FAILED, 0.0, str(err))
    clock = time.perf_counter()
    out_dir, log = workdir / name, workdir / f"{name}.log"
    code = rerun(path, out_dir, log, tick, data)
    seconds = time.perf_counter() - clock
    if code != 0:
        return Outcome(name, FAILED, seconds, f"the re-run exited {code}:{_log_tail(log)}")
    new = load_record(out_dir / RECORD)
    fresh = read_predictions(out_dir / PREDICTIONS)
    largest = max_prediction_difference(committed, fresh)
    if retrains(record, machine):
        found = first_prediction_difference(committed, fresh, math.inf)  # outcome columns only
        if found is not None:
            return Outcome(name, FAILED, seconds, f"first difference: {found}", largest)
        return Outcome(name, "", seconds, "", largest, record["model"], record, new)
    allowed = tolerance(record, machine)
    found = first_prediction_difference(committed, fresh, allowed)
    if found is None:
        found = first_record_difference(record, new, allowed)
    if found is None:
        note = (
            "" if not largest else f"within {allowed:g} (max |prediction difference| {largest:.1e})"
        )
        return Outcome(name, VERIFIED, seconds, note, largest)
    detail = f"first difference: {found}{_package_changes(record, new)}"
    return Outcome(name, FAILED, seconds, detail, largest)


def _marked(
    name: str,
    record: Mapping[str, Any],
    predictions: Any,
    reason: str | None,
    data: str,
    mark: str,
) -> Outcome:
    """A record marked unverified: not re-run (the board shows it without a rank), but its
    outcome columns and metrics must still be the harness's."""
    problems = rescore_problems(record, predictions, Reference.from_conf(data))
    if problems:
        return Outcome(name, FAILED, 0.0, "; ".join(problems))
    return Outcome(name, MARKED, 0.0, f"{reason + '; ' if reason else ''}marked: {mark}")


def judge_retrained(outcomes: Sequence[Outcome], results_dir: Path) -> list[Outcome]:
    """Decide the re-trained deep records: each primary metric within its model's seed tolerance
    (:mod:`.seed_tolerance`), the spread measured on the re-trained seeds when there are two or
    more, else on the model's committed records."""
    pending: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.retrained is not None:
            pending.setdefault(outcome.model, []).append(outcome)
    limits = {}
    for model, found in pending.items():
        retrained = [o.retrained for o in found]
        spread = seed_spread(retrained) if len(retrained) >= 2 else None
        source = "re-trained seeds"
        if spread is None:
            committed = [load_record(p) for p in sorted(results_dir.glob(f"{model}__seed*.json"))]
            spread, source = seed_spread(committed), "committed seeds"
        limits[model] = (deep_tolerance(spread), spread, source)
    judged = []
    for outcome in outcomes:
        if outcome.retrained is None:
            judged.append(outcome)
            continue
        allowed, spread, source = limits[outcome.model]
        found = first_outside(outcome.committed, outcome.retrained, allowed)
        basis = f"seed sd {spread:.3f} of the {source}" if spread is not None else "no seed spread"
        status = FAILED if found else RETRAINED
        largest = largest_difference(outcome.committed, outcome.retrained)
        detail = found or (
            f"primary metrics within {allowed:.3f} (largest difference {largest:.3f}; {basis}; "
            "another CPU type)"
        )
        judged.append(Outcome(outcome.record, status, outcome.seconds, detail, outcome.max_diff))
    return judged


# --------------------------------------------------------------------------------------------
# The command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.leaderboard verify",
        description="Re-run board records in fresh processes; each must reproduce.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    parser.add_argument("records", nargs="*", metavar="RECORD", help="path or stem of a record")
    parser.add_argument("--changed-since", metavar="REF", help="records changed since git REF")
    parser.add_argument("--only", choices=["classical", "deep"], help="only these models' records")
    parser.add_argument("--sample", type=int, metavar="N", help="verify N of the selected records")
    parser.add_argument("--sample-seed", type=int, default=0, metavar="S")
    parser.add_argument("--list", action="store_true", help="print the selected records; run none")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="re-run N records at a time (a deep run trains on one thread: 2 on 2 cores)",
    )
    parser.add_argument("--root", type=Path, default=LEADERBOARD_DIR, help="leaderboard folder")
    parser.add_argument(
        "--data", default="default", help="the conf/data option of the board's records"
    )
    return parser


def select(opts: argparse.Namespace) -> list[Path]:
    """The records the options name, in file-name order; :class:`Refused` for bad input."""
    results = Paths.under(opts.root).results
    chosen = set(named_records(results, opts.records))
    if opts.changed_since:
        chosen |= set(changed_records(results, opts.changed_since))
    elif not opts.records:
        chosen = set(results.glob("*.json"))
    problems = []
    for path in sorted(chosen):
        try:
            record = load_record(path)
            read_predictions(predictions_path(path))
        except RecordError as err:
            problems.append(str(err))
            continue
        deep = is_deep(record["provenance"]["config"])
        if opts.only and opts.only != ("deep" if deep else "classical"):
            chosen.discard(path)
    if problems:
        raise Refused("\n".join(problems))
    paths = sorted(chosen)
    if opts.sample is not None:
        if opts.sample < 0:
            raise Refused(f"--sample {opts.sample}: N must be >= 0")
        paths = sorted(random.Random(opts.sample_seed).sample(paths, min(opts.sample, len(paths))))
    return paths


def summary(outcomes: Sequence[Outcome]) -> str:
    width = max([len("record"), *(len(o.record) for o in outcomes)])
    lines = [
        f"{'record':<{width}}  {'status':<19}  {'seconds':>8}  {'max |dp|':>8}",
        "-" * (width + 41),
    ]
    for o in outcomes:
        diff = "-" if o.max_diff is None else f"{o.max_diff:.1e}"
        lines.append(f"{o.record:<{width}}  {o.status:<19}  {o.seconds:>8.1f}  {diff:>8}")
    details = [f"{o.record}: {o.status}: {o.detail}" for o in outcomes if o.detail]
    counts = {s: sum(o.status == s for o in outcomes) for s in STATUSES}
    totals = ", ".join(f"{n} {s}" for s, n in counts.items())
    return "\n".join([*lines, "", *details, *([""] if details else []), totals])


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
    if opts.jobs < 1:
        print(f"verify refused: --jobs {opts.jobs}: N must be >= 1", file=sys.stderr)
        return 2
    try:
        paths = select(opts)
    except Refused as err:
        print(f"verify refused: {err}", file=sys.stderr)
        return 2
    if opts.list:
        print("\n".join(str(p) for p in paths))
        return 0
    if not paths:
        print("verify: no record selected")
        return 0
    from tqdm import tqdm

    machine = Machine.here()
    paths_ = Paths.under(opts.root)
    marks, problems = load_marks(paths_.marks)
    if problems:
        print(f"verify refused: {'; '.join(problems)}", file=sys.stderr)
        return 2
    print(
        f"verify: {len(paths)} record(s) on {numerics_key(machine.hardware)}, "
        f"{opts.jobs} at a time",
        file=sys.stderr,
    )
    with (
        tempfile.TemporaryDirectory(prefix="verify-") as tmp,
        tqdm(total=len(paths), unit="record", file=sys.stderr, disable=None) as bar,
        ThreadPoolExecutor(max_workers=opts.jobs) as pool,
    ):

        def one(i: int, path: Path) -> Outcome:
            name = path.name.removesuffix(".json")
            tqdm.write(f"[{i}/{len(paths)}] {name} ...", file=sys.stderr)
            tick = (lambda s: bar.set_postfix_str(f"{name} {s:.0f} s")) if opts.jobs == 1 else None
            outcome = verify_record(
                path, machine, Path(tmp), tick or (lambda s: None), opts.data, marks
            )
            status = outcome.status or "re-trained, judged at the end"
            tqdm.write(
                f"[{i}/{len(paths)}] {name}: {status} ({outcome.seconds:.1f} s)", file=sys.stderr
            )
            bar.update(1)
            return outcome

        futures = [pool.submit(one, i, path) for i, path in enumerate(paths, 1)]
        outcomes = [future.result() for future in futures]
    outcomes = judge_retrained(outcomes, paths_.results)
    print(summary(outcomes))
    return 1 if any(o.status == FAILED for o in outcomes) else 0


__all__ = [
    "Outcome",
    "changed_records",
    "judge_retrained",
    "main",
    "not_rerunnable",
    "retrains",
    "verify_record",
]
