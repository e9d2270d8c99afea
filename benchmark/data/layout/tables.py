"""CSV tables read as stripped strings, with the line an editor shows for every row.

Raw cells and line numbers (not pandas dtypes) let each bad cell be reported where it is, and
give the fingerprint the table's content independent of row order and line endings.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.data.layout.problems import Problems


@dataclass
class Table:
    """One CSV table as read: stripped cells with their editor lines, for the row checks."""

    file: str  # relative to the root
    columns: list[str]
    header_line: int
    rows: list[dict[str, str]]
    lines: list[int]
    ragged: set[int] = field(default_factory=set)  # lines whose field count is not the header's

    def has(self, column: str) -> bool:
        return column in self.columns


def read_table(path: Path, rel: str, required: Sequence[str], problems: Problems) -> Table | None:
    """Parse a CSV file into stripped string cells with the editor line of every row.

    ``required[0]`` is the table's id column (named in the problem of a row of wrong width).
    Returns None when the file is missing or cannot be parsed (after reporting it). A table with
    missing columns is returned; the missing columns are reported once each.
    """
    if not path.is_file():
        problems.add(rel, f"missing file; expected a CSV table with columns {', '.join(required)}")
        return None
    records: list[tuple[int, list[str]]] = []  # (editor line where the record starts, cells)
    last = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            for record in reader:
                start, last = last + 1, reader.line_num
                if not any(cell.strip() for cell in record):
                    continue  # a blank line, or one of commas only
                records.append((start, [cell.strip() for cell in record]))
    except UnicodeDecodeError as err:
        problems.add(
            rel,
            f"not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
            f"{err.start}); expected a UTF-8 CSV file",
        )
        return None
    except csv.Error as err:
        problems.add(rel, f"cannot parse as CSV: {err}", row=last + 1)
        return None
    except OSError as err:
        problems.add(rel, f"cannot read: {err.strerror or err}")
        return None
    if not records:
        problems.add(rel, f"empty file; expected a header line with columns {', '.join(required)}")
        return None

    header_line, columns = records[0]
    seen: dict[str, int] = {}
    for index, name in enumerate(columns, start=1):
        if name and name in seen:
            problems.add(
                rel,
                f"column {name!r} appears twice (columns {seen[name]} and {index}); "
                "expected unique column names",
                row=header_line,
                column=name,
            )
        seen.setdefault(name, index)
    for name in required:
        if name not in seen:
            problems.add(
                rel,
                f"missing column {name!r}; expected columns {', '.join(required)}",
                row=header_line,
                column=name,
            )

    rows, lines, ragged = [], [], set()
    width = len(columns)
    for line, cells in records[1:]:
        row: dict[str, str] = {}
        for name, cell in zip(columns, (cells + [""] * width)[:width], strict=True):
            row.setdefault(name, cell)
        if len(cells) != width and (len(cells) < width or any(cells[width:])):
            problems.add(
                rel,
                f"{len(cells)} fields, the header has {width}; expected one value per column "
                "(its values are not checked)",
                row=line,
                id=row.get(required[0]) or None,
            )
            ragged.add(line)
        rows.append(row)
        lines.append(line)
    return Table(rel, columns, header_line, rows, lines, ragged)


def canonical_table(table: Table, key: str) -> bytes:
    """The table as content: columns sorted by name, rows sorted by id, cells stripped."""
    order = sorted(range(len(table.columns)), key=lambda i: (table.columns[i], i))
    names = [table.columns[i] for i in order]
    rows = sorted(table.rows, key=lambda r: r.get(key, ""))
    body = [[row.get(name, "") for name in names] for row in rows]
    return json.dumps(
        {"columns": names, "rows": body}, ensure_ascii=False, separators=(",", ":")
    ).encode()
