"""``python -m benchmark.leaderboard verify [RECORD ...] [--changed-since REF] [--sample N]``.

Every board record is re-run before it counts. Each selected record runs again in a fresh
process (:mod:`.rerun`: its model, seed and resolved config, in a temporary folder), and its
predictions and its record must be the committed ones: bit-identical on the CPU type the record
was made on; within rounding (1e-9) for a classical model on another CPU type; on a GPU within
the throughput accuracy gate's tolerance for the record's precision (fp32 1e-4, bf16 and fp16
1e-2: ``benchmark.throughput.settings.DEFAULT_TOLERANCE``), since GPU kernels are not bitwise
reproducible. A failure names the record and the first differing id (or metric).

Some records cannot be checked on this machine, and say so instead of passing or failing: a GPU
record without that GPU here, and a deep (torch) model's CPU record made on another CPU type
(``provenance.hardware`` key, :mod:`benchmark.cpu`), whose training rounds differently there.

RECORD is a path to ``<root>/results/<model>__seed<k>.json`` or its stem; none (and no
``--changed-since``) means every record. Exit status: 0 every record verified or not verifiable
here, 1 a record failed, 2 input refused (unknown record, unreadable record, unknown REF).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.cpu import numerics_key, same_numerics
from benchmark.leaderboard.board import LEADERBOARD_DIR, Paths
from benchmark.leaderboard.differences import (
    first_prediction_difference,
    first_record_difference,
    max_prediction_difference,
)
from benchmark.leaderboard.predictions import PREDICTIONS_SUFFIX, predictions_path, read_predictions
from benchmark.record_format import PROJECT_ROOT
from benchmark.records import RecordError, load_record
from benchmark.run_folder import PREDICTIONS, RECORD

VERIFIED = "verified"
FAILED = "FAILED"
NOT_VERIFIABLE = "not verifiable here"
# Module prefixes of a deep model's config targets (besides a `train` node).
DEEP_TARGETS = ("benchmark.training.", "torch.", "monai.", "timm.")
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
    records = set()
    for name in changed:
        path = top / name
        if path.name.endswith(PREDICTIONS_SUFFIX):
            path = path.with_name(path.name.removesuffix(PREDICTIONS_SUFFIX) + ".json")
        if path.name.endswith(".json") and path.is_file():
            records.add(path)
    return sorted(records)


def is_deep(config: Mapping[str, Any]) -> bool:
    """A model that trains a torch network: its config has a ``train`` node or a torch, MONAI or
    timm target (read from the config; the submission is never built here)."""

    def walk(node: Any) -> bool:
        if isinstance(node, Mapping):
            if "train" in node:
                return True
            target = node.get("_target_")
            if isinstance(target, str) and target.startswith(DEEP_TARGETS):
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    return walk(config["model"]["submission"])


def device_type(config: Mapping[str, Any]) -> str:
    return str((config.get("hardware") or {}).get("device", "cpu")).split(":")[0]


@dataclass(frozen=True)
class Machine:
    """This machine, as a record's provenance describes one."""

    hardware: Mapping[str, Any]
    gpu: str | None

    @classmethod
    def here(cls) -> Machine:
        from benchmark.record_format import hardware

        info = hardware()
        return cls(info, info.get("gpu"))


def not_verifiable(record: Mapping[str, Any], machine: Machine) -> str | None:
    """Why this machine cannot check ``record`` (None: it can)."""
    config = record["provenance"]["config"]
    theirs = record["provenance"]["hardware"]
    if device_type(config) != "cpu":
        if machine.gpu is None:
            return f"a {theirs.get('gpu', 'GPU')} record; this machine has no GPU"
        if theirs.get("gpu") != machine.gpu:
            return (
                f"not verifiable on this hardware (record: {theirs.get('gpu')}, "
                f"here: {machine.gpu})"
            )
        return None
    if is_deep(config) and not same_numerics(theirs, machine.hardware):
        return (
            f"not verifiable on this hardware (record: {numerics_key(theirs)}, "
            f"here: {numerics_key(machine.hardware)})"
        )
    return None


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


