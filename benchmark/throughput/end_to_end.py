"""End-to-end throughput: lesions (or patients) per second from the cohort on disk to predictions.

Every figure states its per-lesion cache (crops or radiomics features, both content-keyed):

* ``cold``: an empty cache (the configured one when it holds none of these patients yet,
  otherwise a fresh temporary folder): images are loaded, resampled and cropped (or features
  extracted) by the cache object's worker processes, then predicted;
* ``warm``: the cache already holds every patient (it is filled first, untimed, if needed);
  the median of ``repeats`` passes;
* ``in host memory`` (deep models): the cached crops read beforehand, untimed, so that the row
  times packing, the host-to-device copy and the device work only: with ``read_only_s`` of the
  warm row it shows whether the disk cache or the device bounds the warm figure.

Not timed (set-up, reported as ``setup_s``): building the blinded cohort view (tables,
validation, fingerprint: the harness does this once per run, before any model) and, for the
radiomics and clinical models, fitting on the development cohort (``fit_s``).

Deep models are timed on two paths: ``stream`` (:mod:`benchmark.throughput.stream`, the
optimised path) and ``harness-predict`` (the submission's own ``predict``, what
``python -m benchmark`` runs), on the same randomly initialised network.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.cohort import Cohort, LabelledCohort
from benchmark.throughput import stream as streams
from benchmark.throughput.gate import gate_inputs
from benchmark.throughput.modes import Mode
from benchmark.throughput.settings import EndToEndSettings, SweepSettings
from benchmark.throughput.sweep import SweepResult, free_memory
from benchmark.throughput.targets import DeepTarget
from benchmark.throughput.timing import synchronize

log = logging.getLogger(__name__)


def _counts(cohorts: Sequence[Cohort]) -> dict[str, int]:
    return {
        "lesions": sum(len(c.lesions) for c in cohorts),
        "patients": sum(len(c.patients) for c in cohorts),
    }


def _rates(seconds: float, counts: dict[str, int]) -> dict[str, float | None]:
    return {
        "seconds": round(seconds, 4),
        "lesions_per_s": round(counts["lesions"] / seconds, 3) if seconds > 0 else None,
        "patients_per_s": round(counts["patients"] / seconds, 3) if seconds > 0 else None,
    }


def _add_row(out: dict[str, Any], row: dict[str, Any]) -> None:
    """Append an end-to-end row and log it at once, so a run stopped later keeps the figure."""
    out["rows"].append(row)
    log.info(
        "end-to-end %s (%s cache): %s lesions/s, %s s",
        row.get("path"),
        row.get("cache"),
        row.get("lesions_per_s"),
        row.get("seconds"),
    )


def cache_objects(submission: Any) -> dict[str, Any]:
    """The submission's per-lesion caches (crops, radiomics): objects with ``cache_path``."""
    return {
        name: value
        for name, value in vars(submission).items()
        if hasattr(value, "cache_path") and hasattr(value, "cache_dir") and callable(value)
    }


@contextlib.contextmanager
def cache_redirected(objects: Sequence[Any], folder: Path | None) -> Iterator[None]:
    """Point the cache objects at ``folder`` (None: leave them), restore them afterwards.

    The cache key (a hash of the settings) is unchanged: only where the files go differs.
    """
    saved = [(obj, obj.cache_dir) for obj in objects]
    if folder is not None:
        for obj in objects:
            obj.cache_dir = Path(folder)
    try:
        yield
    finally:
        for obj, before in saved:
            obj.cache_dir = before


def _missing(objects: Sequence[Any], cohorts: Sequence[Cohort]) -> int:
    return sum(streams.missing_cache(obj, cohorts) for obj in objects if obj.cache_dir)


