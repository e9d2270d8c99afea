"""What a registered site board's page shows: its tables, from the site record alone, and how
its ranks compare with the simulated board's (``site.html``)."""

from __future__ import annotations

from typing import Any

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
from benchmark.leaderboard.site_table import cross_board
from benchmark.leaderboard.web.plot import DataTable


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
