"""The site boards of ``leaderboard/README.md``, and how their ranks compare with the simulated one.

Each registered dataset (``benchmark.leaderboard.datasets``) gets the tables the simulated board
has, from its site record alone; the cross-board table then puts each model's rank on the
simulated board beside its rank on each site board, with Spearman's rank correlation per
(cohort, task): whether the simulated board predicts the order of the models on real data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from scipy.stats import spearmanr

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
    text,
)
from benchmark.leaderboard.datasets import SiteDataset
from benchmark.records.reading import model_config_key


def _cell(section: dict[str, Any], record: dict[str, Any]) -> str:
    rules = record["suppression"]
    cohort = cohort_title(section["cohort"], record["protocol"])
    title = f"#### {cohort} — {TASK_TITLE[section['task']]}"
    if section["suppressed"]:
        return (
            f"{title}\n\nSuppressed: fewer than {rules['min_patients']} patients, or fewer than "
            f"{rules['min_events']} events or non-events.\n"
        )
    metric = METRIC_TITLE[section["metric"]]
    if section["task"] == "lesion_pd":
        counts = f"{section['n']} lesions ({section['n_patients']} patients), "
        counts += f"{section['n_positive']} with PD"
    else:
        counts = f"{section['n']} patients, {section['n_positive']} events"
    lines = [
        title,
        "",
        f"n = {counts}.",
        "",
        f"| # | model | {metric} | 95% CI (pooled) | rank [95% interval] | P(best) "
        "| Δ vs #1 [95% CI] | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in section["standings"]:
        value = "n/c" if s["not_computable"] else mean_sd(s["value"], s["sd"])
        p_best = "" if s.get("p_best") is None else f"{s['p_best']:.2f}"
        lines.append(
            f"| {s['rank'] or ''} | {s['model']} | {value} | {ci(s['ci95'])} "
            f"| {rank_interval(s['rank_median'], s['rank_ci95'])} | {p_best} "
            f"| {signed(s.get('diff_to_best'), s.get('diff_ci95'))} "
            f"| {', '.join(map(str, s['seeds']))} |"
        )
    return "\n".join(lines) + "\n"


def _other_configs(board: Board, site: SiteDataset) -> list[str]:
    """Models the site ran with another model config than the simulated board's records."""
    public = {e.model: model_config_key(e.record["provenance"]["config"]) for e in board.entries}
    return sorted(
        model
        for model, ran in site.record["models"].items()
        if model in public and public[model] != ran["model_config"]
    )


def _site(board: Board, site: SiteDataset) -> str:
    record, reg = site.record, site.registration
    rules = record["suppression"]
    failed = {m: v["failed_seeds"] for m, v in record["models"].items() if v.get("failed_seeds")}
    lines = [
        f"### {text(site.name)}",
        "",
        f"{text(reg['description'])}",
        "",
        f"- **Held by** {text(reg['holder'])}; registered in [datasets/{site.path.name}]"
        f"(datasets/{site.path.name}), site record [datasets/{site.name}.json]"
        f"(datasets/{site.name}.json).",
        f"- **Data** fingerprint `{record['data_fingerprint']}`; protocol "
        f"`conf/protocol/{reg['protocol']}.yaml`; harness commit "
        f"`{short_commit(record['harness_commit'])}`; "
        f"sandbox `{record['sandbox']}`; {len(record['models'])} models.",
        "- **Not re-runnable by CI** (the data stay at the site): validated instead (schema, "
        "fingerprint as registered, the board's protocol, a commit of this repository).",
        f"- Cells with fewer than {rules['min_patients']} patients, or fewer than "
        f"{rules['min_events']} events or non-events, are suppressed.",
    ]
    if failed:
        shown = "; ".join(
            f"{m} seed(s) {', '.join(map(str, seeds))}" for m, seeds in sorted(failed.items())
        )
        lines.append(f"- Runs that did not finish at the site: {shown}.")
    other = _other_configs(board, site)
    if other:
        lines.append(
            f"- Run with another model config than the simulated board's records (their ranks "
            f"compare two versions of the model): {', '.join(other)}."
        )
    parts = ["\n".join(lines) + "\n"]
    parts += [_cell(section, record) for section in record["sections"]]
    return "\n".join(parts)


