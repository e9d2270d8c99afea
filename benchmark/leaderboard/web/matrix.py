"""Paired differences between any two models of a (cohort, task): the comparison page's heatmaps.

Each difference is the ranking's own (:meth:`~..ranking.SeedMean.minus`: seed-means on the same
patient resamples, BCa interval), so the column "Δ vs #1" of the index is the first column of
each matrix.
"""

from __future__ import annotations

from benchmark.leaderboard.board import Section
from benchmark.leaderboard.cells import METRIC_TITLE, TASK_TITLE, signed
from benchmark.leaderboard.ranking import Interval
from benchmark.leaderboard.web.plot import DataTable, Plot, rounded

Difference = tuple[float, Interval | None]
# Red below zero (the row model is worse), white at zero, blue above (ColorBrewer RdBu ends).
DIVERGING = [[0.0, "#b2182b"], [0.5, "#f7f7f7"], [1.0, "#2166ac"]]


def ranked_models(section: Section) -> list[str]:
    """The section's models that have a value, in the ranking's order."""
    return [s.model for s in section.standings if s.model in section.means and s.value is not None]


def paired(section: Section, a: str, b: str) -> Difference | None:
    """``a - b`` with its 95% CI; None if either model's metric is not computable."""
    ma, mb = section.means.get(a), section.means.get(b)
    if ma is None or mb is None or ma.reason is not None or mb.reason is not None:
        return None
    return ma.minus(mb)


def difference_heatmap(section: Section, key: str) -> Plot:
    """Row model minus column model, coloured by the difference, its CI on hover."""
    models = ranked_models(section)
    z: list[list[float | None]] = []
    text: list[list[str]] = []
    for row in models:
        found = [None if row == col else paired(section, row, col) for col in models]
        z.append(rounded(d[0] if d else None for d in found))
        text.append([signed(*d) if d else "" for d in found])
    metric = METRIC_TITLE[section.primary]
    title = f"{section.cohort} · {TASK_TITLE[section.task]}: Δ {metric}, row − column"
    trace = {
        "type": "heatmap",
        "x": models,
        "y": models,
        "z": z,
        "text": text,
        "hovertemplate": "%{y} − %{x}: %{text}<extra></extra>",
        "colorscale": DIVERGING,
        "zmid": 0,
        "colorbar": {"title": {"text": f"Δ {metric}"}},
    }
    side = max(260, 26 * len(models) + 160)
    layout = {
        "height": side,
        "margin": {"l": 170, "r": 20, "t": 30, "b": 150},
        "xaxis": {"tickangle": -45, "automargin": True},
        "yaxis": {"autorange": "reversed", "automargin": True},
    }
    table = DataTable(
        f"Δ {metric} (row − column) [95% CI], paired over the same patient resamples",
        ["model", *models],
        [[row, *cells] for row, cells in zip(models, text, strict=True)],
    )
    caption = (
        f"Each cell: the row model's {metric} minus the column model's (seed-means on the same "
        "bootstrap resamples of the patients); blue: the row model is better. Hover for the CI."
    )
    return Plot(key, title, caption, [trace], layout, [table])
