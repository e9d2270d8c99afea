"""Write the leaderboard (README + figures) from its records, or check the committed README."""

from __future__ import annotations

import difflib

from benchmark.leaderboard.board import Board, Paths, load_board
from benchmark.leaderboard.figures import draw_figures
from benchmark.leaderboard.table import render_readme
from benchmark.records.reading import Reference
from benchmark.utils.atomic import write_atomic


def regenerate(paths: Paths, reference: Reference, figures: bool = True) -> Board:
    """Rebuild ``paths.readme`` (and the figures) from ``paths.results`` and ``paths.throughput``.

    Raises :class:`~benchmark.leaderboard.store.LeaderboardError` before writing anything when
    a record is refused.
    """
    board = load_board(paths, reference)
    write_atomic(paths.readme, render_readme(board))
    if figures:
        draw_figures(board, paths.figures)
    return board


def check(paths: Paths, reference: Reference) -> list[str]:
    """Unified diff from the committed README to a regeneration; empty when they are identical.

    Figures are not compared (their bytes depend on the matplotlib/freetype build).
    """
    expected = render_readme(load_board(paths, reference))
    actual = paths.readme.read_text(encoding="utf-8") if paths.readme.is_file() else ""
    if actual == expected:
        return []
    return list(
        difflib.unified_diff(
            actual.splitlines(keepends=True),
            expected.splitlines(keepends=True),
            fromfile=f"{paths.readme} (committed)",
            tofile="regenerated",
        )
    )
