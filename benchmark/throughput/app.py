"""One throughput run: build the model from its config, sweep, time end-to-end, write the record.

What is measured is what the submission declares (``Submission.network``, ``Submission.caches``);
the data and the device are opened as ``python -m benchmark`` opens them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from benchmark.api.cohort import LabelledCohort
from benchmark.api.submission import Submission
from benchmark.data.source import open_dataset
from benchmark.records.record_format import git_commit, record_json
from benchmark.throughput import throughput_record as records
from benchmark.throughput.end_to_end import deep_end_to_end, image_grid, pipeline_end_to_end
from benchmark.throughput.measuring import (
    CPU_METHOD,
    CUDA_METHOD,
    PEAK_SOURCE,
    environment,
    peak_flops,
    peak_table,
)
from benchmark.throughput.model_only import DeepTarget, SweepResult, deep_target, sweep
from benchmark.throughput.settings import SweepSettings
from benchmark.throughput.training import train_settings, training_throughput
from benchmark.utils.atomic import write_atomic
from benchmark.utils.devices import resolve_device
from benchmark.utils.threads import torch_threads

log = logging.getLogger(__name__)

GOAL_RATIO = 0.5  # warm end-to-end at least half of model-only (the goal, on a GPU)


def _load(cfg: DictConfig, names: list[str]) -> tuple[dict[str, LabelledCohort], str]:
    """The labelled cohorts ``names`` of the configured data, as ``python -m benchmark`` opens
    them, and the data's fingerprint."""
    dataset = open_dataset(
        OmegaConf.to_container(cfg.data, resolve=True),
        names,
        Path(cfg.paths.cache_dir),
        workers=cfg.hardware.workers,
    )
    return dataset.load(names), dataset.fingerprint


def _with_flop_rates(e2e: dict[str, Any], flops: int | None, gpu: str | None) -> None:
    for row in e2e.get("rows", []):
        precision = (e2e.get("mode") or {}).get("precision")
        if row["path"] == "harness-predict":  # the submission's own autocast setting
            precision = "fp32" if row.get("amp") in (None, "off") else row.get("amp")
        peak = peak_flops(gpu, precision) if precision else None
        rate = row.get("lesions_per_s")
        if flops and rate:
            row["achieved_tflop_per_s"] = round(flops * rate / 1e12, 6)
            row["peak_share"] = round(flops * rate / peak, 5) if peak else None


def _ratio(e2e: dict[str, Any], result: SweepResult | None) -> None:
    """warm stream lesions/s over model-only samples/s at the same mode and batch."""
    mode = e2e.get("mode") or {}
    reference = None
    if result is not None:
        for row in result.rows:
            if (row.precision, row.layout, row.compile, row.batch) == (
                mode.get("precision"),
                mode.get("layout"),
                mode.get("compile"),
                mode.get("batch"),
            ) and row.samples_per_s:
                reference = row
    rows = {r["cache"]: r for r in e2e.get("rows", []) if r["path"] == "stream"}
    warm = rows.get("warm")
    e2e["goal"] = {"ratio": GOAL_RATIO, "applies_to": "cuda"}
    if reference is None or warm is None or not warm.get("lesions_per_s"):
        e2e["ratio_warm_to_model_only"] = None
        return
    e2e["model_only_samples_per_s"] = reference.samples_per_s
    e2e["ratio_warm_to_model_only"] = round(warm["lesions_per_s"] / reference.samples_per_s, 4)
    resident = rows.get("in host memory") or {}
    if resident.get("lesions_per_s"):
        e2e["ratio_in_memory_to_model_only"] = round(
            resident["lesions_per_s"] / reference.samples_per_s, 4
        )
    e2e["goal"]["met"] = e2e["ratio_warm_to_model_only"] >= GOAL_RATIO


def _training(
    cfg: DictConfig,
    network: Any,
    settings: SweepSettings,
    device: torch.device,
    from_config: bool,
) -> dict[str, Any]:
    """The training scope of a deep model that trains with the shared loop, or why not.

    Its settings are the model config's ``submission.train``; a submission handed in, not built
    from that config, may train otherwise, so it is not measured.
    """
    if not settings.training.enabled:
        return {"measured": False, "reason": "throughput.training.enabled=false"}
    if not from_config:
        return {
            "measured": False,
            "reason": "the submission was not built from the model config: its training "
            "settings are unknown",
        }
    node = OmegaConf.select(cfg, "model.submission.train")
    train = train_settings(OmegaConf.to_container(node, resolve=True) if node else None)
    if train is None:
        return {
            "measured": False,
            "reason": "no shared training settings (model.submission.train): the model's own "
            "training loop is not timed by this scope",
        }
    return training_throughput(network, train, device, settings.training)