@contextlib.contextmanager
def cold_cache(objects: Sequence[Any], cohorts: Sequence[Cohort]) -> Iterator[str]:
    """An empty cache for ``cohorts``: the configured one when none of their patients is in it
    (then the cold pass also warms it), else a temporary folder, removed afterwards."""
    wanted = sum(len(set(map(str, c.lesions["patient_id"]))) for c in cohorts) * len(objects)
    configured = all(obj.cache_dir is not None for obj in objects)
    if objects and configured and _missing(objects, cohorts) == wanted:
        yield "configured (was empty)"
        return
    with (
        tempfile.TemporaryDirectory(prefix="throughput-cold-") as tmp,
        cache_redirected(objects, Path(tmp)),
    ):
        yield "temporary"


def _warm_up_shapes(
    predict: Callable[[torch.Tensor], torch.Tensor],
    target: DeepTarget,
    mode: Mode,
    batches: Sequence[int],
    device: torch.device,
) -> None:
    """Run each batch shape once before timing: compilation and cuDNN autotuning are not
    end-to-end throughput (the model-only rows report them)."""
    for b in dict.fromkeys(batches):
        x = torch.rand((b, *target.crop_shape), device=device)
        predict(target.to_input(x).contiguous(memory_format=mode.format_for(target.ndim)))
    synchronize(device)


def choose_mode(
    sweep: SweepResult | None, settings: EndToEndSettings, batch_sizes: Sequence[int], n: int
) -> tuple[Mode, int, str]:
    """The e2e mode and batch: as configured, or ``auto``: the fastest passing model-only row at
    the largest swept batch that is not larger than the cohort."""
    if settings.batch_size == "auto":
        fitting = [b for b in batch_sizes if b <= max(n, 1)]
        batch = max(fitting) if fitting else min(batch_sizes)
    else:
        batch = int(settings.batch_size)
    best = sweep.best(batch) if sweep else None
    auto = {"precision": "fp32", "layout": "contiguous", "compile": False}
    if best is not None:
        auto = {"precision": best.precision, "layout": best.layout, "compile": best.compile}
    configured = {
        "precision": settings.precision,
        "layout": settings.layout,
        "compile": settings.compile,
    }
    chosen = {k: auto[k] if v == "auto" else v for k, v in configured.items()}
    automatic = [k for k, v in configured.items() if v == "auto"]
    how = "configured"
    if automatic:
        source = "the fastest passing model-only row at this batch" if best else "fp32 default"
        how = f"{', '.join(automatic)} from {source}"
    return Mode(chosen["precision"], chosen["layout"], bool(chosen["compile"])), batch, how


