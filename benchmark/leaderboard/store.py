"""The results folder of a leaderboard: ``<model>__seed<k>.json`` + ``.predictions.csv.gz``, and
the oracle's ``oracle.predictions.csv.gz`` (:mod:`.oracle`).

:func:`load_entries` reads every record and refuses, with the file and the reason, any that is
invalid, stale (other data or protocol), not re-runnable (unknown model, the template), without
its predictions, or at odds with the other records. :func:`submit` applies the same rules to a
run folder, and the rules of a new entry: a valid model card (a submission), a clean commit
holding the model's files as they are (:mod:`.provenance`), one of the seeds the board declares
(``board.yaml``, :mod:`.checks`), no silent replacement of a record already there. It copies
the run in, atomically, under its canonical name, and scores its predictions with the harness's
own labels (``benchmark/leaderboard/rescore.py``); from the same data it writes the oracle's
predictions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.leaderboard.oracle import ORACLE, write_oracle
from benchmark.leaderboard.predictions import (
    PREDICTIONS_SUFFIX,
    compress,
    predictions_path,
    predictions_problems,
    read_predictions,
)
from benchmark.leaderboard.provenance import commit_problems
from benchmark.leaderboard.rescore import board_data, rescore_problems
from benchmark.records.catalog import ModelEntry
from benchmark.records.model_card import folder_problems
from benchmark.records.reading import (
    RecordError,
    Reference,
    canonical_stem,
    consistency_problems,
    differing_keys,
    load_record,
    parse_record,
    record_problems,
)
from benchmark.runner.run_folder import PREDICTIONS, RECORD
from benchmark.utils.atomic import write_atomic

RECORD_NAME = re.compile(r"^(?P<model>[a-z][a-z0-9_]*)__seed(?P<seed>\d+)\.json$")


class LeaderboardError(Exception):
    """One or more records were refused; the message lists each file and reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems))


@dataclass(frozen=True)
class Entry:
    """One accepted record and its predictions."""

    path: Path
    record: dict[str, Any]
    predictions: pd.DataFrame

    @property
    def model(self) -> str:
        return self.record["model"]

    @property
    def seed(self) -> int:
        return int(self.record["seed"])


def model_problems(model: str, models: Mapping[str, ModelEntry]) -> list[str]:
    """A ranked record must come from a model anyone can re-run from this checkout."""
    entry = models.get(model)
    if entry is None:
        return [
            f"model {model!r} is neither a baseline (conf/model/) nor a submission "
            "(submissions/*/conf/model/): a leaderboard record must be re-runnable"
        ]
    if not entry.on_leaderboard:
        return [f"model {model!r} is the copy-me template ({entry.folder}); it is not ranked"]
    return []


def _entry_problems(
    record: dict[str, Any],
    predictions: Path,
    reference: Reference,
    models: Mapping[str, ModelEntry],
) -> tuple[list[str], pd.DataFrame | None]:
    reasons = reference.problems(record) + model_problems(record["model"], models)
    try:
        frame = read_predictions(predictions)
    except RecordError as err:
        return reasons + [f"{predictions.name}: {r}" for r in err.reasons], None
    reasons += [f"{predictions.name}: {r}" for r in predictions_problems(record, frame)]
    return reasons, frame


def load_entries(
    results_dir: Path, reference: Reference, models: Mapping[str, ModelEntry]
) -> list[Entry]:
    """Every record of ``results_dir``, sorted by file name; :class:`LeaderboardError` if any is
    refused (a board is never built from a subset that silently dropped a record)."""
    results_dir = Path(results_dir)
    problems: list[str] = []
    accepted: dict[str, tuple[Path, dict[str, Any], pd.DataFrame]] = {}
    for path in sorted(results_dir.glob("*.json")):
        try:
            record = load_record(path)
        except RecordError as err:
            problems.append(str(err))
            continue
        reasons = []
        expected = canonical_stem(record["model"], record["seed"]) + ".json"
        if path.name != expected:
            reasons.append(
                f"the file of this record is named {expected} (python -m benchmark.leaderboard "
                "submit RUN_DIR names it)"
            )
        more, frame = _entry_problems(record, predictions_path(path), reference, models)
        reasons += more
        if reasons:
            problems.append(str(RecordError(path, reasons)))
        else:
            accepted[path.name] = (path, record, frame)
    records = {p.name for p in results_dir.glob("*.json")}
    for path in sorted(results_dir.glob("*" + PREDICTIONS_SUFFIX)):
        if path.name == ORACLE:
            continue  # the truth's, checked when the board loads (.oracle)
        if path.name.removesuffix(PREDICTIONS_SUFFIX) + ".json" not in records:
            problems.append(f"{path}: refused:\n  - predictions without a record; delete it")
    clashes = consistency_problems({name: rec for name, (_, rec, _) in accepted.items()})
    for name, reasons in sorted(clashes.items()):
        problems.append(str(RecordError(accepted[name][0], reasons)))
    if problems:
        raise LeaderboardError(problems)
    return [Entry(path, record, frame) for path, record, frame in accepted.values()]


