"""HTML of every page, from :mod:`.pages` through Jinja2 templates with autoescaping on.

Autoescaping is what keeps a submission's text (card, README, names) text: every value a
template prints is escaped unless it is marked safe, and the only values marked safe here are
the plot specifications, which :func:`json_script` makes safe inside ``<script>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from benchmark.leaderboard.board import Board
from benchmark.leaderboard.web.model_page import model_page
from benchmark.leaderboard.web.pages import (
    BuildInfo,
    calibration_page,
    compare_page,
    index_page,
    page_name,
    throughput_page,
)
from benchmark.leaderboard.web.rows import board_tables, model_facts
from benchmark.leaderboard.web.site_page import site_page

TEMPLATES = Path(__file__).with_name("templates")


def json_script(value: Any) -> Markup:
    """JSON to put between ``<script type="application/json">`` tags: ``<``, ``>`` and ``&``
    are written as ``\\u003c`` etc., so no string inside can close the tag or open a comment."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def sort_key(value: float | str | None) -> str:
    """A cell's ``data-sort``: numbers in Python's shortest round-trip form, text as it is."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(int(value))
    return repr(float(value)) if isinstance(value, int | float) else str(value)


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["json_script"] = json_script
    env.filters["sort_key"] = sort_key
    return env


def _page(template: str, context: Mapping[str, Any], root: str, nav: Mapping[str, Any]) -> str:
    return environment().get_template(template).render(**context, root=root, nav=nav)


def render_site(
    board: Board,
    info: BuildInfo,
    calibration: Mapping[str, Any] | None = None,
    coverage: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Relative path -> HTML of every page, in a fixed order."""
    tables = board_tables(board)
    facts = model_facts(board)
    nav = {
        "sites": [(site.name, "sites/" + page_name(site.name)) for site in board.sites],
        "commit": info.commit,
        "date": info.date,
    }
    pages = {
        "index.html": _page("index.html", index_page(board, info, tables, facts), "", nav),
        "compare.html": _page("compare.html", compare_page(board), "", nav),
        "throughput.html": _page("throughput.html", throughput_page(board), "", nav),
        "calibration.html": _page(
            "calibration.html", calibration_page(calibration, coverage), "", nav
        ),
    }
    for model in board.models:
        context = model_page(board, model, tables, facts)
        pages["models/" + page_name(model)] = _page("model.html", context, "../", nav)
    for site in board.sites:
        pages["sites/" + page_name(site.name)] = _page(
            "site.html", site_page(board, site), "../", nav
        )
    return pages
