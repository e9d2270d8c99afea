"""The files the calibration commits (coverage.json, draws.json, margin_control.json) stand only
for the simulator version and profile that made them: a new generator or another profile makes
them stale, and they are then ignored rather than misread."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.data.simulator import GENERATOR_NAME, GENERATOR_VERSION


def generator() -> str:
    """The simulator as the committed files name it: name and version."""
    return f"{GENERATOR_NAME} {GENERATOR_VERSION}"


def read_committed(path: Path, profile: str) -> dict[str, Any] | None:
    """``path``'s JSON if it exists and this generator made it on ``profile``; else None."""
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    if payload.get("generator") != generator() or payload.get("profile") != profile:
        return None
    return payload
