"""End-to-end throughput: lesions (or patients) per second from the cohort on disk to predictions.

Every figure states its per-lesion cache (``Submission.caches``: crops or radiomics features,
both content-keyed):

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
models without a network, fitting on the development cohort (``fit_s``).

Deep models (``Submission.network``) are timed on two paths, on the same randomly initialised
network: ``harness-predict`` (``Network.predictor``: the submission's own ``predict``, what
``python -m benchmark`` runs) and ``stream``, the optimised data path, designed so that the
device, not the host, is the bottleneck when the crop cache is warm:

* cached crops are read straight from their content-keyed files (``LesionCrops.cache_path``)
  by a few threads, ahead of the device, and kept in their stored half precision (CT float16,
  mask uint8), so a batch crosses the bus at half the bytes of float32;
* each batch is packed into one of two pinned (page-locked) buffers and copied to the device in
  one ``non_blocking`` copy, so packing batch k+1 overlaps the copy and compute of batch k; a
  buffer is refilled only after its previous copy has finished (a CUDA event);
* casting to float32, 2.5D views and resizing (``Network.to_input``) and the memory layout
  happen on the device; the network runs under ``inference_mode`` (and autocast);
* probabilities stay on the device until one copy back at the end.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.api.cohort import Cohort, LabelledCohort
from benchmark.api.submission import LesionCache, Network, Submission
from benchmark.data.crops import lesion_channels
from benchmark.throughput.gate import gate_inputs
from benchmark.throughput.measuring import synchronize
from benchmark.throughput.model_only import DeepTarget, Mode, SweepResult, free_memory
from benchmark.throughput.settings import EndToEndSettings, SweepSettings

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


# ---- the stream data path -----------------------------------------------------------------------


# A chunk: lesion ids and their crops [L, C, s, s, s] (any dtype; cast while packing).
Chunk = tuple[list[str], np.ndarray]


@dataclass(frozen=True)
class PatientCrops:
    """Where one patient's cached crops are and which of its labels are wanted, in order."""

    path: Path  # the patient's cache file
    lesion_ids: list[str]
    labels: list[int]


def cached_patients(crops: LesionCache, cohorts: Iterable[Cohort]) -> list[PatientCrops]:
    """Every patient of ``cohorts`` with its cache file; lesions in ``cohort.lesions`` order."""
    out = []
    for cohort in cohorts:
        by_patient: dict[str, list[tuple[str, int]]] = {}
        for lesion_id, row in cohort.lesions.iterrows():
            by_patient.setdefault(str(row["patient_id"]), []).append(
                (str(lesion_id), int(row["mask_label"]))
            )
        for pid, lesions in by_patient.items():
            out.append(
                PatientCrops(
                    crops.cache_path(cohort.content_keys[pid]),
                    [lid for lid, _ in lesions],
                    [label for _, label in lesions],
                )
            )
    return out


def missing_cache(cache: LesionCache, cohorts: Iterable[Cohort]) -> int:
    """Patients of ``cohorts`` whose per-lesion cache file (crops or radiomics) is missing."""
    missing = 0
    for cohort in cohorts:
        for pid in dict.fromkeys(str(p) for p in cohort.lesions["patient_id"]):
            path = cache.cache_path(cohort.content_keys[pid])
            missing += path is None or not path.is_file()
    return missing


def read_patient(item: PatientCrops, label_channel: str | None = "distance") -> Chunk:
    """One patient's wanted crops from its cache file, as the network sees them, in the cache's
    half precision (half the bytes to move to the device): [L, C, s, s, s]."""
    with np.load(item.path) as npz:
        labels = npz["labels"]
        where = []
        for label, lesion_id in zip(item.labels, item.lesion_ids, strict=True):
            found = np.flatnonzero(labels == label)
            if not len(found):
                raise KeyError(f"label {label} of lesion {lesion_id!r} not in {item.path}")
            where.append(int(found[0]))
        ct, mask, spacing = npz["ct"][where], npz["mask"][where], float(npz["spacing_mm"])
        distance = npz["distance"][where] if label_channel == "distance" else None
    channels = lesion_channels(ct, mask, label_channel, spacing, distance)
    return item.lesion_ids, channels.astype(np.float16)


