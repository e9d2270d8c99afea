"""A plot of the web board: a plotly.js figure (traces + layout, plain JSON) and the tables of
the numbers it draws, for a reader who cannot see it.

Figures are specified as data, never drawn here: the page hands the JSON to the vendored
plotly.js. Numbers are rounded to 4 decimals (the tables show 3), which keeps pages light and
the bytes the same from one build to the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Colours of a model's seeds, in seed order (plotly's default cycle, so they match its legend).
SEED_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
ORACLE_COLOUR = "#b2182b"
CHANCE_COLOUR = "#999999"
DIGITS = 4


@dataclass(frozen=True)
class DataTable:
    caption: str
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Plot:
    key: str  # unique on its page: the element id is plot-<key>
    title: str
    caption: str  # what is drawn and from which records
    traces: list[dict[str, Any]]
    layout: dict[str, Any]
    tables: list[DataTable] = field(default_factory=list)

    def spec(self) -> dict[str, Any]:
        return {"data": self.traces, "layout": self.layout}


def rounded(values: Iterable[float | None], digits: int = DIGITS) -> list[float | None]:
    return [None if v is None else round(float(v), digits) for v in values]


def f3(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def seed_colour(index: int) -> str:
    return SEED_COLOURS[index % len(SEED_COLOURS)]


def axis_name(kind: str, index: int) -> str:
    """Layout key of the ``index``-th (0-based) x or y axis: ``xaxis``, ``xaxis2``, ..."""
    return f"{kind}axis" + ("" if index == 0 else str(index + 1))


def axis_ref(kind: str, index: int) -> str:
    """Trace reference of that axis: ``x``, ``x2``, ..."""
    return kind + ("" if index == 0 else str(index + 1))


def subplot_title(index: int, text: str) -> dict[str, Any]:
    """An annotation above subplot ``index`` (plotly has no subplot titles of its own)."""
    return {
        "text": text,
        "xref": f"{axis_ref('x', index)} domain",
        "yref": f"{axis_ref('y', index)} domain",
        "x": 0.5,
        "y": 1.0,
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 12},
    }


def grid_layout(
    rows: int,
    columns: int,
    titles: Sequence[str],
    *,
    x_title: str,
    y_title: str,
    height: int,
    unit_range: bool = True,
) -> dict[str, Any]:
    """A layout of ``rows`` x ``columns`` independent subplots, titled, the legend below."""
    layout: dict[str, Any] = {
        "grid": {"rows": rows, "columns": columns, "pattern": "independent"},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 40, "b": 60},
        "legend": {"orientation": "h", "y": -0.18},
        "annotations": [subplot_title(i, t) for i, t in enumerate(titles)],
        "hovermode": "closest",
    }
    for i in range(rows * columns):
        x: dict[str, Any] = {"title": {"text": x_title}}
        y: dict[str, Any] = {"title": {"text": y_title if i % columns == 0 else ""}}
        if unit_range:
            x["range"], y["range"] = [0, 1], [0, 1.02]
        layout[axis_name("x", i)], layout[axis_name("y", i)] = x, y
    return layout