def entry_rules(
    record: dict[str, Any],
    models: Mapping[str, ModelEntry],
    seeds: Sequence[int] = (),
    *,
    allow_dirty: bool = False,
) -> list[str]:
    """What a new entry must meet beyond a valid record: one of the board's ``seeds`` (when it
    declares some), a valid model card (a submission), a clean commit holding the model's files
    (unless ``allow_dirty``)."""
    entry = models[record["model"]]
    problems = []
    if seeds and record["seed"] not in seeds:
        need = ", ".join(map(str, seeds))
        problems.append(
            f"seed {record['seed']} is not one of the board's seeds {need} (its board.yaml): "
            f"run the model with seed={need.replace(', ', ',')} (python -m benchmark "
            f"--multirun model={record['model']} seed={need.replace(', ', ',')})"
        )
    if entry.folder is not None:
        mine = [e for e in models.values() if e.folder == entry.folder]
        problems += [
            f"{p}; fix the model card (submissions/README.md)"
            for p in folder_problems(entry.folder, mine)
        ]
    if not allow_dirty:
        problems += commit_problems(record, entry)
    return problems


def replacement_problems(
    target: Path, text: str, raw_predictions: bytes, record: dict[str, Any]
) -> list[str]:
    """Why replacing ``target`` needs ``--replace`` (none when it is absent or holds this very
    run): a record on the board is never overwritten silently."""
    if not target.is_file():
        return []
    old_predictions = predictions_path(target)
    same_predictions = old_predictions.is_file() and old_predictions.read_bytes() == compress(
        raw_predictions
    )
    old_text = target.read_text(encoding="utf-8")
    if old_text == text and same_predictions:
        return []
    try:
        keys = differing_keys(record, parse_record(old_text, target))
    except RecordError:
        keys = ["the record on the board is not valid JSON"]
    shown = "; ".join(k.replace(" (missing in the record)", " (only on the board)") for k in keys)
    shown = shown.replace(" (not in the leaderboard's config)", " (only in the new record)")
    if not same_predictions:
        shown = "; ".join(filter(None, [shown, "the predictions"]))
    return [
        f"{target} is already on the board and differs (new vs on the board): "
        f"{shown[:600]}; pass --replace to replace it"
    ]


def submit(
    run_dir: Path,
    results_dir: Path,
    reference: Reference,
    models: Mapping[str, ModelEntry],
    *,
    replace: bool = False,
    allow_dirty: bool = False,
    seeds: Sequence[int] = (),
) -> Path:
    """Validate ``run_dir``'s record and predictions, then copy them in as ``<model>__seed<k>``.

    The predictions are written first and the record last (each atomically), so the record's
    presence marks a complete entry, as in a run folder. A record of the same model and seed is
    replaced only with ``replace`` (the same run again changes nothing); ``seeds``: the board's
    (:func:`.checks.load_seeds`), the only ones it takes. ``allow_dirty`` skips
    the commit rule: for a scratch board, never ``leaderboard/``. The oracle's predictions are
    written too when missing or not the data's (:mod:`.oracle`). Returns the record's path on
    the board.
    """
    run_dir, results_dir = Path(run_dir), Path(results_dir)
    source = run_dir / RECORD
    try:
        text = source.read_text(encoding="utf-8")
        raw_predictions = (run_dir / PREDICTIONS).read_bytes()
    except OSError as err:
        raise RecordError(run_dir, [f"not a complete run folder ({err})"]) from None
    record = parse_record(text, source)
    problems = record_problems(record)
    if problems:
        raise RecordError(source, problems)
    reasons, frame = _entry_problems(record, run_dir / PREDICTIONS, reference, models)
    if not reasons:
        reasons = entry_rules(record, models, seeds, allow_dirty=allow_dirty)
    if reasons:
        raise RecordError(source, reasons)
    stem = canonical_stem(record["model"], record["seed"])
    target = results_dir / (stem + ".json")
    reasons = replacement_problems(target, text, raw_predictions, record)
    if reasons and not replace:
        raise RecordError(source, reasons)
    data = board_data(reference)
    reasons = rescore_problems(record, frame, reference, data)  # the harness's labels, not its own
    if reasons:
        raise RecordError(source, reasons)

    others: dict[str, dict[str, Any]] = {}
    for path in sorted(results_dir.glob("*.json")):
        if path.name == stem + ".json":
            continue  # the record this one replaces
        try:
            others[path.name] = load_record(path)
        except RecordError:
            continue  # a broken board record is the board's problem, reported when it builds
    clashes = consistency_problems({**others, stem + ".json": record})
    if stem + ".json" in clashes:
        raise RecordError(
            source,
            [
                *(f"{r} (on the board {results_dir})" for r in clashes[stem + ".json"]),
                "if the data or protocol changed on purpose, re-run every model "
                "(scripts/leaderboard_runs.sh)",
            ],
        )
    write_oracle(results_dir, data, reference.protocol)  # the truth of the data it was scored on
    write_atomic(predictions_path(target), compress(raw_predictions))
    write_atomic(target, text)
    return target
