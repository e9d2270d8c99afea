"""What a model's page shows: its rows, plots, fresh draws, throughput, provenance per seed,
model card, config and README, as plain values for ``model.html``.

The card and README are a submission's own text: they are passed on as text, never as markup.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from benchmark.leaderboard.board import Board
from benchmark.leaderboard.cells import METRIC_TITLE, mean_sd, short_commit
from benchmark.leaderboard.fresh_aggregate import flagged, upper_bound
from benchmark.leaderboard.predictions import PRIMARY_METRIC, SECONDARY_METRIC
from benchmark.leaderboard.throughput_table import (
    ThroughputRecord,
    cell_text,
    hardware_text,
    row_columns,
)
from benchmark.leaderboard.web.model_plots import model_plots
from benchmark.leaderboard.web.plot import DataTable
from benchmark.leaderboard.web.rows import ModelFacts, Table, model_tasks
from benchmark.leaderboard.web.verification import model_verification, verification_status
from benchmark.records.catalog import ModelEntry
from benchmark.records.model_card import load_model_card
from benchmark.records.reading import config_key, model_config_key
from benchmark.records.record_format import PROJECT_ROOT
from benchmark.records.schemas import MODEL_CARD_V1

# The card's fields in the schema's order (its ``schema`` tag is not shown).
CARD_ORDER = tuple(k for k in MODEL_CARD_V1["properties"] if k != "schema")


def card_authors(card: Mapping[str, Any]) -> str:
    out = []
    for author in card.get("authors") or []:
        if isinstance(author, Mapping):
            out.append(str(author.get("name", "")))
        else:
            out.append(str(author))
    return ", ".join(out)


def model_card(entry: ModelEntry) -> tuple[dict[str, Any] | None, str]:
    """The parsed model card (None for a baseline) and why it could not be read."""
    if entry.folder is None:
        return None, ""
    try:
        return load_model_card(entry.folder), ""
    except ValueError as err:
        return None, str(err)


def _text(value: Any) -> str:
    """A value as text: strings as they are, a list of strings one per line, else YAML."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100).strip()


def _author(author: Any) -> str:
    """``name (affiliation; email; github; orcid)``, one author of a card."""
    if not isinstance(author, Mapping):
        return _text(author)
    more = [str(author[k]) for k in ("affiliation", "email", "github", "orcid") if author.get(k)]
    return str(author.get("name", "")) + (f" ({'; '.join(more)})" if more else "")


def _card_fields(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = [k for k in CARD_ORDER if k in card] + [k for k in card if k not in CARD_ORDER]
    fields = []
    for key in keys:
        value = card[key]
        if key == "authors" and isinstance(value, list):
            fields.append((str(key), "\n".join(_author(a) for a in value)))
        else:
            fields.append((str(key), _text(value)))
    return fields


def _provenance(board: Board, model: str) -> list[dict[str, Any]]:
    out = []
    for entry in sorted((e for e in board.entries if e.model == model), key=lambda e: e.seed):
        prov = entry.record["provenance"]
        hardware = prov.get("hardware") or {}
        machine = hardware.get("gpu") or hardware.get("cpu") or "?"
        if hardware.get("key"):
            machine += f" (key {hardware['key']})"
        if hardware.get("usable_cpus"):
            machine += f", {hardware['usable_cpus']} CPUs"
        verified = verification_status(entry, board.marks)
        out.append(
            {
                "seed": entry.seed,
                "record": entry.path.name,
                "commit": prov.get("git_commit", ""),
                "commit_short": short_commit(str(prov.get("git_commit", ""))),
                "fingerprint": prov.get("data_fingerprint", ""),
                "folds": prov.get("folds", ""),
                "model_config": model_config_key(prov["config"]),
                "run_config": config_key(prov["config"], without=("seed",)),
                "machine": machine,
                "hardware": _text(hardware),
                "started": prov.get("started_at", ""),
                "duration": "" if prov.get("duration_s") is None else f"{prov['duration_s']:.0f}",
                "peak_memory": ""
                if prov.get("peak_rss_mib") is None
                else f"{prov['peak_rss_mib']:.0f}",
                "packages": ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items()),
                "verified": verified.label,
                "verified_detail": verified.detail,
            }
        )
    return out


