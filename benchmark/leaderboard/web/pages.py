"""What each page of the web board shows, as plain values for its template.

The index (tables per cohort x task), a page per model (card, README, provenance, plots, fresh
draws, throughput), the comparison page (paired-difference heatmaps), throughput, the
simulator's calibration report and one page per registered site board. Everything here is data;
``render`` escapes it into HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from benchmark.catalog import ModelEntry
from benchmark.leaderboard.board import Board
from benchmark.leaderboard.cells import (
    METRIC_TITLE,
    TASK_TITLE,
    ci,
    cohort_title,
    mean_sd,
    rank_interval,
    short_commit,
    signed,
)
from benchmark.leaderboard.datasets import SiteDataset
from benchmark.leaderboard.fresh_aggregate import flagged, upper_bound
from benchmark.leaderboard.predictions import PRIMARY_METRIC, SECONDARY_METRIC
from benchmark.leaderboard.site_table import cross_board
from benchmark.leaderboard.throughput_table import (
    ThroughputRecord,
    cell_text,
    hardware_text,
    row_columns,
)
from benchmark.leaderboard.web.matrix import difference_heatmap
from benchmark.leaderboard.web.model_plots import model_plots
from benchmark.leaderboard.web.plot import DataTable
from benchmark.leaderboard.web.rows import (
    TRACKS,
    ModelFacts,
    Table,
    best_throughput,
    cohort_heading,
    model_tasks,
)
from benchmark.leaderboard.web.verification import model_verification, verification_status
from benchmark.model_card import load_model_card
from benchmark.record_format import PROJECT_ROOT
from benchmark.records import config_key, model_config_key

# Model and dataset names become file names; the record schemas allow no other characters.
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
CARD_ORDER = (
    "name",
    "version",
    "authors",
    "description",
    "tasks",
    "inputs",
    "license",
    "citation",
    "references",
    "requirements",
    "hardware",
)


@dataclass(frozen=True)
class BuildInfo:
    """What the header says about the build: the commit it came from and its date."""

    commit: str
    date: str  # ISO 8601, UTC


def page_name(name: str) -> str:
    """``<name>.html`` for a model or site dataset; ValueError for any other name."""
    if not SAFE_NAME.match(name):
        raise ValueError(f"{name!r} is not a model or dataset name (^[a-z][a-z0-9_]*$)")
    return f"{name}.html"


def header(board: Board, info: BuildInfo) -> dict[str, Any]:
    """Data, fingerprint, protocol, commit and build date, as the index's header shows them."""
    ref = board.reference
    protocol, data = ref.protocol, ref.data
    prints = sorted({e.record["provenance"]["data_fingerprint"] for e in board.entries})
    return {
        "data": f"{data.get('source')} cohorts, profile "
        f"{(data.get('profile') or {}).get('name', '?')} (conf/data/{ref.data_name}.yaml, "
        f"data seed {data.get('seed')})",
        "fingerprints": prints,
        "protocol": f"{protocol['cv']['n_splits']}-fold patient-grouped cross-validation on "
        f"{protocol['development']} (fold seed {protocol['cv']['fold_seed']}), then a fit on "
        f"all of it that predicts {', '.join(protocol['external'])}; lesion scope "
        f"{protocol['lesion_scope']}; {protocol['bootstrap']['n_boot']} bootstrap resamples "
        f"(seed {protocol['bootstrap']['seed']})",
        "commit": info.commit,
        "commit_short": short_commit(info.commit),
        "date": info.date,
        "records": len(board.entries),
        "models": len(board.models),
        "seeds": sorted({e.seed for e in board.entries}),
    }


def _authors(card: Mapping[str, Any]) -> str:
    out = []
    for author in card.get("authors") or []:
        if isinstance(author, Mapping):
            out.append(str(author.get("name", "")))
        else:
            out.append(str(author))
    return ", ".join(out)


def _card(entry: ModelEntry) -> tuple[dict[str, Any] | None, str]:
    """The parsed model card (None for a baseline) and why it could not be read."""
    if entry.folder is None:
        return None, ""
    try:
        return load_model_card(entry.folder), ""
    except ValueError as err:
        return None, str(err)


