"""Result records as the leaderboard and the sweep summary read them.

- :func:`load_record` parses and validates one ``result.json`` against
  :data:`benchmark.records.schemas.RESULT_V1` plus the rules a schema cannot state (its name and
  seed match its config, CIs are ordered, its cohorts and tasks are its protocol's).
- :class:`Reference` is the data and protocol a leaderboard accepts (composed from ``conf/``):
  a record run on other data (``data=tiny``, another simulator profile, a folder) or under
  another protocol (folds, bootstrap, tau, lesion scope, ...) is *stale* and refused.
- :func:`consistency_problems` refuses records that disagree with the others on what they must
  share: the data fingerprint and the fold digest (all records), the config (all seeds of one
  model).
- :func:`aggregate_seeds` turns the records of several seeds into mean ± sd rows with a pooled
  95% CI; ``benchmark.runner.sweep`` prints them at the end of a sweep.

Imports stay light (standard library at module level): Hydra imports the sweep callback, and
with it this module, on every run.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.records.record_format import CV_KEY_SUFFIX, PROJECT_ROOT, SCHEMA

KNOWN_SCHEMAS = (SCHEMA,)
_COMPOSING = threading.Lock()
CONF_DIR = PROJECT_ROOT / "conf"
# Config keys that never change a number (progress bars); the cache location is masked too.
VOLATILE_KEYS = frozenset({"progress", "sandbox", "limits"})  # change no number
CACHE_PLACEHOLDER = "${paths.cache_dir}"
# Metrics bounded to [0, 1]: a pooled CI is clipped to that range.
UNIT_INTERVAL = ("auc", "brier", "c_index", "td_auc_")
Z95 = 1.959964


class RecordError(ValueError):
    """A record (or a file that goes with it) was refused; names the file and every reason."""

    def __init__(self, source: str | Path, reasons: Sequence[str]) -> None:
        self.source = str(source)
        self.reasons = list(reasons)
        super().__init__(f"{self.source}: refused:\n  - " + "\n  - ".join(self.reasons))


# --------------------------------------------------------------------------------------------
# One record


def canonical_stem(model: str, seed: int) -> str:
    """``<model>__seed<k>``: the name of a record and its predictions on a leaderboard."""
    return f"{model}__seed{int(seed)}"


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows (a NaN in a record is a bug upstream)")


def parse_record(text: str, source: str | Path) -> dict[str, Any]:
    """JSON text -> dict; :class:`RecordError` if it is not a JSON object (NaN/Infinity refused)."""
    try:
        record = json.loads(text, parse_constant=_reject_constant)
    except ValueError as err:
        raise RecordError(source, [f"not valid JSON ({err})"]) from None
    if not isinstance(record, dict):
        raise RecordError(source, [f"must be a JSON object, got {type(record).__name__}"])
    return record


def expected_cohort_keys(protocol: Mapping[str, Any]) -> list[str]:
    """Metric keys of a protocol's cohorts: ``<development>_cv``, then the external cohorts."""
    return [protocol["development"] + CV_KEY_SUFFIX, *protocol["external"]]


def record_problems(record: Mapping[str, Any]) -> list[str]:
    """Why ``record`` is not a valid result record (an empty list: it is)."""
    from benchmark.records.schemas import (  # jsonschema: only when validating
        RESULT_V1,
        schema_errors,
    )

    version = record.get("schema")
    if version not in KNOWN_SCHEMAS:
        return [f"unknown schema version {version!r} (this leaderboard reads {KNOWN_SCHEMAS})"]
    problems = schema_errors(record, RESULT_V1)
    if problems:
        return problems
    config = record["provenance"]["config"]
    if config["model"]["name"] != record["model"]:
        problems.append(
            f"model {record['model']!r} differs from its config's model.name "
            f"{config['model']['name']!r}"
        )
    if config["seed"] != record["seed"]:
        problems.append(f"seed {record['seed']} differs from its config's seed {config['seed']}")
    protocol = config["protocol"]
    cohorts = expected_cohort_keys(protocol)
    for section in ("metrics", "oracle"):
        for key, tasks in record[section].items():
            if key not in cohorts:
                problems.append(f"{section}.{key}: not a cohort of its protocol {cohorts}")
            for task, metrics in tasks.items():
                if task not in protocol["tasks"]:
                    problems.append(f"{section}.{key}.{task}: not a task of its protocol")
                for name, metric in metrics.items():
                    ci = metric.get("ci95")
                    if ci is not None and ci[0] > ci[1]:
                        problems.append(f"{section}.{key}.{task}.{name}: ci95 {ci} is reversed")
    tasks = {task for per in record["metrics"].values() for task in per}
    for key in cohorts:
        missing = sorted(tasks - set(record["metrics"].get(key, {})))
        if missing:
            problems.append(f"metrics.{key}: no metrics for task(s) {missing}")
    return problems