def deep_end_to_end(
    target: DeepTarget,
    cohorts: Sequence[Cohort],
    settings: SweepSettings,
    device: torch.device,
    sweep: SweepResult | None = None,
) -> dict[str, Any]:
    """Cold and warm ``stream`` rows and a warm ``harness-predict`` row for a crop model."""
    e2e = settings.end_to_end
    crops = target.submission.crops
    counts = _counts(cohorts)
    mode, batch, how = choose_mode(sweep, e2e, settings.batch_sizes, counts["lesions"])
    ndim = target.ndim
    reason = mode.not_applicable(device, ndim)
    if reason:
        raise ValueError(f"end_to_end mode {mode.label}: {reason}")
    fmt = mode.format_for(ndim)
    pad = mode.compile
    remainder = counts["lesions"] % batch
    gate_x = gate_inputs(target.input_shape, settings.gate.batch, settings.gate.seed)
    base = target.build(device, calibration=gate_x)
    out: dict[str, Any] = {
        "mode": {
            "precision": mode.precision,
            "layout": mode.layout_for(ndim),
            "compile": mode.compile,
            "batch": batch,
            "chosen": how,
            "pad_last_batch": pad,
        },
        "counts": counts,
        "cohorts": [c.name for c in cohorts],
        "workers": {
            "crop_processes": crops.workers,
            "read_threads": e2e.read_workers,
            "torch_threads": torch.get_num_threads(),
        },
        "rows": [],
    }

    def run_stream(chunks: Any, predict: Any, label: str) -> streams.StreamResult:
        return streams.stream_predict(
            chunks,
            predict,
            target.to_input,
            target.crop_shape,
            batch,
            device,
            fmt,
            pad,
            total=counts["lesions"],
            progress=settings.progress and label == "cold",
        )

    def cached_chunks() -> Iterator[streams.Chunk]:
        items = streams.cached_patients(crops, cohorts)
        return streams.prefetch(
            lambda item: streams.read_patient(item, crops.label_channel),
            items,
            e2e.read_workers,
            depth=4 * e2e.read_workers,
        )

    with mode.active(device):
        predict = mode.prepare(copy.deepcopy(base), ndim, settings.compile_mode)
        _warm_up_shapes(
            predict, target, mode, [batch] + ([remainder] if remainder and not pad else []), device
        )
        if e2e.cold:
            with cold_cache([crops], cohorts) as where:
                clock = time.perf_counter()
                computed = [crops(c) for c in cohorts]
                crops_s = time.perf_counter() - clock
                chunks = (
                    chunk
                    for arrays, ids in computed
                    for chunk in streams.memory_chunks(arrays, ids)
                )
                run_stream(chunks, predict, "cold")
                synchronize(device)
                seconds = time.perf_counter() - clock
                del computed
            _add_row(
                out,
                {
                    "path": "stream",
                    "cache": "cold",
                    "cache_dir": where,
                    **_rates(seconds, counts),
                    "stages": {
                        "crops_s": round(crops_s, 4),
                        "infer_s": round(seconds - crops_s, 4),
                    },
                    "repeats": 1,
                },
            )
        clock = time.perf_counter()
        missing = _missing([crops], cohorts)
        if missing:
            for c in cohorts:
                crops(c)
        prefill_s = time.perf_counter() - clock if missing else 0.0

        warm, result = [], None
        for _ in range(e2e.repeats):
            clock = time.perf_counter()
            result = run_stream(cached_chunks(), predict, "warm")
            synchronize(device)
            warm.append(time.perf_counter() - clock)
        # The host's share: reading the cache alone, then the device path alone from crops
        # already in host memory (pack, copy, compute), to show which one bounds "warm".
        clock = time.perf_counter()
        resident = list(cached_chunks())
        read_only_s = time.perf_counter() - clock
        in_memory = []
        for _ in range(e2e.repeats):
            clock = time.perf_counter()
            run_stream(iter(resident), predict, "memory")
            synchronize(device)
            in_memory.append(time.perf_counter() - clock)
        del resident
        _add_row(
            out,
            {
                "path": "stream",
                "cache": "warm",
                "cache_dir": "configured",
                **_rates(statistics.median(warm), counts),
                "stages": {"read_only_s": round(read_only_s, 4), "prefill_s": round(prefill_s, 4)},
                "repeats": e2e.repeats,
                "all_seconds": [round(s, 4) for s in warm],
                "batches": result.batches if result else 0,
                "padded": result.padded if result else 0,
            },
        )
        _add_row(
            out,
            {
                "path": "stream",
                "cache": "in host memory",
                "cache_dir": None,
                **_rates(statistics.median(in_memory), counts),
                "repeats": e2e.repeats,
                "all_seconds": [round(s, 4) for s in in_memory],
                "note": "crops read beforehand (untimed): packing + copy + device work only",
            },
        )
        del predict
    stream_p = dict(zip(result.lesion_ids, result.probabilities, strict=True)) if result else {}

    if e2e.harness_predict:
        _add_row(out, _harness_row(target, base, cohorts, counts, device, e2e, stream_p))
    free_memory(device)
    return out