def measure(cfg: DictConfig, submission: Submission | None = None) -> dict[str, Any]:
    """The throughput record of ``submission`` (default: built from ``cfg.model``); nothing
    written."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    settings = SweepSettings.from_config(OmegaConf.to_container(cfg.throughput, resolve=True))
    device = resolve_device(settings.device)
    from_config = submission is None
    if submission is None:
        submission = instantiate(cfg.model.submission, seed=cfg.seed, _convert_="all")
    if device.type == "cpu":
        threads = torch_threads(settings.threads)
    else:
        threads = contextlib.nullcontext()
        torch.backends.cudnn.benchmark = True  # autotuned during warm-up, which is not timed
    with threads:
        record = _measure(cfg, submission, settings, device, from_config)
    record["started_at"] = started_at
    record["duration_s"] = round(time.perf_counter() - clock, 2)
    record["suggested_name"] = records.file_name(record)
    return record


def _measure(
    cfg: DictConfig,
    submission: Submission,
    settings: SweepSettings,
    device: torch.device,
    from_config: bool = True,
) -> dict[str, Any]:
    network = submission.network()
    target: DeepTarget | None = (
        deep_target(network, cfg.model.name, seed=int(cfg.seed)) if network else None
    )
    env = environment(device)
    gpu = env.get("gpu")

    record: dict[str, Any] = {
        "schema": records.THROUGHPUT_SCHEMA,
        "model": cfg.model.name,
        "tasks": list(submission.tasks),
        "device": str(device),
        "scope": {},
        "input": None,
        "flops_per_sample": None,
        "gflop_per_sample": None,
        "gate": {
            "batch": settings.gate.batch,
            "seed": settings.gate.seed,
            "tolerance": dict(settings.gate.tolerance),
            "metric": "max |p - p_fp32| over the gate batch, p = sigmoid(logit)",
            "reference": "fp32 (TF32 off), contiguous, eager, same device and weights",
        },
        "model_only": {"measured": False},
        "training": {"measured": False},
        "end_to_end": {},
        "peak_flops": {"source": PEAK_SOURCE, "tflop_per_s": peak_table(gpu)},
    }
    result: SweepResult | None = None
    if target is not None:
        record["scope"]["model_only"] = records.SCOPE_MODEL_ONLY
        record["scope"]["end_to_end"] = records.SCOPE_END_TO_END_DEEP
        record["input"] = {
            "crop_shape": list(target.crop_shape),
            "network_input_shape": list(target.input_shape),
            "random": "uniform [0, 1), float32",
        }
        result = sweep(target, settings, device, gpu)
        record["flops_per_sample"] = result.flops_per_sample
        record["gflop_per_sample"] = (
            round(result.flops_per_sample / 1e9, 4) if result.flops_per_sample else None
        )
        if result.flops_error:
            record["flops_error"] = result.flops_error
        best = result.best()
        record["model_only"] = {
            "measured": True,
            "rows": [r.to_dict() for r in result.rows],
            "skipped": result.skipped,
            "gate_reference_range": list(result.reference_range or []) or None,
            "gate_reference_error": result.reference_error,
            "best": best.to_dict() if best else None,
            "memory_method": CUDA_METHOD if device.type == "cuda" else CPU_METHOD,
        }
        record["training"] = _training(cfg, network, settings, device, from_config)
        if record["training"].get("measured"):
            record["scope"]["training"] = records.SCOPE_TRAINING
    else:
        imaging = bool(submission.caches())  # per-lesion work (radiomics) without a network
        record["model_only"]["reason"] = (
            "no network: a radiomics model's work is feature extraction + a forest on the CPU, "
            "timed end-to-end"
            if imaging
            else "no imaging and no network (clinical tables only)"
        )
        record["scope"]["end_to_end"] = (
            records.SCOPE_END_TO_END_PIPELINE if imaging else records.SCOPE_CLINICAL
        )

    if settings.end_to_end.enabled:
        e2e_settings = settings.end_to_end
        setup = time.perf_counter()
        names = list(dict.fromkeys([cfg.protocol.development, *e2e_settings.cohorts]))
        loaded, fingerprint = _load(cfg, names if target is None else list(e2e_settings.cohorts))
        cohorts = [loaded[n].cohort for n in e2e_settings.cohorts]
        setup_s = time.perf_counter() - setup
        if target is not None:
            e2e = deep_end_to_end(target, cohorts, settings, device, result)
            _with_flop_rates(e2e, result.flops_per_sample if result else None, gpu)
            _ratio(e2e, result)
        else:
            if device.type != "cpu":
                log.info("the %s pipeline runs on the CPU whatever the device", cfg.model.name)
            development = loaded[cfg.protocol.development]
            e2e = pipeline_end_to_end(submission, development, cohorts, settings)
        e2e["images"] = image_grid(cohorts)
        e2e["setup_s"] = round(setup_s, 3)
        e2e["data_fingerprint"] = fingerprint
        record["end_to_end"] = e2e
    else:
        record["end_to_end"] = {"reason": "throughput.end_to_end.enabled=false"}

    record["rows"] = records.published_rows(record)
    record["hardware"] = env
    record["git_commit"] = git_commit()
    record["config"] = OmegaConf.to_container(cfg, resolve=True)
    return record


def measure_and_write(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Measure, write ``throughput.json`` atomically into ``out_dir``, print the tables."""
    record = measure(cfg)
    path = out_dir / "throughput.json"
    write_atomic(path, record_json(record))
    print()
    print(records.summary(record))
    print(f"\nrecord: {path}\nleaderboard name: leaderboard/throughput/{record['suggested_name']}")
    return record


__all__ = ["GOAL_RATIO", "measure", "measure_and_write"]