def spearman(pairs: list[tuple[int, int]]) -> float | None:
    """Spearman's rank correlation of (simulated rank, site rank) pairs; None under 3 pairs or
    when a side has no spread."""
    if len(pairs) < 3:
        return None
    rho = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    return None if rho is None or math.isnan(rho) else float(rho)


@dataclass(frozen=True)
class CrossBoard:
    """Each model's rank on the simulated board and on one site board, per shared cell."""

    cells: list[tuple[str, str]]  # (cohort, task) shown, unsuppressed, on both boards
    models: list[str]  # ranked on either board in some cell, sorted
    ranks: dict[tuple[str, str], dict[str, tuple[int | None, int | None]]]  # cell -> model -> ranks
    rho: dict[tuple[str, str], tuple[float | None, int]]  # cell -> (Spearman, models on both)


def cross_board(board: Board, site: SiteDataset) -> CrossBoard:
    """The ranks of every model on both boards, and their rank correlation per cell."""
    simulated = {
        (sec.cohort, sec.task): {s.model: s.rank for s in sec.standings if s.rank}
        for sec in board.sections
    }
    cells = [
        (s["cohort"], s["task"])
        for s in site.record["sections"]
        if not s["suppressed"] and (s["cohort"], s["task"]) in simulated
    ]
    at_site = {
        cell: {s["model"]: s["rank"] for s in site.section(*cell)["standings"] if s["rank"]}
        for cell in cells
    }
    models = sorted({m for cell in cells for m in {*simulated[cell], *at_site[cell]}})
    ranks = {
        cell: {m: (simulated[cell].get(m), at_site[cell].get(m)) for m in models} for cell in cells
    }
    rho = {}
    for cell in cells:
        pairs = [(a, b) for a, b in ranks[cell].values() if a and b]
        rho[cell] = (spearman(pairs), len(pairs))
    return CrossBoard(cells, models, ranks, rho)


def _cross(board: Board, site: SiteDataset) -> str:
    found = cross_board(board, site)
    if not found.cells:
        return f"### {site.name}\n\nNo (cohort, task) shown on both boards.\n"
    header = " | ".join(f"`{c}` {t}" for c, t in found.cells)
    lines = [
        f"### {site.name}",
        "",
        f"| model | {header} |",
        "|---|" + "---|" * len(found.cells),
    ]
    for model in found.models:
        shown = []
        for cell in found.cells:
            a, b = found.ranks[cell][model]
            shown.append(f"{a or '—'} → {b or '—'}")
        lines.append(f"| {model} | {' | '.join(shown)} |")
    rhos = []
    for cell in found.cells:
        rho, n = found.rho[cell]
        rhos.append("—" if rho is None else f"{rho:+.2f} ({n})")
    lines.append(f"| **Spearman ρ (n models)** | {' | '.join(rhos)} |")
    return "\n".join(lines) + "\n"


def render_sites(board: Board) -> str:
    """The "Site boards" part of the README; a pointer to ``python -m benchmark.site`` if none."""
    if not board.sites:
        return (
            "## Site boards\n\nNo site dataset registered yet: a site holding real cohorts runs "
            "`python -m benchmark.site evaluate`, `export` and `register` "
            "(docs/sites.md).\n"
        )
    parts = [
        "## Site boards\n",
        "Boards of private cohorts, each run by the site that holds them "
        "(`python -m benchmark.site`) and published as aggregates only. Values, CIs, ranks and "
        "differences are computed at the site exactly as above (same protocol, same patient "
        "resamples).\n",
    ]
    parts += [_site(board, site) for site in board.sites]
    parts += [
        "## Simulated board vs site boards\n",
        "Each model's rank (by value, 1 = best) on the simulated board → on the site's board, per "
        "cohort and task; the last row is Spearman's rank correlation over the models ranked on "
        "both (their number in brackets): near +1, the simulated board orders the models as the "
        "real data do.\n",
    ]
    parts += [_cross(board, site) for site in board.sites]
    return "\n".join(parts)