def model_list(board: Board, facts: Mapping[str, ModelFacts]) -> list[dict[str, Any]]:
    """One line per model on the board: how to find its page from the index."""
    tasks = model_tasks(board)
    out = []
    for name, entry in board.models.items():
        card, problem = _card(entry)
        out.append(
            {
                "name": name,
                "page": "models/" + page_name(name),
                "kind": entry.kind,
                "tracks": facts[name].tracks,
                "tasks": sorted(tasks.get(name, set())),
                "authors": _authors(card) if card else problem,
                "license": str(card.get("license", "")) if card else "",
                "verified": facts[name].verified,
            }
        )
    return out


def index_page(
    board: Board, info: BuildInfo, tables: list[Table], facts: Mapping[str, ModelFacts]
) -> dict[str, Any]:
    cohorts: dict[str, list[Table]] = {}
    for table in tables:
        cohorts.setdefault(table.cohort, []).append(table)
    return {
        "title": "Leaderboard",
        "header": header(board, info),
        "cohorts": [
            {"key": c, "title": cohort_heading(c, board), "tables": found}
            for c, found in cohorts.items()
        ],
        "tables": tables,
        "models": model_list(board, facts),
        "tracks": TRACKS,
    }


def _text(value: Any) -> str:
    """A card value as text: strings as they are, anything else as YAML."""
    if isinstance(value, str):
        return value
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100).strip()


