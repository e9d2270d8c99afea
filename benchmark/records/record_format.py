"""The result record's format (``result.json``): schema, keys, provenance, how one is written.

The writing side of a record; ``benchmark/records/reading.py`` is the reading side (validate,
compare, aggregate seeds), ``benchmark/throughput/throughput_record.py`` the throughput tool's own
record.

A record is only ever written whole: files are written to a temporary name in the same folder
and renamed, so a failed or interrupted run leaves no half record.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmark.records.cpu import cpu_fields

SCHEMA = "nsclc-io-bench/result/v1"
# The record key of the development cohort's pooled out-of-fold predictions: "pembro_rt_cv".
CV_KEY_SUFFIX = "_cv"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
TRACKED_PACKAGES = (
    "nsclc-io-bench",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "scikit-survival",
    "pyradiomics",
    "SimpleITK",
    "nibabel",
    "torch",
    "torchvision",
    "timm",
    "monai",
    "hydra-core",
)


def git_commit() -> str:
    """HEAD of the project checkout, with ``-dirty`` when files differ from it: tracked files
    changed, or files not yet committed (a new submission folder is code HEAD lacks; ignored
    files such as outputs/ and .cache/ do not count).

    ``leaderboard/`` is left out of the check: it holds results (records, tables, figures), not
    code, and scripts/leaderboard_runs.sh submits each run there before the next one starts.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=normal", "--", ".", ":!leaderboard")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """The machine a record ran on; ``key`` (:mod:`benchmark.records.cpu`) tells CPU types apart for
    numerics, which a deep model's CPU predictions depend on."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        **cpu_fields(),
    }
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages * page_size / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    try:
        import torch

        info["cuda"] = torch.version.cuda
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
            info["gpu_count"] = torch.cuda.device_count()
    except ImportError:
        pass
    return info


def build_record(
    *,
    model: str,
    seed: int,
    metrics: Mapping[str, Any],
    oracle: Mapping[str, Any],
    config: Mapping[str, Any],
    data_fingerprint: str,
    folds: str,
    started_at: str,
    duration_s: float,
    peak_rss_mib: float | None = None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "model": model,
        "seed": seed,
        "metrics": dict(metrics),
        "oracle": dict(oracle),
        "provenance": {
            "git_commit": git_commit(),
            "config": dict(config),
            "data_fingerprint": data_fingerprint,
            "folds": folds,
            "packages": package_versions(),
            "hardware": hardware(),
            "started_at": started_at,
            "duration_s": round(duration_s, 2),
            "peak_rss_mib": peak_rss_mib,
        },
    }


def record_json(record: Mapping[str, Any]) -> str:
    # allow_nan=False: a NaN in a record is a bug upstream, never a number to publish.
    return json.dumps(record, indent=2, sort_keys=False, allow_nan=False) + "\n"