def _fresh(board: Board, model: str) -> dict[str, Any] | None:
    found = board.fresh.get(model)
    if found is None:
        return None
    agg = found.aggregate
    rows = []
    for section in board.sections:
        standing = next((s for s in section.standings if s.model == model), None)
        if standing is None:
            continue
        secondary = section.secondary.get(model)
        public = {
            PRIMARY_METRIC[section.task]: standing.value,
            SECONDARY_METRIC[section.task]: None if secondary is None else secondary.mean,
        }
        for name, value in public.items():
            metric = found.metric(section.cohort, section.task, name)
            if not metric or metric.get("mean") is None:
                continue
            primary = name == PRIMARY_METRIC[section.task]
            bound = (
                upper_bound(metric["mean"], metric["sd"], metric["n"])
                if primary and metric.get("sd") is not None and metric["n"] >= 2
                else None
            )
            rows.append(
                [
                    section.cohort,
                    section.task,
                    METRIC_TITLE[name],
                    mean_sd(value, None) if value is not None else "n/c",
                    f"{mean_sd(metric['mean'], metric['sd'])} ({metric['n']})",
                    "" if bound is None else f"{bound:.3f}",
                    ("▲ yes" if flagged(value, metric) else "no") if primary else "",
                ]
            )
    return {
        "profile": agg["profile"],
        "draws": agg["n_draws"],
        "seeds": ", ".join(map(str, agg["seeds"])) if "seeds" in agg else "private",
        "digest": agg["seed_digest"],
        "commit": short_commit(agg["git_commit"]),
        "file": found.path.name,
        "table": DataTable(
            "Public figure against the fresh draws (▲: above the 95% prediction interval of "
            "one more draw; the board flags the primary metric only)",
            [
                "cohort",
                "task",
                "metric",
                "public",
                "fresh mean ± sd (n)",
                "95% PI upper end",
                "flagged",
            ],
            rows,
        ),
    }


def throughput_tables(records: list[ThroughputRecord]) -> list[dict[str, Any]]:
    """Each throughput record's full table, headed by its machine."""
    out = []
    for item in records:
        rows = item.record["rows"]
        columns = row_columns(rows)
        out.append(
            {
                "model": item.record["model"],
                "machine": item.machine,
                "hardware": hardware_text(item.record["hardware"]),
                "file": item.path.name,
                "table": DataTable(
                    f"{item.record['model']} on {item.machine}",
                    columns,
                    [[cell_text(r.get(c)) for c in columns] for r in rows],
                ),
            }
        )
    return out


def _standings(tables: list[Table], model: str) -> list[dict[str, Any]]:
    """The model's row of every index table it is in."""
    out = []
    for table in tables:
        row = next((r for r in table.rows if r.model == model), None)
        if row is not None:
            titles = {c.key: c.title for c in table.columns}
            out.append(
                {
                    "table": table,
                    "row": row,
                    "metric": titles["value"],
                    "secondary": titles["secondary"],
                }
            )
    return out


def model_page(
    board: Board, model: str, tables: list[Table], facts: Mapping[str, ModelFacts]
) -> dict[str, Any]:
    entry = board.models[model]
    card, problem = model_card(entry)
    readme = ""
    if entry.folder is not None and (entry.folder / "README.md").is_file():
        readme = (entry.folder / "README.md").read_text(encoding="utf-8", errors="replace")
    first = min((e for e in board.entries if e.model == model), key=lambda e: e.seed)
    config = first.record["provenance"]["config"].get("model")
    return {
        "title": model,
        "name": model,
        "kind": entry.kind,
        "tracks": facts[model].tracks,
        "tasks": sorted(model_tasks(board).get(model, set())),
        "source": _source(entry),
        "card": _card_fields(card) if card else [],
        "card_problem": problem,
        "readme": readme,
        "config": _text(config),
        "verified": model_verification(
            [e for e in board.entries if e.model == model], board.marks, board.checks.get(model)
        ),
        "standings": _standings(tables, model),
        "plots": model_plots(board, model),
        "provenance": _provenance(board, model),
        "fresh": _fresh(board, model),
        "throughput": throughput_tables(
            [t for t in board.throughput if t.record["model"] == model]
        ),
    }


def _source(entry: ModelEntry) -> str:
    """Where the model lives in the repository."""
    folder = entry.folder if entry.folder is not None else Path(entry.config)
    try:
        return str(folder.relative_to(PROJECT_ROOT))
    except ValueError:
        return folder.name