def cache_dir() -> Path:
    """Where re-runs read and fill the caches: as ``conf/paths/default.yaml`` says."""
    return Path(os.environ.get("NSCLC_IO_BENCH_CACHE") or PROJECT_ROOT / ".cache")


def _package_changes(record: Mapping[str, Any], rerun: Mapping[str, Any]) -> str:
    ours, theirs = record["provenance"]["packages"], rerun["provenance"]["packages"]
    changed = [f"{k} {ours[k]} -> {theirs.get(k)}" for k in ours if ours[k] != theirs.get(k)]
    return f" (packages differ from the record's: {', '.join(changed)})" if changed else ""


def _log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
    return "\n    " + "\n    ".join(lines)


def rerun(path: Path, out_dir: Path, log: Path, tick: Callable[[float], None]) -> int:
    """Run ``path``'s record again into ``out_dir`` in a fresh interpreter; its exit status."""
    command = [sys.executable, "-m", "benchmark.leaderboard.rerun", str(path), str(out_dir)]
    clock = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [*command, str(cache_dir())], cwd=PROJECT_ROOT, stdout=sink, stderr=subprocess.STDOUT
        )
        while True:
            try:
                return proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                tick(time.perf_counter() - clock)


def verify_record(
    path: Path, machine: Machine, workdir: Path, tick: Callable[[float], None] = lambda s: None
) -> Outcome:
    """Re-run one record and compare; never raises for a record that does not reproduce."""
    name = path.name.removesuffix(".json")
    record = load_record(path)
    reason = not_verifiable(record, machine)
    if reason:
        return Outcome(name, NOT_VERIFIABLE, 0.0, reason)
    clock = time.perf_counter()
    out_dir, log = workdir / name, workdir / f"{name}.log"
    code = rerun(path, out_dir, log, tick)
    seconds = time.perf_counter() - clock
    if code != 0:
        return Outcome(name, FAILED, seconds, f"the re-run exited {code}:{_log_tail(log)}")
    new = load_record(out_dir / RECORD)
    allowed = tolerance(record, machine)
    committed = read_predictions(predictions_path(path))
    fresh = read_predictions(out_dir / PREDICTIONS)
    largest = max_prediction_difference(committed, fresh)
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
    parser.add_argument("--root", type=Path, default=LEADERBOARD_DIR, help="leaderboard folder")
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
    counts = {s: sum(o.status == s for o in outcomes) for s in (VERIFIED, FAILED, NOT_VERIFIABLE)}
    totals = ", ".join(f"{n} {s}" for s, n in counts.items())
    return "\n".join([*lines, "", *details, *([""] if details else []), totals])


def main(argv: Sequence[str] | None = None) -> int:
    opts = _parser().parse_args(argv)
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
    print(f"verify: {len(paths)} record(s) on {numerics_key(machine.hardware)}", file=sys.stderr)
    outcomes = []
    with (
        tempfile.TemporaryDirectory(prefix="verify-") as tmp,
        tqdm(total=len(paths), unit="record", file=sys.stderr, disable=None) as bar,
    ):
        for i, path in enumerate(paths, 1):
            name = path.name.removesuffix(".json")
            bar.set_description(name)
            tqdm.write(f"[{i}/{len(paths)}] {name} ...", file=sys.stderr)
            outcome = verify_record(
                path, machine, Path(tmp), lambda s: bar.set_postfix_str(f"{s:.0f} s")
            )
            tqdm.write(
                f"[{i}/{len(paths)}] {name}: {outcome.status} ({outcome.seconds:.1f} s)",
                file=sys.stderr,
            )
            outcomes.append(outcome)
            bar.update(1)
    print(summary(outcomes))
    return 1 if any(o.status == FAILED for o in outcomes) else 0


__all__ = ["Outcome", "changed_records", "is_deep", "main", "not_verifiable", "verify_record"]