def prefetch(fn: Callable[[T], R], items: Iterable[T], workers: int, depth: int) -> Iterator[R]:
    """``map(fn, items)`` in order on ``workers`` threads, at most ``depth`` items ahead
    (file reads and ``np.load`` release the GIL; the bound caps host memory)."""
    items = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending = collections.deque(pool.submit(fn, item) for item in islice(items, depth))
        while pending:
            result = pending.popleft().result()
            following = next(items, None)
            if following is not None:
                pending.append(pool.submit(fn, following))
            yield result


def memory_chunks(crops: np.ndarray, lesion_ids: list[str], size: int = 64) -> Iterator[Chunk]:
    """Crops already in host memory (the cold path: just computed), as chunks."""
    for start in range(0, len(lesion_ids), size):
        yield lesion_ids[start : start + size], crops[start : start + size]


@dataclass
class StreamResult:
    lesion_ids: list[str]
    probabilities: np.ndarray
    batches: int
    padded: int  # samples added to fill the last batch


def stream_predict(
    chunks: Iterable[Chunk],
    predict: Callable[[torch.Tensor], torch.Tensor],
    to_input: Callable[[torch.Tensor], torch.Tensor],
    crop_shape: tuple[int, ...],
    batch: int,
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
    pad: bool = False,
    total: int | None = None,
    progress: bool = False,
) -> StreamResult:
    """Predictions for every lesion of ``chunks``, batch by batch (see the module docstring).

    ``pad`` fills the last batch to ``batch`` (static shapes: a compiled network or tuned cuDNN
    plan is not rebuilt for one odd batch); the padded samples' outputs are dropped.
    """
    pinned = device.type == "cuda"
    buffers = [
        torch.zeros((batch, *crop_shape), dtype=torch.float16, pin_memory=pinned) for _ in range(2)
    ]
    views = [b.numpy() for b in buffers]
    copied: list[Any] = [None, None]
    outputs: list[torch.Tensor] = []
    ids: list[str] = []
    state = {"slot": 0, "fill": 0, "batches": 0, "padded": 0}

    def launch() -> None:
        slot, n = state["slot"], state["fill"]
        run = batch if pad else n
        if run > n:
            buffers[slot][n:run].zero_()
            state["padded"] += run - n
        x = buffers[slot][:run].to(device, non_blocking=True)
        if pinned:
            event = torch.cuda.Event()
            event.record()
            copied[slot] = event
        x = to_input(x.float()).contiguous(memory_format=memory_format)
        outputs.append(predict(x)[:n])
        state["batches"] += 1
        state["fill"] = 0
        state["slot"] = slot = 1 - slot
        if copied[slot] is not None:  # its previous copy must be done before it is refilled
            copied[slot].synchronize()

    with tqdm(total=total, desc="end-to-end", unit="lesion", disable=not progress) as bar:
        for chunk_ids, arrays in chunks:
            start = 0
            while start < len(chunk_ids):
                take = min(batch - state["fill"], len(chunk_ids) - start)
                fill = state["fill"]
                views[state["slot"]][fill : fill + take] = arrays[start : start + take]
                ids.extend(chunk_ids[start : start + take])
                state["fill"] += take
                start += take
                if state["fill"] == batch:
                    launch()
            bar.update(len(chunk_ids))
        if state["fill"]:
            launch()
        probabilities = (
            torch.cat(outputs).float().cpu().numpy() if outputs else np.zeros(0, np.float32)
        )
    return StreamResult(ids, probabilities, state["batches"], state["padded"])


# ---- the end-to-end rows ------------------------------------------------------------------------


def _counts(cohorts: Sequence[Cohort]) -> dict[str, int]:
    return {
        "lesions": sum(len(c.lesions) for c in cohorts),
        "patients": sum(len(c.patients) for c in cohorts),
    }


def _rates(seconds: float, counts: dict[str, int]) -> dict[str, float | None]:
    lesions = counts["lesions"]
    return {
        "seconds": round(seconds, 4),
        "lesions_per_s": round(lesions / seconds, 3) if seconds > 0 else None,
        "patients_per_s": round(counts["patients"] / seconds, 3) if seconds > 0 else None,
        "ms_per_lesion": round(1000 * seconds / lesions, 2) if lesions else None,
    }


