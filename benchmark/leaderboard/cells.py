"""How the leaderboard writes a number, an interval, a rank and a cohort (every table alike)."""

from __future__ import annotations

import html
import re
from typing import Any

# What GitHub's Markdown reads as markup inside a line: code spans, links and images, table
# cells, strike-through, escapes; and a heading where a line starts with #. (Emphasis is left
# alone: it only styles text, and identifiers such as samples_per_s stay readable.)
_MARKUP = re.compile(r"([\\`\[\]|~])")

METRIC_TITLE = {
    "auc": "AUC",
    "brier": "Brier",
    "c_index": "Harrell's C",
    "c_index_uno": "Uno's C",
}
TASK_TITLE = {
    "lesion_pd": "Per-lesion progressive disease",
    "os": "Overall survival",
    "pfs": "Progression-free survival",
}


def text(value: Any) -> str:
    """Text a contributor wrote (a model card, a record, a registration) as literal Markdown:
    one line, HTML escaped (``<script>``, ``<img onerror=...>`` show as text), markup escaped
    (``|`` cannot end a table cell, ``[x](y)`` is no link, a leading ``#`` no heading)."""
    line = _MARKUP.sub(r"\\\1", html.escape(" ".join(str(value).split()), quote=False))
    return "\\" + line if line.startswith("#") else line


def num(value: float | None, digits: int = 3) -> str:
    return "n/c" if value is None else f"{value:.{digits}f}"


def ci(interval: tuple[float, float] | list[float] | None, digits: int = 3) -> str:
    if interval is None:
        return ""
    return f"[{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


def mean_sd(value: float | None, sd: float | None) -> str:
    if value is None:
        return "n/c"
    return num(value) + (f" ± {sd:.3f}" if sd is not None else "")


def rank_interval(median: float | None, interval: tuple[float, float] | list[float] | None) -> str:
    """Median rank over the resamples and its 95% interval."""
    if median is None or interval is None:
        return ""
    return f"{median:g} [{interval[0]:g}, {interval[1]:g}]"


def signed(value: float | None, interval: tuple[float, float] | list[float] | None) -> str:
    """A difference with its CI, signs shown; "—" for none (the top model's own row)."""
    if value is None:
        return "—"
    text = f"{value:+.3f}"
    return text + (f" [{interval[0]:+.3f}, {interval[1]:+.3f}]" if interval is not None else "")


def cohort_title(key: str, protocol: dict[str, Any]) -> str:
    if key.endswith("_cv"):
        name = key.removesuffix("_cv").upper().replace("_", "-")
        return f"{name}, {protocol['cv']['n_splits']}-fold cross-validation (`{key}`)"
    return f"{key.upper().replace('_', '-')}, external validation (`{key}`)"


def short_commit(commit: str) -> str:
    """A git commit as tables show it: 12 characters, ``-dirty`` kept."""
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")
