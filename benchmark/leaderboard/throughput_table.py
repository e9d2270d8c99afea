"""Throughput records (``leaderboard/throughput/*.json``) as README tables.

The records belong to ``benchmark.throughput`` (schema ``nsclc-io-bench/throughput/v1``: ``model``,
``rows``, ``hardware``). The leaderboard renders whatever row keys they carry, known ones first,
and checks only the shape it relies on; an empty or missing folder renders a one-line note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.leaderboard.cells import text
from benchmark.records.reading import RecordError, parse_record
from benchmark.records.schemas import THROUGHPUT_SCHEMA_ID, THROUGHPUT_V1, schema_errors

# Columns shown first, in this order; any other row key follows, sorted.
ROW_ORDER = (
    "scope",
    "precision",
    "layout",
    "memory_format",
    "compile",
    "batch",
    "batch_run",
    "samples_per_s",
    "unit",
    "latency_p50_ms",
    "latency_p90_ms",
    "peak_memory_mib",
    "compile_s",
    "achieved_tflop_per_s",
    "peak_share",
    "max_abs_diff",
    "tolerance",
    "gate_passed",
    "status",
)
HARDWARE_ORDER = ("gpu", "cpu", "device", "driver", "cuda", "cudnn", "torch")


@dataclass(frozen=True)
class ThroughputRecord:
    path: Path
    record: dict[str, Any]

    @property
    def machine(self) -> str:
        """The machine part of the file name (``<model>__<machine>__<torch>__<modes>.json``)."""
        return self.path.name.split("__")[1] if "__" in self.path.name else ""


def load_throughput(folder: Path) -> tuple[list[ThroughputRecord], list[str]]:
    """Records sorted by file name, and the problems (file + reason) of those refused."""
    folder = Path(folder)
    records, problems = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = parse_record(path.read_text(encoding="utf-8"), path)
        except (OSError, RecordError) as err:
            problems.append(str(err))
            continue
        if record.get("schema") != THROUGHPUT_SCHEMA_ID:
            errors = [
                f"unknown schema version {record.get('schema')!r} "
                f"(this leaderboard reads {THROUGHPUT_SCHEMA_ID!r})"
            ]
        else:
            errors = schema_errors(record, THROUGHPUT_V1)
        if errors:
            problems.append(str(RecordError(path, errors)))
        else:
            records.append(ThroughputRecord(path, record))
    return records, problems


def cell_text(value: Any) -> str:
    """A row value as the tables write it (plain text; each format escapes it its own way)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _cell(value: Any) -> str:
    """A value as Markdown: whatever a record holds shows as text."""
    return text(cell_text(value))


def hardware_text(hardware: dict[str, Any]) -> str:
    """The keys that identify a machine, in a fixed order (the record holds the rest)."""
    shown = [
        f"{k} {cell_text(hardware[k])}"
        for k in HARDWARE_ORDER
        if hardware.get(k) not in (None, "") and not isinstance(hardware[k], dict | list)
    ]
    return ", ".join(shown) or "unknown hardware"


def _hardware(hardware: dict[str, Any]) -> str:
    return text(hardware_text(hardware))


def rate_text(row: dict[str, Any] | None) -> str:
    """``1,529 samples/s``; empty without a rate."""
    if row is None or not row.get("samples_per_s"):
        return ""
    return f"{cell_text(row['samples_per_s'])} {row.get('unit') or 'samples'}/s"


def gated_model_only(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Model-only rows that ran and passed the accuracy gate (``status`` ok) with a rate."""
    return [
        r
        for r in rows
        if r.get("scope") == "model-only" and r.get("status") == "ok" and r.get("samples_per_s")
    ]


def end_to_end(rows: list[dict[str, Any]], cache: str) -> dict[str, Any] | None:
    """The first end-to-end row of the submission's own path with the ``cache`` state (cold,
    warm, none); the harness-predict rows time another path."""
    found = [
        r
        for r in rows
        if str(r.get("scope", "")).startswith("end-to-end (")
        and f"{cache} cache)" in r["scope"]
        and "harness-predict" not in r["scope"]
    ]
    return found[0] if found else None


def warm_end_to_end(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """End to end with the per-lesion cache filled, or without one (clinical tables only)."""
    return end_to_end(rows, "warm") or end_to_end(rows, "none")


def row_columns(rows: list[dict[str, Any]]) -> list[str]:
    """The columns of a record's full table: the known keys in :data:`ROW_ORDER`, then any
    other key its rows carry, sorted."""
    columns = [c for c in ROW_ORDER if any(c in r for r in rows)]
    return columns + sorted({k for r in rows for k in r} - set(columns))


def _summary_row(item: ThroughputRecord) -> list[str]:
    """One line per record: the best gated model-only row, batch-1 latency, end-to-end."""
    rows = item.record["rows"]
    model_only = gated_model_only(rows)
    best = max(model_only, key=lambda r: r["samples_per_s"], default=None)
    latencies = [r["latency_p50_ms"] for r in model_only if r.get("latency_p50_ms") is not None]
    warm, cold = warm_end_to_end(rows), end_to_end(rows, "cold")
    # The warm pass against model-only at the same precision, layout and batch.
    same = [
        r
        for r in model_only
        if warm and all(r.get(k) == warm.get(k) for k in ("precision", "layout", "batch"))
    ]
    # The record's own ratio, from unrounded rates; from its rounded rows only where it has none
    # (the two can differ in the last digit shown).
    own = (item.record.get("end_to_end") or {}).get("ratio_warm_to_model_only")
    ratio = ""
    if own is not None:
        ratio = f"{own:.2f}"
    elif same and warm and warm.get("samples_per_s"):
        ratio = f"{warm['samples_per_s'] / same[0]['samples_per_s']:.2f}"
    mode = f" ({best['precision']}, {best['layout']}, batch {best['batch']})" if best else ""
    return [
        _cell(item.record["model"]),
        _cell(item.machine),
        _cell(rate_text(best) + mode) if best else "no network",
        _cell(min(latencies)) if latencies else "",
        _cell(rate_text(cold)),
        _cell(rate_text(warm)),
        ratio,
    ]


def render_throughput(records: list[ThroughputRecord]) -> str:
    """Markdown: a summary line per record, then each record's full table, under a heading
    naming the model and the hardware."""
    if not records:
        return (
            "No throughput records yet: `python -m benchmark.throughput model=NAME` writes them "
            "into `leaderboard/throughput/`.\n"
        )
    header = [
        "model",
        "machine",
        "model-only, best gated row",
        "batch-1 p50 ms",
        "end-to-end, cold cache",
        "end-to-end, warm cache",
        "warm / model-only (same mode)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_summary_row(item)) + " |" for item in records]
    parts = [
        "Model-only: the fastest row that passed the accuracy gate against fp32, inputs already "
        "on the device. End-to-end: from the cohorts on disk to predictions, per-lesion cache "
        "(crops or radiomics) empty (cold) or filled (warm). Every row of every record follows.\n",
        "\n".join(lines) + "\n",
    ]
    for item in records:
        record = item.record
        rows = record["rows"]
        columns = row_columns(rows)
        parts.append(f"#### {_cell(record['model'])} — {_hardware(record['hardware'])}\n")
        parts.append(f"{_cell(item.path.name)}\n")
        if not rows:
            parts.append("(no rows)\n")
            continue
        lines = ["| " + " | ".join(map(_cell, columns)) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
