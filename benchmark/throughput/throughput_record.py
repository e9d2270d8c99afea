"""The throughput record (``throughput.json``), its file name, and the tables printed with it.

Not a result record (``benchmark.records.record_format``, ``benchmark.records.reading``): a
throughput record has its own schema (``nsclc-io-bench/throughput/v1``) and its own folder
(``leaderboard/throughput/``).

A throughput figure is only comparable with its scope (what was timed), precision, layout,
batch, compile state, accuracy gate, hardware and software: all of them travel in the record,
and the suggested file name carries the model, device, torch/CUDA versions and precisions, as
timm names its benchmark files.
"""

from __future__ import annotations

import re
from typing import Any

from tabulate import tabulate

from benchmark.records.schemas import THROUGHPUT_SCHEMA_ID
from benchmark.throughput.measuring import device_slug

THROUGHPUT_SCHEMA = THROUGHPUT_SCHEMA_ID  # one id, owned by the leaderboard's schema

SCOPE_MODEL_ONLY = (
    "network forward + sigmoid on random inputs of the network's real input shape already on "
    "the device, in the row's memory layout, under torch.inference_mode (+ autocast for "
    "bf16/fp16); randomly initialised weights with BatchNorm statistics estimated on the gate "
    "batch (speed does not depend on the weights); warm-up calls, compilation and cuDNN "
    "autotuning excluded (warmup_s, compile_s); synchronised timing (CUDA events on a GPU, "
    "perf_counter on the CPU); samples/s = batch x timed calls / time; latency p50/p90 from "
    "single synchronised calls at batch 1"
)
SCOPE_TRAINING = (
    "the deep baselines' training loop per batch, as fit_binary runs it: the next batch of "
    "random crops of the network's crop shape (drawn, moved to the device, augmented there when "
    "on: in line, or on the CPU ahead in a second thread during the step) + one training step "
    "(to_input, memory layout, forward, BCE, backward, fused AdamW, schedule); the model "
    "config's train settings (batch, augmentation, layout, threads, amp) under the fit's "
    "determinism; warm-up steps excluded; rows timed in interleaved runs, median; "
    "samples/s = batch x steps / time; ratio = as the fit runs / no augmentation"
)
SCOPE_END_TO_END_DEEP = (
    "cohort on disk -> p(PD) per lesion: crops (cold: NIfTI load, RAS, isotropic resampling, "
    "HU window, cube crop, cache write; warm: cached crops read by threads), packing into a "
    "pinned float16 buffer, one non_blocking host->device copy per batch, float32 cast + 2.5D "
    "views/resize (timm25d) + layout on the device, forward + sigmoid, one device->host copy at "
    "the end; the same random network as model-only. harness-predict: the submission's own "
    "predict() on the warm cache. Not timed: the blinded cohort view (setup_s)"
)
SCOPE_END_TO_END_PIPELINE = (
    "cohort on disk -> predictions with submission.predict() on the CPU: per-lesion radiomics "
    "extraction (cold cache) or cached features (warm) + the fitted model's prediction; fitted "
    "first on the development cohort (fit_s, not timed). Not timed: the blinded cohort view"
)
SCOPE_CLINICAL = (
    "no imaging: there is no network, so no model-only figure; end-to-end is "
    "submission.predict() on the patient tables (patients/s), fitted first on the development "
    "cohort (fit_s, not timed)"
)


def file_name(record: dict[str, Any]) -> str:
    """``<model>__<device>__pt<torch>-cu<cuda>__<precisions>[__compile].json``."""
    env = record["hardware"]
    torch_version = str(env.get("torch", "")).split("+")[0]
    cuda = f"-cu{str(env['cuda']).replace('.', '')}" if env.get("cuda") and env.get("gpu") else ""
    rows = record.get("model_only", {}).get("rows") or []
    precisions = list(dict.fromkeys(r["precision"] for r in rows)) or ["e2e"]
    compiled = "__compile" if any(r["compile"] for r in rows) else ""
    model = re.sub(r"[^A-Za-z0-9_.-]+", "-", record["model"])
    return (
        f"{model}__{device_slug(env)}__pt{torch_version}{cuda}"
        f"__{'-'.join(precisions)}{compiled}.json"
    )


MODEL_ONLY_KEYS = (
    "precision",
    "layout",
    "compile",
    "batch",
    "batch_run",
    "status",
    "samples_per_s",
    "latency_p50_ms",
    "latency_p90_ms",
    "peak_memory_mib",
    "compile_s",
    "achieved_tflop_per_s",
    "peak_share",
)


