"""One model's figures over fresh data draws: ``leaderboard/fresh/<model>.json``.

The external cohorts' labels are public (anyone can simulate the reference data seed), so a
public figure can be tuned to. The same profile drawn with other data seeds gives the same
study again, with new patients: a model's figure there is what its public figure should look
like if nothing was tuned. The file keeps only aggregates (mean, sd and n of each metric over
the draws), so the draws' labels never leave the machine that made them, and lists the seeds
only when they were public anyway (given on the command line).

:func:`upper_bound` is the edge past which the board flags a public figure (:func:`flagged`).
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmark.records.reading import RecordError, config_key, model_config_key, parse_record
from benchmark.records.schemas import FRESH_SCHEMA_ID, FRESH_V1, schema_errors

SeedSource = Literal["command line", "environment"]
COMMAND_LINE: SeedSource = "command line"
ENVIRONMENT: SeedSource = "environment"


def seed_digest(seeds: Sequence[int]) -> str:
    """``sha256:`` of the sorted seed set: two aggregates of one set share it.

    It hides nothing from someone willing to try every small integer, which is why private
    seeds should be large random numbers (docs/fresh-draws.md).
    """
    text = ",".join(str(s) for s in sorted(int(s) for s in seeds))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def profile_key(data: Mapping[str, Any]) -> str:
    """Key of a data config without its seed (and root): the profile all draws share."""
    return config_key({"data": {k: v for k, v in data.items() if k not in ("seed", "root")}})


def protocol_key(protocol: Mapping[str, Any]) -> str:
    return config_key({"protocol": dict(protocol)})


def _metric(values: list[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values) if values else None,
        "sd": statistics.stdev(values) if len(values) > 1 else None,
        "n": len(values),
    }


def build_aggregate(
    records: Sequence[Mapping[str, Any]],
    seeds: Sequence[int],
    source: SeedSource,
    git_commit: str,
) -> dict[str, Any]:
    """The aggregate of one model's records, one per data seed of ``seeds`` (same order).

    Every metric of every cohort and task the records hold, over the draws where it was
    computable. ValueError if the records are not one model, one model seed, one profile.
    """
    if not records or len(records) != len(seeds):
        raise ValueError(f"{len(records)} records for {len(seeds)} seeds")
    configs = [r["provenance"]["config"] for r in records]
    found = {
        "model": {r["model"] for r in records},
        "model seed": {int(r["seed"]) for r in records},
        "profile": {profile_key(c["data"]) for c in configs},
        "protocol": {protocol_key(c["protocol"]) for c in configs},
        "model config": {model_config_key(c) for c in configs},
    }
    mixed = [what for what, values in found.items() if len(values) != 1]
    if mixed:
        raise ValueError(f"the records of fresh draws differ in {', '.join(mixed)}")
    if [int(c["data"]["seed"]) for c in configs] != [int(s) for s in seeds]:
        raise ValueError("the records' data seeds are not the fresh seeds")
    metrics: dict[str, dict[str, dict[str, Any]]] = {}
    for record in records:  # cohort -> task -> metric, in the first record's order
        for cohort, tasks in record["metrics"].items():
            for task, names in tasks.items():
                for name in names:
                    metrics.setdefault(cohort, {}).setdefault(task, {}).setdefault(name, None)
    for cohort, tasks in metrics.items():
        for task, names in tasks.items():
            for name in names:
                values = []
                for record in records:
                    metric = record["metrics"].get(cohort, {}).get(task, {}).get(name) or {}
                    if metric.get("value") is not None:
                        values.append(float(metric["value"]))
                names[name] = _metric(values)
    aggregate: dict[str, Any] = {
        "schema": FRESH_SCHEMA_ID,
        "model": records[0]["model"],
        "model_seed": int(records[0]["seed"]),
        "profile": (configs[0]["data"].get("profile") or {}).get("name", "?"),
        "profile_key": profile_key(configs[0]["data"]),
        "protocol_key": protocol_key(configs[0]["protocol"]),
        "model_config": model_config_key(configs[0]),
        "n_draws": len(seeds),
        "seed_source": source,
        "seed_digest": seed_digest(seeds),
        "git_commit": git_commit,
        "run_commits": sorted({r["provenance"]["git_commit"] for r in records}),
        "metrics": metrics,
    }
    if source == COMMAND_LINE:
        aggregate["seeds"] = sorted(int(s) for s in seeds)
    return aggregate


def aggregate_json(aggregate: Mapping[str, Any]) -> str:
    return json.dumps(aggregate, indent=2) + "\n"


@dataclass(frozen=True)
class Fresh:
    """One accepted aggregate file."""

    path: Path
    aggregate: dict[str, Any]

    @property
    def model(self) -> str:
        return self.aggregate["model"]

    def metric(self, cohort: str, task: str, name: str) -> dict[str, Any] | None:
        return self.aggregate["metrics"].get(cohort, {}).get(task, {}).get(name)


def upper_bound(mean: float, sd: float, n: int) -> float:
    """Upper end of the two-sided 95% prediction interval of one more draw:
    ``mean + t(0.975, n-1) * sd * sqrt(1 + 1/n)``.

    The public draw is one more draw of the same profile, so if nothing was tuned to it its
    figure falls inside this interval 95% of the time (draws' figures roughly normal), and above
    it 2.5% of the time. ``mean + 2 sd`` would treat ``sd`` from a handful of draws as exact
    and the mean as known, and flag an untuned model far more often than that with 3 draws.
    """
    from scipy.stats import t

    return mean + float(t.ppf(0.975, n - 1)) * sd * math.sqrt(1 + 1 / n)


def flagged(public: float | None, metric: Mapping[str, Any] | None) -> bool:
    """Whether the public figure lies above the fresh draws' prediction interval (n >= 2)."""
    if public is None or not metric or metric.get("sd") is None or metric["n"] < 2:
        return False
    return public > upper_bound(metric["mean"], metric["sd"], metric["n"])


def load_fresh(
    folder: Path,
    data: Mapping[str, Any],
    protocol: Mapping[str, Any],
    model_configs: Mapping[str, str],
) -> tuple[dict[str, Fresh], list[str]]:
    """Aggregates of ``folder`` by model, and the problems of those refused.

    Refused: invalid files, a name that is not ``<model>.json``, a model not on the board
    (``model_configs``: model -> its records' model config key), or an aggregate of another
    profile, protocol or model config than the board's (its figures would not be comparable).
    """
    folder = Path(folder)
    found: dict[str, Fresh] = {}
    problems: list[str] = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            aggregate = parse_record(path.read_text(encoding="utf-8"), path)
        except (OSError, RecordError) as err:
            problems.append(str(err))
            continue
        reasons = schema_errors(aggregate, FRESH_V1)
        if not reasons:
            reasons = _stale(aggregate, path, data, protocol, model_configs)
        if reasons:
            problems.append(str(RecordError(path, reasons)))
        else:
            found[aggregate["model"]] = Fresh(path, aggregate)
    return found, problems


def _stale(
    aggregate: Mapping[str, Any],
    path: Path,
    data: Mapping[str, Any],
    protocol: Mapping[str, Any],
    model_configs: Mapping[str, str],
) -> list[str]:
    model = aggregate["model"]
    redo = f"re-run `python -m benchmark.leaderboard fresh --models {model}` or delete the file"
    if path.name != f"{model}.json":
        return [f"the aggregate of {model} is named {model}.json"]
    if model not in model_configs:
        return [f"model {model!r} has no record on the board; delete the file"]
    reasons = []
    if aggregate["profile_key"] != profile_key(data):
        reasons.append(f"drawn from another data profile than the board's; {redo}")
    if aggregate["protocol_key"] != protocol_key(protocol):
        reasons.append(f"run under another protocol than the board's; {redo}")
    if aggregate["model_config"] != model_configs[model]:
        reasons.append(f"run with another model config than the board's records; {redo}")
    return reasons