def _harness_row(
    target: DeepTarget,
    base: torch.nn.Module,
    cohorts: Sequence[Cohort],
    counts: dict[str, int],
    device: torch.device,
    e2e: EndToEndSettings,
    stream_p: dict[str, float],
) -> dict[str, Any]:
    """The submission's own predict() (warm cache), with the stream path's agreement."""
    submission = target.submission
    settings = getattr(submission, "settings", None)
    row: dict[str, Any] = {"path": "harness-predict", "cache": "warm", "cache_dir": "configured"}
    wanted = getattr(settings, "device", device.type)
    if str(wanted).split(":")[0] != device.type:
        row["skipped"] = f"the submission predicts on {wanted}, this run measures {device.type}"
        return row
    submission.net_ = copy.deepcopy(base)  # the fitted-network attribute predict() uses
    times, predictions = [], {}
    for _ in range(e2e.repeats):
        clock = time.perf_counter()
        for cohort in cohorts:
            predictions.update(submission.predict(cohort)["lesion_pd"].to_dict())
        synchronize(device)
        times.append(time.perf_counter() - clock)
    del submission.net_
    row.update(_rates(statistics.median(times), counts))
    row["repeats"] = e2e.repeats
    row["amp"] = getattr(settings, "amp", None)
    row["batch"] = 2 * settings.batch_size if settings is not None else None
    common = [k for k in stream_p if k in predictions]
    if common:
        diff = np.abs(np.array([stream_p[k] for k in common]) - [predictions[k] for k in common])
        row["max_abs_diff_vs_stream"] = float(diff.max())
    return row


def pipeline_end_to_end(
    submission: Any,
    development: LabelledCohort,
    cohorts: Sequence[Cohort],
    settings: SweepSettings,
) -> dict[str, Any]:
    """Fit on the development cohort (untimed), then time ``predict`` over ``cohorts``, with the
    per-lesion caches (radiomics features) cold and warm; on the CPU."""
    e2e = settings.end_to_end
    counts = _counts(cohorts)
    caches = cache_objects(submission)
    clock = time.perf_counter()
    submission.fit(development.cohort, development.outcomes)
    fit_s = time.perf_counter() - clock
    out: dict[str, Any] = {
        "fit_s": round(fit_s, 3),
        "fitted_on": development.cohort.name,
        "counts": counts,
        "cohorts": [c.name for c in cohorts],
        "workers": {
            **{f"{name}_processes": getattr(obj, "workers", None) for name, obj in caches.items()},
            "predict_n_jobs": 1,  # the forests predict single-threaded (reproducible sums)
        },
        "rows": [],
    }

    def predict_all() -> float:
        began = time.perf_counter()
        for cohort in cohorts:
            submission.predict(cohort)
        return time.perf_counter() - began

    if not caches:
        times = [predict_all() for _ in range(e2e.repeats)]
        _add_row(
            out,
            {
                "path": "submission.predict",
                "cache": "none",
                **_rates(statistics.median(times), counts),
                "lesions_per_s": None,  # no per-lesion work: patients/s is the figure
                "repeats": e2e.repeats,
                "note": "no per-lesion work and no cache: cold and warm are the same",
            },
        )
        return out
    objects = list(caches.values())
    if e2e.cold:
        with cold_cache(objects, cohorts) as where:
            seconds = predict_all()
        _add_row(
            out,
            {
                "path": "submission.predict",
                "cache": "cold",
                "cache_dir": where,
                **_rates(seconds, counts),
                "repeats": 1,
            },
        )
    clock = time.perf_counter()
    prefilled = _missing(objects, cohorts)
    if prefilled:
        predict_all()
    prefill_s = time.perf_counter() - clock if prefilled else 0.0
    times = [predict_all() for _ in range(e2e.repeats)]
    _add_row(
        out,
        {
            "path": "submission.predict",
            "cache": "warm",
            "cache_dir": "configured",
            **_rates(statistics.median(times), counts),
            "repeats": e2e.repeats,
            "all_seconds": [round(s, 4) for s in times],
            "stages": {"prefill_s": round(prefill_s, 4)},
        },
    )
    return out


__all__ = [
    "cache_objects",
    "cache_redirected",
    "choose_mode",
    "cold_cache",
    "deep_end_to_end",
    "pipeline_end_to_end",
]