def load_record(path: Path) -> dict[str, Any]:
    """Read and validate one record file; :class:`RecordError` naming it if it is not valid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RecordError(path, [f"cannot be read ({err})"]) from None
    record = parse_record(text, path)
    problems = record_problems(record)
    if problems:
        raise RecordError(path, problems)
    return record


def masked_config(config: Mapping[str, Any], *, without: Iterable[str] = ()) -> dict[str, Any]:
    """A resolved run config minus what never changes a number: ``paths`` and
    :data:`VOLATILE_KEYS` dropped, the cache location masked inside values (a radiomics cache
    path differs between machines, the features do not). ``without`` drops further top-level
    keys (``seed``, to group the seeds of one configuration)."""
    paths = config.get("paths") or {}
    cache = str(paths.get("cache_dir") or "").rstrip("/")

    def clean(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {str(k): clean(v) for k, v in node.items() if k not in VOLATILE_KEYS}
        if isinstance(node, list | tuple):
            return [clean(v) for v in node]
        if isinstance(node, str) and cache and (node == cache or node.startswith(cache + "/")):
            return CACHE_PLACEHOLDER + node[len(cache) :]
        return node

    dropped = {"paths", *without}
    return {str(k): clean(v) for k, v in config.items() if k not in dropped}


def config_key(config: Mapping[str, Any], *, without: Iterable[str] = ()) -> str:
    """Short hash of a resolved run config (:func:`masked_config`); works on the plain dict a
    record stores in ``provenance.config``."""
    body = masked_config(config, without=without)
    blob = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Staleness against the leaderboard's data and protocol


def differing_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted keys where two JSON-like values differ (``a`` the record, ``b`` the reference)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        out: list[str] = []
        for key in sorted(set(a) | set(b), key=str):
            where = f"{prefix}.{key}" if prefix else str(key)
            if key not in a:
                out.append(f"{where} (missing in the record)")
            elif key not in b:
                out.append(f"{where} (not in the leaderboard's config)")
            else:
                out += differing_keys(a[key], b[key], where)
        return out
    if a != b or (type(a) is not type(b) and not _same_number(a, b)):
        return [f"{prefix or '(value)'}: {_short(a)} vs {_short(b)}"]
    return []


def _same_number(a: Any, b: Any) -> bool:
    """6 and 6.0 are the same setting (YAML and JSON round trips); True and 1 are not."""
    numbers = (int, float)
    bools = isinstance(a, bool) or isinstance(b, bool)
    return isinstance(a, numbers) and isinstance(b, numbers) and not bools and a == b


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first(keys: list[str], limit: int = 5) -> str:
    shown = "; ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def compose_config(overrides: Sequence[str], conf_dir: Path = CONF_DIR) -> Any:
    """``conf/config.yaml`` with ``overrides``, as ``python -m benchmark`` composes it (a
    DictConfig; Hydra is imported only here, not with this module). Hydra's state is global:
    one composition at a time (``verify --jobs`` composes from threads)."""
    from hydra import compose, initialize_config_dir

    with _COMPOSING, initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@dataclass(frozen=True)
class Reference:
    """The data config and protocol a leaderboard accepts, composed from ``conf/``.

    Whole resolved config nodes are compared (not just a profile name): any change to the
    simulator profile, the data seed, the folds, the bootstrap or the survival settings makes
    the old records stale, so a leaderboard never mixes numbers of two protocols.
    """

    data_name: str
    data: dict[str, Any]
    protocol: dict[str, Any]

    @classmethod
    def from_conf(cls, data: str = "default", conf_dir: Path = CONF_DIR) -> Reference:
        from omegaconf import OmegaConf

        cfg = compose_config([f"data={data}"], conf_dir)
        return cls(
            data_name=data,
            data=OmegaConf.to_container(cfg.data, resolve=True),
            protocol=OmegaConf.to_container(cfg.protocol, resolve=True),
        )

    def problems(self, record: Mapping[str, Any]) -> list[str]:
        """Why a (schema-valid) record does not belong on this leaderboard."""
        config = record["provenance"]["config"]
        out = []
        data = config["data"]
        profile = (data.get("profile") or {}).get("name")
        wanted = (self.data.get("profile") or {}).get("name")
        where = f"conf/data/{self.data_name}.yaml"
        if data.get("source") != self.data.get("source"):
            out.append(
                f"data source {data.get('source')!r} is not the leaderboard's "
                f"{self.data.get('source')!r} ({where})"
            )
        elif profile != wanted:
            out.append(
                f"data profile {profile!r} is not the leaderboard's {wanted!r} ({where}); "
                f"leaderboard records come from data={self.data_name} runs only"
            )
        else:
            keys = differing_keys(data, self.data)
            if keys:
                out.append(f"data config differs from {where} (other data): {_first(keys)}")
        keys = differing_keys(config["protocol"], self.protocol)
        if keys:
            out.append(
                f"protocol differs from the leaderboard's (conf/protocol): {_first(keys)}; "
                "re-run the model under the current protocol"
            )
        return out


# --------------------------------------------------------------------------------------------
# Consistency between the records of one leaderboard


def _majority(values: Mapping[str, str], what: str) -> dict[str, str]:
    """name -> reason, for records whose ``what`` differs from the value most records hold."""
    counts = Counter(values.values())
    if len(counts) <= 1:
        return {}
    (top, n_top), (_, n_next) = counts.most_common(2)
    if n_top == n_next:
        summary = ", ".join(f"{v} ({n})" for v, n in sorted(counts.items()))
        return {
            name: f"records disagree on the {what} and no value is held by most: {summary}"
            for name in values
        }
    return {
        name: f"{what} {value} differs from {top} shared by {n_top} other record(s)"
        for name, value in values.items()
        if value != top
    }


def consistency_problems(records: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """name -> reasons, for records that disagree with the others of one leaderboard.

    All records must share one data fingerprint and one fold digest (the record holding the
    minority value is the stale one; with no majority, all that disagree are refused), and all
    seeds of a model one model config: the resolved ``model`` node, which holds every argument
    the model is built with (radiomics settings, crops, epochs, ... interpolated into it), the
    cache location masked (:func:`model_config_key`).
    """
    out: dict[str, list[str]] = defaultdict(list)
    prov = {name: r["provenance"] for name, r in records.items()}
    fingerprints = {n: p["data_fingerprint"] for n, p in prov.items()}
    for name, reason in _majority(fingerprints, "data fingerprint").items():
        out[name].append(reason + "; re-run it on the current data")
    for name, reason in _majority({n: p["folds"] for n, p in prov.items()}, "fold digest").items():
        out[name].append(reason)
    by_model: dict[str, dict[str, str]] = defaultdict(dict)
    for name, record in records.items():
        by_model[record["model"]][name] = model_config_key(record["provenance"]["config"])
    for model, keys in by_model.items():
        for name, reason in _majority(keys, f"model config of {model} (key)").items():
            out[name].append(reason + "; every seed of a model must share its config")
    return dict(out)


def model_config_key(config: Mapping[str, Any]) -> str:
    """:func:`config_key` of the ``model`` node only: what the model is built from.

    Settings the model does not read (``hardware.deep`` for a Cox model) do not split its seeds.
    """
    return config_key({"model": config.get("model"), "paths": config.get("paths") or {}})


# --------------------------------------------------------------------------------------------
# Seeds


@dataclass(frozen=True)
class SeedRow:
    """One (configuration, cohort, task, metric) over the seeds of its records."""

    model: str
    config: str  # config_key without the seed
    data: str  # data fingerprint
    cohort: str
    task: str
    metric: str
    seeds: tuple[int, ...]  # seeds with a computable value
    mean: float | None
    sd: float | None  # sample sd over seeds (None below 2 seeds)
    ci95: tuple[float, float] | None  # pooled over seeds: see pooled_ci
    not_computable: tuple[str, ...] = ()  # the reasons of the seeds without a value

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config": self.config,
            "data": self.data,
            "cohort": self.cohort,
            "task": self.task,
            "metric": self.metric,
            "n_seeds": len(self.seeds),
            "seeds": " ".join(map(str, self.seeds)),
            "mean": self.mean,
            "sd": self.sd,
            "ci95_low": None if self.ci95 is None else self.ci95[0],
            "ci95_high": None if self.ci95 is None else self.ci95[1],
            "not_computable": "; ".join(self.not_computable),
        }


def seed_group(record: Mapping[str, Any]) -> tuple[str, str, str]:
    """(model, config key without seed, data fingerprint): the records one seed row pools."""
    prov = record["provenance"]
    return record["model"], config_key(prov["config"], without=("seed",)), prov["data_fingerprint"]


def pooled_ci(
    values: Sequence[float], cis: Sequence[Sequence[float] | None], bounded: bool
) -> tuple[float, float] | None:
    """95% CI of the seed mean that adds the seed-to-seed spread to each seed's sampling error.

    Rubin's rules (seeds play the part of imputations): each seed's standard error is read off
    its bootstrap CI (width / 2 / 1.96); total variance = mean within-seed variance
    + (1 + 1/m) x between-seed variance; t quantile with Rubin's degrees of freedom. One seed:
    its own CI. (The leaderboard, which has the predictions, pools by bootstrap instead.)
    """
    if any(ci is None for ci in cis):
        return None
    m = len(values)
    if m == 1:
        return float(cis[0][0]), float(cis[0][1])
    mean = statistics.fmean(values)
    within = statistics.fmean(((hi - lo) / (2 * Z95)) ** 2 for lo, hi in cis)
    between = statistics.variance(values)
    total = within + (1 + 1 / m) * between
    if total == 0:
        return mean, mean
    if between == 0:
        quantile = Z95
    else:
        from scipy.stats import t

        r = (1 + 1 / m) * between / within if within > 0 else math.inf
        df = (m - 1) * (1 + 1 / r) ** 2
        quantile = float(t.ppf(0.975, df))
    half = quantile * math.sqrt(total)
    lo, hi = mean - half, mean + half
    if bounded:
        lo, hi = max(lo, 0.0), min(hi, 1.0)
    return lo, hi


def aggregate_seeds(
    records: Iterable[Mapping[str, Any]],
    group: Callable[[Mapping[str, Any]], tuple[str, str, str]] = seed_group,
    section: str = "metrics",
) -> list[SeedRow]:
    """Records of several seeds -> one row per configuration, cohort, task and metric.

    Records group by ``group`` (default (model, config without the seed, data fingerprint)), so
    two configurations of a model, or two datasets, are never pooled. Each row holds the mean and
    sample sd of the seeds' values and a pooled 95% CI (:func:`pooled_ci`). A seed that appears
    twice in a group counts once (a re-run of a deterministic run is the same number). Seeds
    whose metric was not computable are left out of the numbers and their reasons kept. Groups
    come in order of first appearance; ``section="oracle"`` aggregates the oracle rows instead.
    """
    groups: dict[tuple[str, str, str], dict[int, Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(group(record), {}).setdefault(int(record["seed"]), record)
    rows: list[SeedRow] = []
    for (model, config, data), by_seed in groups.items():
        seeds = sorted(by_seed)
        # cohort -> task -> metric, in the order of the first record that has each
        layout: dict[str, dict[str, list[str]]] = {}
        for seed in seeds:
            for cohort, tasks in by_seed[seed][section].items():
                for task, metrics in tasks.items():
                    names = layout.setdefault(cohort, {}).setdefault(task, [])
                    names.extend(n for n in metrics if n not in names)
        for cohort, tasks in layout.items():
            for task, names in tasks.items():
                for name in names:
                    rows.append(
                        _seed_row(model, config, data, cohort, task, name, by_seed, seeds, section)
                    )
    return rows


def _seed_row(
    model: str,
    config: str,
    data: str,
    cohort: str,
    task: str,
    name: str,
    by_seed: Mapping[int, Mapping[str, Any]],
    seeds: Sequence[int],
    section: str,
) -> SeedRow:
    used, values, cis, reasons = [], [], [], []
    for seed in seeds:
        metric = by_seed[seed][section].get(cohort, {}).get(task, {}).get(name)
        if metric is None:
            reasons.append(f"seed {seed}: no such metric")
        elif metric.get("value") is None:
            reasons.append(f"seed {seed}: {metric.get('not_computable') or 'not computable'}")
        else:
            used.append(seed)
            values.append(float(metric["value"]))
            cis.append(metric.get("ci95"))
    return SeedRow(
        model=model,
        config=config,
        data=data,
        cohort=cohort,
        task=task,
        metric=name,
        seeds=tuple(used),
        mean=statistics.fmean(values) if values else None,
        sd=statistics.stdev(values) if len(values) > 1 else None,
        ci95=pooled_ci(values, cis, name.startswith(UNIT_INTERVAL)) if values else None,
        not_computable=tuple(reasons),
    )