def published_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The flat rows the leaderboard renders (``benchmark/leaderboard/throughput_table.py``):
    every model-only row with its gate flattened, then every end-to-end row, each with its
    ``scope``; the full detail stays under ``model_only`` and ``end_to_end``."""
    rows: list[dict[str, Any]] = []
    for r in record.get("model_only", {}).get("rows") or []:
        gate = r.get("gate") or {}
        rows.append(
            {
                "scope": "model-only",
                **{k: r.get(k) for k in MODEL_ONLY_KEYS},
                "max_abs_diff": gate.get("max_abs_diff"),
                "tolerance": gate.get("tolerance"),
                "gate_passed": gate.get("passed"),
            }
        )
    training = record.get("training") or {}
    for r in training.get("rows") or []:
        rows.append(
            {
                "scope": f"training ({r['path']})",
                "precision": training.get("precision"),
                "layout": training.get("layout"),
                "compile": False,
                "batch": r.get("batch"),
                "status": "ok",
                "samples_per_s": r.get("samples_per_s"),
                "unit": "samples",
            }
        )
    e2e = record.get("end_to_end") or {}
    mode = e2e.get("mode") or {}
    for r in e2e.get("rows") or []:
        if r.get("skipped"):
            continue
        unit = "lesions" if r.get("lesions_per_s") is not None else "patients"
        how = dict(mode)
        if r["path"] == "harness-predict":  # the submission's own settings, not the stream's
            amp = r.get("amp")
            how = {"precision": "fp32" if amp in (None, "off") else amp, "batch": r.get("batch")}
        rows.append(
            {
                "scope": f"end-to-end ({r['path']}, {r['cache']} cache)",
                "precision": how.get("precision"),
                "layout": how.get("layout"),
                "compile": how.get("compile"),
                "batch": how.get("batch"),
                "status": "ok",
                "samples_per_s": r.get(f"{unit}_per_s"),
                "unit": unit,
                "achieved_tflop_per_s": r.get("achieved_tflop_per_s"),
                "peak_share": r.get("peak_share"),
            }
        )
    return rows


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def model_only_table(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        gate = r.get("gate") or {}
        deviation = gate.get("max_abs_diff")
        batch = (
            str(r["batch"])
            if r.get("batch_run") in (None, r["batch"])
            else (f"{r['batch']}->{r['batch_run']}")
        )
        body.append(
            [
                r["precision"],
                r["layout"],
                "yes" if r["compile"] else "no",
                batch,
                r["status"],
                _fmt(r.get("samples_per_s")),
                _fmt(r.get("latency_p50_ms"), 3),
                _fmt(r.get("latency_p90_ms"), 3),
                _fmt(r.get("peak_memory_mib")),
                f"{deviation:.1e}/{gate.get('tolerance'):.0e}" if deviation is not None else "-",
                _fmt(r.get("achieved_tflop_per_s"), 3),
                _fmt(100 * r["peak_share"], 1) if r.get("peak_share") is not None else "-",
                _fmt(r.get("compile_s"), 2),
            ]
        )
    headers = [
        "precision",
        "layout",
        "compile",
        "batch",
        "status",
        "samples/s",
        "p50 ms",
        "p90 ms",
        "peak MiB",
        "max|dp|/tol",
        "TFLOP/s",
        "% peak",
        "compile s",
    ]
    return tabulate(body, headers=headers, disable_numparse=True)


def end_to_end_table(e2e: dict[str, Any]) -> str:
    body = []
    for r in e2e.get("rows", []):
        if r.get("skipped"):
            body.append([r["path"], r.get("cache"), "skipped: " + r["skipped"], "", "", "", ""])
            continue
        stages = ", ".join(f"{k}={v}" for k, v in (r.get("stages") or {}).items())
        body.append(
            [
                r["path"],
                r["cache"],
                _fmt(r.get("lesions_per_s")),
                _fmt(r.get("patients_per_s")),
                _fmt(r.get("ms_per_lesion")),
                _fmt(r.get("seconds"), 3),
                stages,
            ]
        )
    return tabulate(
        body,
        headers=["path", "cache", "lesions/s", "patients/s", "ms/lesion", "seconds", "stages"],
        disable_numparse=True,
    )


def training_summary(training: dict[str, Any]) -> str:
    """The training scope's table and ratio."""
    body = [
        [
            r["path"],
            _fmt(r.get("samples_per_s")),
            _fmt(r.get("ms_per_batch"), 2),
            _fmt(r.get("thread_cpu_ms_per_batch"), 2),
            r.get("steps"),
        ]
        for r in training["rows"]
    ]
    table = tabulate(
        body,
        headers=["path", "samples/s", "ms/batch", "thread CPU ms/batch", "steps"],
        disable_numparse=True,
    )
    load = training.get("load_average") or {}
    threads = f", {training['threads']} torch thread(s)" if training.get("threads") else ""
    return "\n".join(
        [
            f"training (batch {training['batch']}, {training['precision']}/{training['layout']}"
            f"{threads}; input {training['network_input_shape']})",
            table,
            f"with augmentation / without = {training['ratio']:.3f} as the fit runs "
            f"({training['fit_path']}; goal >= {training['goal']['ratio']}), "
            f"{training['ratio_in_line']:.3f} in line; augmentation alone "
            f"{training['augment_ms_per_batch']} ms/batch; load average {load.get('before')} -> "
            f"{load.get('after')} on {load.get('cpus')} CPUs",
        ]
    )


