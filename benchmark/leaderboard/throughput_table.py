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
        return text(json.dumps(value, sort_keys=True))
    return text(value)


def _hardware(hardware: dict[str, Any]) -> str:
    """The keys that identify a machine, in a fixed order (the record holds the rest)."""
    shown = [
        f"{k} {_cell(hardware[k])}"
        for k in HARDWARE_ORDER
        if hardware.get(k) not in (None, "") and not isinstance(hardware[k], dict | list)
    ]
    return ", ".join(shown) or "unknown hardware"


def _rate(row: dict[str, Any] | None) -> str:
    if row is None or not row.get("samples_per_s"):
        return ""
    return f"{_cell(row['samples_per_s'])} {_cell(row.get('unit') or 'samples')}/s"


def _summary_row(item: ThroughputRecord) -> list[str]:
    """One line per record: the best gated model-only row, batch-1 latency, end-to-end."""
    rows = item.record["rows"]
    model_only = [
        r
        for r in rows
        if r.get("scope") == "model-only" and r.get("status") == "ok" and r.get("samples_per_s")
    ]
    best = max(model_only, key=lambda r: r["samples_per_s"], default=None)
    latencies = [r["latency_p50_ms"] for r in model_only if r.get("latency_p50_ms") is not None]

    def end_to_end(cache: str) -> dict[str, Any] | None:
        found = [
            r
            for r in rows
            if str(r.get("scope", "")).startswith("end-to-end (")
            and f"{cache} cache)" in r["scope"]
            and "harness-predict" not in r["scope"]
        ]
        return found[0] if found else None

    warm, cold = end_to_end("warm"), end_to_end("cold")
    if warm is None:  # no per-lesion cache (clinical tables only)
        warm = end_to_end("none")
    # The warm pass against model-only at the same precision, layout and batch.
    same = [
        r
        for r in model_only
        if warm and all(r.get(k) == warm.get(k) for k in ("precision", "layout", "batch"))
    ]
    ratio = ""
    if same and warm and warm.get("samples_per_s"):
        ratio = f"{warm['samples_per_s'] / same[0]['samples_per_s']:.2f}"
    mode = ""
    if best:
        mode = (
            f" ({_cell(best['precision'])}, {_cell(best['layout'])}, batch {_cell(best['batch'])})"
        )
    return [
        _cell(item.record["model"]),
        _cell(item.path.name.split("__")[1] if "__" in item.path.name else ""),
        (_rate(best) + mode) if best else "no network",
        _cell(min(latencies)) if latencies else "",
        _rate(cold),
        _rate(warm),
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
        columns = [c for c in ROW_ORDER if any(c in r for r in rows)]
        columns += sorted({k for r in rows for k in r} - set(columns))
        parts.append(f"#### {_cell(record['model'])} — {_hardware(record['hardware'])}\n")
        parts.append(f"{_cell(item.path.name)}\n")
        if not rows:
            parts.append("(no rows)\n")
            continue
        lines = ["| " + " | ".join(map(_cell, columns)) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_cell(r.get(c)) for c in columns) + " |" for r in rows]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)