def _card_fields(card: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = [k for k in CARD_ORDER if k in card] + [k for k in card if k not in CARD_ORDER]
    return [(str(k), _text(card[k])) for k in keys]


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
        verified = verification_status(entry)
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
    card, problem = _card(entry)
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
        "verified": model_verification([e for e in board.entries if e.model == model]),
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


def compare_page(board: Board) -> dict[str, Any]:
    plots = [
        difference_heatmap(section, f"diff-{section.cohort}-{section.task}")
        for section in board.sections
    ]
    return {"title": "Comparison", "plots": plots}


def throughput_page(board: Board) -> dict[str, Any]:
    summary = []
    for item in board.throughput:
        best = best_throughput([item])
        summary.append([item.record["model"], item.machine, best.text, best.title])
    return {
        "title": "Throughput",
        "summary": DataTable(
            "Best figure of each record",
            ["model", "machine", "best throughput", "what it times"],
            summary,
        ),
        "records": throughput_tables(board.throughput),
    }


def calibration_page(report: Mapping[str, Any] | None, coverage: Mapping[str, Any] | None) -> dict:
    """The simulator's calibration report: each target beside the study's figure."""
    if report is None:
        return {"title": "Simulator calibration", "report": None}
    rows = []
    for t in report.get("targets", []):
        value = "-" if t.get("value") is None else f"{t['value']:.3f}"
        if t.get("ci95"):
            value += f" [{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]"
        holds = {True: "yes", False: "NO", None: "-"}[t.get("holds")]
        rows.append(
            [
                str(t.get("name", "")),
                str(t.get("study", "")),
                value,
                str(t.get("rule", "")),
                holds,
                str(t.get("source", "")),
                str(t.get("note", "")),
            ]
        )
    failing = sum(1 for t in report.get("targets", []) if t.get("holds") is False)
    evaluated = sum(1 for t in report.get("targets", []) if t.get("holds") is not None)
    oracle = []
    for cohort, tasks in (report.get("details", {}).get("oracle_over_seeds") or {}).items():
        for task, found in tasks.items():
            oracle.append([cohort, task, mean_sd(found.get("mean"), found.get("sd"))])
    cover = []
    for c in (coverage or {}).get("coverage", []):
        cover.append(
            [
                c["cohort"],
                c["task"],
                c["method"],
                f"{c['population']:.3f}",
                f"{c['covered']} / {c['n_seeds']}",
                f"{c['rate']:.3f}",
                ci(c.get("ci95")),
            ]
        )
    return {
        "title": "Simulator calibration",
        "report": {
            "generator": report.get("generator", ""),
            "profile": report.get("profile", ""),
            "seeds": len(report.get("data_seeds", [])),
            "summary": f"{evaluated - failing} of {evaluated} evaluated targets hold "
            f"({len(report.get('targets', []))} targets)",
        },
        "targets": DataTable(
            "Calibration targets: the study's figure, the simulator's, and the rule",
            ["target", "study", "simulator [95% CI]", "must be", "holds", "from", "note"],
            rows,
        ),
        "oracle": DataTable(
            "Oracle (the truth scored) over data seeds: mean ± sd",
            ["cohort", "task", "oracle"],
            oracle,
        ),
        "coverage": DataTable(
            "Coverage of the bootstrap 95% CIs over many draws (should be near 0.95)",
            ["cohort", "task", "method", "population value", "covered", "rate", "95% CI"],
            cover,
        ),
    }


def site_page(board: Board, site: SiteDataset) -> dict[str, Any]:
    """A registered site board: its tables, from the site record alone, and how its ranks compare
    with the simulated board's."""
    record, reg = site.record, site.registration
    rules = record["suppression"]
    sections = []
    for section in record["sections"]:
        title = (
            f"{cohort_title(section['cohort'], record['protocol']).replace('`', '')} — "
            f"{TASK_TITLE[section['task']]}"
        )
        if section["suppressed"]:
            sections.append({"title": title, "suppressed": True, "table": None, "counts": ""})
            continue
        unit = "lesions" if section["task"] == "lesion_pd" else "patients"
        positive = "with PD" if section["task"] == "lesion_pd" else "events"
        counts = f"n = {section['n']} {unit}"
        if section["task"] == "lesion_pd":
            counts += f" ({section['n_patients']} patients)"
        counts += f", {section['n_positive']} {positive}."
        rows = [
            [
                str(s["rank"] or ""),
                s["model"],
                "n/c" if s["not_computable"] else mean_sd(s["value"], s["sd"]),
                ci(s["ci95"]),
                rank_interval(s["rank_median"], s["rank_ci95"]),
                "" if s.get("p_best") is None else f"{s['p_best']:.2f}",
                signed(s.get("diff_to_best"), s.get("diff_ci95")),
                ", ".join(map(str, s["seeds"])),
            ]
            for s in section["standings"]
        ]
        metric = METRIC_TITLE[section["metric"]]
        table = DataTable(
            title,
            [
                "#",
                "model",
                metric,
                "95% CI (pooled)",
                "rank [95% interval]",
                "P(best)",
                "Δ vs #1 [95% CI]",
                "seeds",
            ],
            rows,
        )
        sections.append({"title": title, "suppressed": False, "table": table, "counts": counts})
    cross = cross_board(board, site)
    cross_rows = [
        [m, *(f"{a or '—'} → {b or '—'}" for a, b in (cross.ranks[c][m] for c in cross.cells))]
        for m in cross.models
    ]
    rho = [
        "—" if cross.rho[c][0] is None else f"{cross.rho[c][0]:+.2f} ({cross.rho[c][1]})"
        for c in cross.cells
    ]
    if cross.cells:
        cross_rows.append(["Spearman ρ (n models)", *rho])
    return {
        "title": f"Site board: {site.name}",
        "name": site.name,
        "description": reg["description"],
        "holder": reg["holder"],
        "fingerprint": record["data_fingerprint"],
        "protocol": reg["protocol"],
        "commit": short_commit(record["harness_commit"]),
        "sandbox": record["sandbox"],
        "models": len(record["models"]),
        "min_patients": rules["min_patients"],
        "min_events": rules["min_events"],
        "failed": {
            m: v["failed_seeds"] for m, v in record["models"].items() if v.get("failed_seeds")
        },
        "sections": sections,
        "cross": DataTable(
            "Rank on the simulated board → rank on this site's board, per cohort and task",
            ["model", *(f"{c} {t}" for c, t in cross.cells)],
            cross_rows,
        ),
    }
