"""Problems of a dataset, collected rather than raised at the first one.

Every check adds a :class:`Problem` (file, row, column, id, message), so that one run lists
everything there is to fix; :class:`CohortError` carries them to callers that refuse bad data.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_LIST_AT_MOST = 8


@dataclass(frozen=True)
class Problem:
    """One problem of a dataset: ``<file>:<row> [<column>] <id>: <message>``.

    ``file`` is relative to the data root (``pembro_rt/lesions.csv``); ``row`` is the line number
    an editor shows (header = 1, first data row = 2); ``id`` is the patient or lesion concerned.
    """

    file: str
    message: str
    row: int | None = None
    column: str | None = None
    id: str | None = None

    def __str__(self) -> str:
        where = self.file if self.row is None else f"{self.file}:{self.row}"
        if self.column is not None:
            where += f" [{self.column}]"
        if self.id is not None:
            where += f" {self.id}"
        return f"{where}: {self.message}"


class CohortError(ValueError):
    """A dataset with problems; ``problems`` holds all of them, ``str()`` lists one per line."""

    def __init__(self, problems: Iterable[Problem], root: Path | str | None = None) -> None:
        self.problems = list(problems)
        self.root = root
        n = len(self.problems)
        head = f"{n} problem{'' if n == 1 else 's'}" + (f" in {root}" if root is not None else "")
        super().__init__("\n".join([head + ":", *map(str, self.problems)]))


class Problems(list):
    """A list of :class:`Problem` with a shorthand to add one: what every check reports into."""

    def add(
        self,
        file: str,
        message: str,
        row: int | None = None,
        column: str | None = None,
        id: str | None = None,  # noqa: A002 - the field's name
    ) -> None:
        self.append(Problem(file, message, row, column, id))


def some_of(values: Sequence[Any]) -> str:
    """The first few ``values`` joined, then how many more: keeps a problem's message short."""
    shown = ", ".join(str(v) for v in values[:_LIST_AT_MOST])
    more = len(values) - _LIST_AT_MOST
    return shown + (f" (and {more} more)" if more > 0 else "")
