"""The deep end-to-end data path: lesion crops -> pinned host buffer -> device -> predictions.

Designed so that the device, not the host, is the bottleneck when the crop cache is warm:

* cached crops are read straight from their content-keyed files (``LesionCrops.cache_path``)
  by a few threads, ahead of the device, and kept in their stored half precision (CT float16,
  mask uint8), so a batch crosses the bus at half the bytes of float32;
* each batch is packed into one of two pinned (page-locked) buffers and copied to the device in
  one ``non_blocking`` copy, so packing batch k+1 overlaps the copy and compute of batch k; a
  buffer is refilled only after its previous copy has finished (a CUDA event);
* casting to float32, 2.5D views and resizing (the submission's ``to_input``) and the memory
  layout happen on the device; the network runs under ``inference_mode`` (and autocast);
* probabilities stay on the device until one copy back at the end.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmark.cohort import Cohort
from benchmark.data.crops import lesion_channels

T = TypeVar("T")
R = TypeVar("R")

# A chunk: lesion ids and their crops [L, C, s, s, s] (any dtype; cast while packing).
Chunk = tuple[list[str], np.ndarray]


@dataclass(frozen=True)
class PatientCrops:
    """Where one patient's cached crops are and which of its labels are wanted, in order."""

    path: Any  # pathlib.Path of the cache file
    lesion_ids: list[str]
    labels: list[int]


def cached_patients(crops: Any, cohorts: Iterable[Cohort]) -> list[PatientCrops]:
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


def missing_cache(crops: Any, cohorts: Iterable[Cohort]) -> int:
    """Patients of ``cohorts`` whose per-lesion cache file (crops or radiomics) is missing."""
    missing = 0
    for cohort in cohorts:
        for pid in dict.fromkeys(str(p) for p in cohort.lesions["patient_id"]):
            path = crops.cache_path(cohort.content_keys[pid])
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
    return item.lesion_ids, lesion_channels(ct, mask, label_channel, spacing).astype(np.float16)


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


__all__ = [
    "PatientCrops",
    "StreamResult",
    "cached_patients",
    "memory_chunks",
    "missing_cache",
    "prefetch",
    "read_patient",
    "stream_predict",
]
