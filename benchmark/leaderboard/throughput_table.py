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

from benchmark.records import RecordError, parse_record
from benchmark.schemas import THROUGHPUT_SCHEMA_ID, THROUGHPUT_V1, schema_errors

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


def _cell(value: Any) -> str:
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
    return str(value).replace("|", "\\|").replace("\n", " ")


def _hardware(hardware: dict[str, Any]) -> str:
    """The keys that identify a machine, in a fixed order (the record holds the rest)."""
    shown = [
        f"{k} {_cell(hardware[k])}"
        for k in HARDWARE_ORDER
        if hardware.get(k) not in (None, "") and not isinstance(hardware[k], dict | list)
    ]
    return ", ".join(shown) or "unknown hardware"


def render_throughput(records: list[ThroughputRecord]) -> str:
    """Markdown: one table per record, under a heading naming the model and the hardware."""
    if not records:
        return (
            "No throughput records yet: `python -m benchmark.throughput model=NAME` writes them "
            "into `leaderboard/throughput/`.\n"
        )
    parts = []
    for item in records:
        record = item.record
        rows = record["rows"]
        columns = [c for c in ROW_ORDER if any(c in r for r in rows)]
        columns += sorted({k for r in rows for k in r} - set(columns))
        parts.append(f"#### {record['model']} — {_hardware(record['hardware'])}\n")
        parts.append(f"`{item.path.name}`\n")
        if not rows:
            parts.append("(no rows)\n")
            continue
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
