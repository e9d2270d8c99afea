"""A site's runs -> one aggregate-only site record (``python -m benchmark.site export``).

Everything is computed at the site, as the public board computes it (``benchmark.leaderboard.
ranking``: every model scored on the same patient resamples of the protocol's bootstrap), and
only what describes a cohort as a whole leaves: per (cohort, task) the number of lesions or
patients, patients and events, and per model its metric with CI, rank median and interval,
P(best) and the paired difference to the best model. No id, no per-patient value, no date, and
no text from the site's tables or from the runs' error messages enter the record: every string
in it is a harness name (model, cohort, task, metric), a config digest or the site's dataset name.

A (cohort, task) with fewer than ``min_patients`` patients, or fewer than ``min_events`` events
or non-events (PD / non-PD lesions; deaths or progressions / censored patients), is suppressed:
the record says only that it was, with no counts and no figures.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.leaderboard.predictions import (
    PRIMARY_METRIC,
    predictions_problems,
    read_predictions,
)
from benchmark.leaderboard.ranking import Standing, rank_models
from benchmark.leaderboard.store import Entry
from benchmark.records.reading import (
    RecordError,
    canonical_stem,
    differing_keys,
    expected_cohort_keys,
    load_record,
    model_config_key,
)
from benchmark.records.schemas import SITE_SCHEMA_ID, SITE_V1, schema_errors
from benchmark.runner.run_folder import PREDICTIONS, RECORD
from benchmark.site.evaluate import SiteError

# Published disclosure rules for aggregate health statistics suppress cells of fewer than 10
# (or 11) people; a C-index or AUC with fewer than 5 events or non-events is noise anyway.
MIN_PATIENTS = 10
MIN_EVENTS = 5
DECIMALS = 3  # the board's precision: what it shows is what was published


def load_runs(runs_dir: Path) -> list[Entry]:
    """Every finished run ``<model>__seed<k>/`` under ``runs_dir``; SiteError naming each run
    that is broken, or that another dataset, protocol, commit or sandbox produced."""
    runs_dir = Path(runs_dir)
    runs, problems = [], []
    for record_path in sorted(runs_dir.glob(f"*/{RECORD}")):
        folder = record_path.parent
        try:
            record = load_record(record_path)
            frame = read_predictions(folder / PREDICTIONS)
        except RecordError as err:
            problems.append(str(err))
            continue
        reasons = predictions_problems(record, frame)
        if folder.name != canonical_stem(record["model"], record["seed"]):
            reasons.append(f"the folder of this run is named {folder.name}, not <model>__seed<k>")
        if reasons:
            problems.append(str(RecordError(folder, reasons)))
            continue
        runs.append(Entry(record_path, record, frame))
    if not runs and not problems:
        raise SiteError(f"no finished run under {runs_dir} (python -m benchmark.site evaluate)")
    first = runs[0] if runs else None
    for run in runs[1:]:
        problems += [f"{run.path.parent}: {p}" for p in _mismatch(first, run)]
    if problems:
        raise SiteError("the site's runs do not make one evaluation:\n" + "\n".join(problems))
    return runs


def _mismatch(first: Entry, run: Entry) -> list[str]:
    """Why ``run`` cannot be aggregated with ``first`` (one dataset, protocol, commit, sandbox)."""
    a, b = first.record["provenance"], run.record["provenance"]
    name, out = first.path.parent.name, []
    if a["data_fingerprint"] != b["data_fingerprint"]:
        out.append(f"another dataset than {name} ({b['data_fingerprint'][:19]}…)")
    keys = differing_keys(a["config"]["protocol"], b["config"]["protocol"])
    if keys:
        out.append(f"another protocol than {name}: {keys[0]}")
    if a["git_commit"] != b["git_commit"]:
        out.append(
            f"another harness commit than {name} ({b['git_commit']} against "
            f"{a['git_commit']}): re-run the evaluation at one commit"
        )
    if a["config"]["sandbox"] != b["config"]["sandbox"]:
        out.append(f"sandbox {b['config']['sandbox']}, {name} had another")
    return out


def _counts(task: str, frame: pd.DataFrame) -> tuple[int, int, int]:
    """(n, patients, positives): lesions and PD lesions, or patients and events."""
    column = "label" if task == "lesion_pd" else "event"
    positive = int(pd.to_numeric(frame[column]).sum())
    return len(frame), int(frame["patient_id"].nunique()), positive


def _round(value: float | None) -> float | None:
    """Published figures at the board's precision: at full precision a figure says more about
    the patients behind it (e.g. its exact count of concordant pairs) than a reader needs."""
    return None if value is None else round(float(value), DECIMALS)


def _interval(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [_round(ci[0]), _round(ci[1])]


def _standing(s: Standing) -> dict[str, Any]:
    return {
        "model": s.model,
        "seeds": list(s.seeds),
        "value": _round(s.value),
        "sd": _round(s.sd),
        "ci95": _interval(s.ci95),
        "rank": s.rank,
        "rank_median": s.rank_median,
        "rank_ci95": None if s.rank_ci95 is None else list(s.rank_ci95),
        "p_best": _round(s.p_best),
        "diff_to_best": _round(s.diff_to_top),
        "diff_ci95": _interval(s.diff_ci95),
        # The reason is the metric code's text, which may quote the data: a flag only.
        "not_computable": s.not_computable is not None,
    }


def section(
    cohort: str,
    task: str,
    runs: Mapping[str, Sequence[tuple[int, pd.DataFrame]]],
    protocol: Mapping[str, Any],
    min_patients: int,
    min_events: int,
) -> dict[str, Any]:
    """One (cohort, task) of the site record: suppressed, or the ranked standings."""
    out: dict[str, Any] = {"cohort": cohort, "task": task, "metric": PRIMARY_METRIC[task]}
    n, patients, positive = _counts(task, next(iter(runs.values()))[0][1])
    if patients < min_patients or min(positive, n - positive) < min_events:
        return {**out, "suppressed": True}
    boot = protocol["bootstrap"]
    standings = rank_models(task, runs, n_boot=int(boot["n_boot"]), seed=int(boot["seed"]))
    return {
        **out,
        "suppressed": False,
        "n": n,
        "n_patients": patients,
        "n_positive": positive,
        "standings": [_standing(s) for s in standings],
    }


def site_record(
    dataset: str,
    runs: Sequence[Entry],
    failed: Mapping[str, Sequence[int]] | None = None,
    *,
    min_patients: int = MIN_PATIENTS,
    min_events: int = MIN_EVENTS,
) -> dict[str, Any]:
    """The site record of ``runs`` (one dataset, protocol, commit and sandbox: :func:`load_runs`).

    ``failed``: model -> the seeds whose runs did not finish (listed, without their errors).
    """
    failed = failed or {}
    provenance = runs[0].record["provenance"]
    protocol = provenance["config"]["protocol"]
    by_model: dict[str, list[Entry]] = {}
    for run in sorted(runs, key=lambda r: (r.model, r.seed)):
        by_model.setdefault(run.model, []).append(run)
    models: dict[str, dict[str, Any]] = {}
    for model, found in sorted(by_model.items()):
        keys = {model_config_key(r.record["provenance"]["config"]) for r in found}
        if len(keys) != 1:
            raise SiteError(f"{model}: its seeds ran with different model configs; re-run them")
        models[model] = {"model_config": keys.pop(), "seeds": [r.seed for r in found]}
        if failed.get(model):
            models[model]["failed_seeds"] = sorted(int(s) for s in failed[model])
    sections = []
    for cohort in expected_cohort_keys(protocol):
        for task in protocol["tasks"]:
            slices: dict[str, list[tuple[int, pd.DataFrame]]] = {}
            for model, found in by_model.items():
                for run in found:
                    frame = run.predictions
                    rows = frame[(frame["cohort"] == cohort) & (frame["task"] == task)]
                    if len(rows):
                        slices.setdefault(model, []).append((run.seed, rows.reset_index(drop=True)))
            if slices:
                sections.append(section(cohort, task, slices, protocol, min_patients, min_events))
    record = {
        "schema": SITE_SCHEMA_ID,
        "dataset": dataset,
        "data_fingerprint": provenance["data_fingerprint"],
        "harness_commit": provenance["git_commit"],
        "protocol": protocol,
        "sandbox": provenance["config"]["sandbox"],
        "suppression": {"min_patients": int(min_patients), "min_events": int(min_events)},
        "models": models,
        "sections": sections,
    }
    errors = schema_errors(record, SITE_V1)
    if errors:  # a bug here, not the site's: say so rather than publish a malformed record
        raise SiteError("the site record breaks its schema:\n" + "\n".join(errors))
    return record


def site_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, indent=2, sort_keys=False) + "\n"