def image_grid(cohorts: Sequence[Cohort]) -> dict[str, list[float]]:
    """The range of image sizes and voxel spacings timed (headers only): per-lesion cost of
    radiomics and crops grows with resolution, so a figure is read beside its grid."""
    import SimpleITK as sitk

    sizes, spacings = [], []
    for cohort in cohorts:
        for path in cohort.images.values():
            reader = sitk.ImageFileReader()
            reader.SetFileName(str(path))
            reader.ReadImageInformation()
            sizes.append(reader.GetSize())
            spacings.append(reader.GetSpacing())
    if not sizes:
        return {}
    size, spacing = np.asarray(sizes), np.asarray(spacings)
    return {
        "size_min": size.min(axis=0).tolist(),
        "size_max": size.max(axis=0).tolist(),
        "spacing_mm_min": np.round(spacing.min(axis=0), 4).tolist(),
        "spacing_mm_max": np.round(spacing.max(axis=0), 4).tolist(),
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


@contextlib.contextmanager
def cache_redirected(objects: Sequence[LesionCache], folder: Path | None) -> Iterator[None]:
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


def _missing(objects: Sequence[LesionCache], cohorts: Sequence[Cohort]) -> int:
    return sum(missing_cache(obj, cohorts) for obj in objects if obj.cache_dir)


@contextlib.contextmanager
def cold_cache(objects: Sequence[LesionCache], cohorts: Sequence[Cohort]) -> Iterator[str]:
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
    if target.network is None:
        raise ValueError(f"{target.name}: end-to-end needs the declared network (its crops)")
    e2e = settings.end_to_end
    crops = target.network.crops
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

    def run_stream(chunks: Any, predict: Any, label: str) -> StreamResult:
        return stream_predict(
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

    def cached_chunks() -> Iterator[Chunk]:
        items = cached_patients(crops, cohorts)
        return prefetch(
            lambda item: read_patient(item, crops.label_channel),
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
                chunks = (chunk for arrays, ids in computed for chunk in memory_chunks(arrays, ids))
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
        _add_row(out, _harness_row(target.network, base, cohorts, counts, device, e2e, stream_p))
    free_memory(device)
    return out


def _harness_row(
    network: Network,
    base: torch.nn.Module,
    cohorts: Sequence[Cohort],
    counts: dict[str, int],
    device: torch.device,
    e2e: EndToEndSettings,
    stream_p: dict[str, float],
) -> dict[str, Any]:
    """The submission's own predict() with ``base`` (warm cache), with the stream path's
    agreement: what ``python -m benchmark`` runs on this device."""
    predict = network.predictor(copy.deepcopy(base), str(device))
    row: dict[str, Any] = {"path": "harness-predict", "cache": "warm", "cache_dir": "configured"}
    times, predictions = [], {}
    for _ in range(e2e.repeats):
        clock = time.perf_counter()
        for cohort in cohorts:
            predictions.update(predict(cohort)["lesion_pd"].to_dict())
        synchronize(device)
        times.append(time.perf_counter() - clock)
    row.update(_rates(statistics.median(times), counts))
    row["repeats"] = e2e.repeats
    row["amp"] = network.predict_amp
    row["batch"] = network.predict_batch
    common = [k for k in stream_p if k in predictions]
    if common:
        diff = np.abs(np.array([stream_p[k] for k in common]) - [predictions[k] for k in common])
        row["max_abs_diff_vs_stream"] = float(diff.max())
    return row


def pipeline_end_to_end(
    submission: Submission,
    development: LabelledCohort,
    cohorts: Sequence[Cohort],
    settings: SweepSettings,
) -> dict[str, Any]:
    """Fit on the development cohort (untimed), then time ``predict`` over ``cohorts``, with the
    per-lesion caches (radiomics features) cold and warm; on the CPU."""
    e2e = settings.end_to_end
    counts = _counts(cohorts)
    caches = submission.caches()
    clock = time.perf_counter()
    submission.fit(development.cohort, development.outcomes)
    fit_s = time.perf_counter() - clock
    out: dict[str, Any] = {
        "fit_s": round(fit_s, 3),
        "fitted_on": development.cohort.name,
        "counts": counts,
        "cohorts": [c.name for c in cohorts],
        "workers": {
            **{f"{name}_processes": cache.workers for name, cache in caches.items()},
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
    "Chunk",
    "PatientCrops",
    "StreamResult",
    "cache_redirected",
    "cached_patients",
    "choose_mode",
    "cold_cache",
    "deep_end_to_end",
    "memory_chunks",
    "missing_cache",
    "pipeline_end_to_end",
    "prefetch",
    "read_patient",
    "stream_predict",
]