def _ranges(low: list[float], high: list[float], sep: str) -> str:
    """Per axis ``a`` or ``a-b``: ``512x512x48-61``."""
    return sep.join(f"{a:g}" if a == b else f"{a:g}-{b:g}" for a, b in zip(low, high, strict=True))


def summary(record: dict[str, Any]) -> str:
    """The printed report: both tables and the headline ratios."""
    lines = [
        f"throughput: {record['model']} on {record['hardware'].get('gpu') or 'CPU'} "
        f"({record['device']})"
    ]
    model_only = record["model_only"]
    if model_only.get("measured"):
        gflop = record.get("gflop_per_sample")
        lines += [
            "",
            f"model-only (input {record['input']['network_input_shape']}, {gflop} GFLOP/sample)",
            model_only_table(model_only["rows"]),
        ]
        for skipped in model_only.get("skipped", []):
            lines.append(
                f"  skipped {skipped['precision']}/{skipped['layout']}: {skipped['reason']}"
            )
    else:
        lines += ["", f"model-only: not measured ({model_only.get('reason')})"]
    training = record.get("training") or {}
    if training.get("measured"):
        lines += ["", training_summary(training)]
    elif training.get("reason"):
        lines += ["", f"training: not measured ({training['reason']})"]
    e2e = record.get("end_to_end") or {}
    if e2e.get("rows"):
        mode = e2e.get("mode")
        if mode:
            described = (
                f" ({mode['precision']}/{mode['layout']}"
                f"{'/compile' if mode['compile'] else ''}, batch {mode['batch']}; "
                f"{mode['chosen']}; workers {e2e.get('workers')})"
            )
        else:
            described = f" (workers {e2e.get('workers')})"
        lines += ["", "end-to-end" + described]
        grid = e2e.get("images")
        if grid:
            size = _ranges(grid["size_min"], grid["size_max"], "x")
            spacing = _ranges(grid["spacing_mm_min"], grid["spacing_mm_max"], ", ")
            lines.append(f"images {size} voxels, spacing ({spacing}) mm; {e2e['counts']}")
        lines.append(end_to_end_table(e2e))
        if e2e.get("ratio_warm_to_model_only") is not None:
            lines.append(
                f"warm end-to-end / model-only = {e2e['ratio_warm_to_model_only']:.3f}"
                f" (goal >= {e2e['goal']['ratio']} on a GPU; from host memory: "
                f"{e2e.get('ratio_in_memory_to_model_only')}; model-only "
                f"{e2e.get('model_only_samples_per_s')} samples/s at the same mode and batch)"
            )
    elif e2e.get("reason"):
        lines += ["", f"end-to-end: not measured ({e2e['reason']})"]
    return "\n".join(lines)


__all__ = [
    "SCOPE_CLINICAL",
    "SCOPE_END_TO_END_DEEP",
    "SCOPE_END_TO_END_PIPELINE",
    "SCOPE_MODEL_ONLY",
    "SCOPE_TRAINING",
    "THROUGHPUT_SCHEMA",
    "end_to_end_table",
    "file_name",
    "model_only_table",
    "published_rows",
    "summary",
    "training_summary",
]
