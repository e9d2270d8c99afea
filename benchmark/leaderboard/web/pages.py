"""What the board-wide pages of the web board show, as plain values for their templates.

The index (tables per cohort x task, the list of models), the comparison page (paired-difference
heatmaps), throughput and the simulator's calibration report; a model's page is
:mod:`.model_page`, a site board's :mod:`.site_page`. Everything here is data; :mod:`.render`
escapes it into HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.leaderboard.board import Board
from benchmark.leaderboard.cells import ci, mean_sd, short_commit
from benchmark.leaderboard.web.matrix import difference_heatmap
from benchmark.leaderboard.web.model_page import card_authors, model_card, throughput_tables
from benchmark.leaderboard.web.plot import DataTable
from benchmark.leaderboard.web.rows import (
    TRACKS,
    ModelFacts,
    Table,
    best_throughput,
    cohort_heading,
    model_tasks,
)

# Model and dataset names become file names; the record schemas allow no other characters.
SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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


def model_list(board: Board, facts: Mapping[str, ModelFacts]) -> list[dict[str, Any]]:
    """One line per model on the board: how to find its page from the index."""
    tasks = model_tasks(board)
    out = []
    for name, entry in board.models.items():
        card, problem = model_card(entry)
        out.append(
            {
                "name": name,
                "page": "models/" + page_name(name),
                "kind": entry.kind,
                "tracks": facts[name].tracks,
                "tasks": sorted(tasks.get(name, set())),
                "authors": card_authors(card) if card else problem,
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
        if t.get("n") is not None and t.get("value") is not None:  # a mean over draws
            value += f" ± {t['sd']:.3f} (n={t['n']} draws)" if t.get("sd") is not None else ""
        elif t.get("ci95"):
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
            [
                "target",
                "study",
                "simulator [95% CI | ± sd over draws]",
                "must be",
                "holds",
                "from",
                "note",
            ],
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
