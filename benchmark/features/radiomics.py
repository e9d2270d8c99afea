"""pyradiomics features per lesion, cached on disk by content key.

:class:`RadiomicsExtractor` turns a :class:`~benchmark.api.cohort.Cohort` into a frame with one row
per lesion (index ``lesion_id``, in the order of ``cohort.lesions``) and one float column per
feature (``original_shape_MeshVolume``, ``original_glcm_Contrast``, ...).

Work is done per patient: the image and mask are read once, then pyradiomics runs once per lesion
with ``label=mask_label``. The result of one patient is cached as one JSON file
``<cache_dir>/<extractor key>/<content key>.json`` holding ``{mask_label: {feature: value}}``; the
extractor key hashes everything that changes the numbers (settings, feature classes, image types,
pyradiomics version, :data:`FEATURE_VERSION`), and the content key (from the cohort) hashes the
patient's image and mask. Files are written atomically, so concurrent or interrupted runs never
leave half a file; a cached patient is never read from disk again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk
from filelock import FileLock
from tqdm.auto import tqdm

from benchmark.api.cohort import Cohort
from benchmark.utils.atomic import unless_read_only, write_atomic
from benchmark.utils.pool import run_jobs

# Bump when this module changes how features are computed or stored: it invalidates every cache.
FEATURE_VERSION = "1"

# Settings this module owns: the label is set per lesion; provenance ("diagnostics_*") is dropped.
_FORCED_SETTINGS = {"additionalInfo": False}
_IGNORED_SETTINGS = ("label",)

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

log = logging.getLogger(__name__)


class RadiomicsExtractionError(RuntimeError):
    """Extraction failed for one lesion; the message names lesion, patient, label and files."""


def _quiet_radiomics() -> None:
    """pyradiomics logs every step at INFO; keep errors only (in this process).

    pykwalify, which validates the extractor's parameters, logs ``validation.valid`` at INFO on
    every construction (once per fit, into the progress bars under Hydra's INFO logging): keep
    its warnings and errors (an invalid schema) only.
    """
    import radiomics

    radiomics.setVerbosity(logging.ERROR)
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    logging.getLogger("pykwalify").setLevel(logging.WARNING)


def _plain(value: Any) -> Any:
    """Plain JSON-able containers from Hydra/OmegaConf nodes, tuples and numpy scalars."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _normalise_feature_classes(
    feature_classes: Mapping[str, Sequence[str] | None] | Sequence[str],
) -> dict[str, list[str]]:
    """``{class: [features]}``; an empty list (or None) enables every feature of that class."""
    if isinstance(feature_classes, str):
        raise TypeError("feature_classes must be a list of class names or a mapping, not a string")
    if isinstance(feature_classes, Mapping):
        items = [(str(k), v) for k, v in feature_classes.items()]
    else:
        items = [(str(k), None) for k in feature_classes]
    out: dict[str, list[str]] = {}
    for name, features in items:
        if name in out:
            raise ValueError(f"feature class {name!r} listed twice")
        if isinstance(features, str):
            features = [features]
        out[name] = [str(f) for f in (features or [])]
    if not out:
        raise ValueError("feature_classes is empty: enable at least one pyradiomics feature class")
    return out


def build_pyradiomics(params: Mapping[str, Any]):
    """A configured ``RadiomicsFeatureExtractor`` with this process's pyradiomics logging quiet;
    ``params`` is pyradiomics' parameter mapping (``setting``, ``featureClass``, ...), which it
    validates (pykwalify)."""
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    _quiet_radiomics()
    with warnings.catch_warnings():  # pykwalify loads pyradiomics' schema with load_module()
        warnings.simplefilter("ignore", DeprecationWarning)
        return RadiomicsFeatureExtractor(json.loads(json.dumps(params)))


# One configured pyradiomics extractor per (process, extractor key): workers reuse it.
_EXTRACTORS: dict[str, Any] = {}


def _extractor_for(key: str, params: Mapping[str, Any]):
    if key not in _EXTRACTORS:
        _EXTRACTORS[key] = build_pyradiomics(params)
    return _EXTRACTORS[key]


def _init_worker() -> None:
    """Pool initialiser: quiet logs; one ITK thread per worker (the pool is the parallelism)."""
    _quiet_radiomics()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


# Input voxels kept around the resampling grid when the image is cropped before B-spline
# resampling. ITK computes B-spline coefficients over the whole input image (a recursive filter,
# pole -0.268): cropping perturbs them near the crop border by ~0.268**margin, 1e-7 at 12 voxels.
_BSPLINE_MARGIN = 12


def _same_geometry(image, mask, tol: float = 1e-4) -> bool:
    return (
        image.GetSize() == mask.GetSize()
        and np.allclose(image.GetSpacing(), mask.GetSpacing(), rtol=0, atol=tol)
        and np.allclose(image.GetOrigin(), mask.GetOrigin(), rtol=0, atol=tol)
        and np.allclose(image.GetDirection(), mask.GetDirection(), rtol=0, atol=tol)
    )


def _crop_margin(settings: Mapping[str, Any], spacing: Sequence[float]) -> np.ndarray | None:
    """Voxels to keep around a lesion's bounding box so that pyradiomics sees what it would see
    in the full image; None where cropping could change the result (no preCrop, no resampling).

    pyradiomics resamples (or, with preCrop, crops) only the bounding box + padDistance, but ITK's
    B-spline interpolator first filters the *whole* image: 75 ms per lesion for a 224x160x50 CT,
    seconds for a 512x512 one. Cropping the image first (mask untouched, so the resampling grid,
    which pyradiomics derives from the mask, is the same) leaves only the lesion's share.
    """
    pad = int(settings.get("padDistance", 5))
    spacing = np.asarray(spacing, dtype=float)
    resampled = settings.get("resampledPixelSpacing")
    if resampled is not None and settings.get("interpolator") is not None:
        target = np.asarray(resampled, dtype=float)
        target = np.where(target == 0, spacing, target)
        if target.shape != spacing.shape:
            return None  # pyradiomics will raise its own dimension error
        return np.ceil((pad + 2) * target / spacing).astype(int) + _BSPLINE_MARGIN
    if settings.get("preCrop", False):
        return np.full(spacing.shape, pad + 1, dtype=int)
    return None


def _crop(image, bbox: Sequence[int], margin: np.ndarray):
    """``image`` restricted to ``bbox`` (SimpleITK index+size) +- margin; physical space kept."""
    nd = image.GetDimension()
    start = np.asarray(bbox[:nd]) - margin
    stop = np.asarray(bbox[:nd]) + np.asarray(bbox[nd:]) + margin
    start = np.maximum(start, 0)
    stop = np.minimum(stop, image.GetSize())
    return sitk.RegionOfInterest(image, (stop - start).tolist(), start.tolist())


def _extract_patient(
    key: str,
    params: Mapping[str, Any],
    patient_id: str,
    image_path: str,
    mask_path: str,
    lesions: Sequence[tuple[str, int]],
) -> dict[str, dict[str, float]]:
    """Features of some lesions of one patient: ``{str(mask_label): {feature: value}}``.

    Top-level so that a process pool can pickle it. Reads the image and mask once.
    """
    extractor = _extractor_for(key, params)
    settings = params["setting"]
    try:
        image = sitk.ReadImage(image_path)
        mask = sitk.ReadImage(mask_path)
    except RuntimeError as exc:
        raise RadiomicsExtractionError(
            f"radiomics: cannot read image/mask of patient {patient_id!r} "
            f"(image {image_path}, mask {mask_path}): {exc}"
        ) from None
    if mask.GetPixelID() != sitk.sitkUInt32:  # pyradiomics would cast it once per lesion
        mask = sitk.Cast(mask, sitk.sitkUInt32)
    shapes = sitk.LabelShapeStatisticsImageFilter()
    shapes.Execute(mask)
    present = {int(lab) for lab in shapes.GetLabels()}
    margin = _crop_margin(settings, image.GetSpacing()) if _same_geometry(image, mask) else None
    resampling = settings.get("resampledPixelSpacing") is not None

    out: dict[str, dict[str, float]] = {}
    for lesion_id, label in lesions:
        label = int(label)
        where = (
            f"lesion {lesion_id!r} (patient {patient_id!r}, mask_label {label}, "
            f"mask {mask_path}, image {image_path})"
        )
        if label not in present:
            raise RadiomicsExtractionError(
                f"radiomics: mask_label {label} of lesion {lesion_id!r} (patient {patient_id!r}) "
                f"is not in mask {mask_path}; labels present: {sorted(present)}"
            )
        lesion_image, lesion_mask = image, mask
        if margin is not None:
            bbox = shapes.GetBoundingBox(label)
            lesion_image = _crop(image, bbox, margin)
            if not resampling:  # no interpolation: crop both, voxel for voxel
                lesion_mask = _crop(mask, bbox, margin)
        try:
            result = extractor.execute(lesion_image, lesion_mask, label=label)
        except Exception as exc:  # pyradiomics raises ValueError/AssertionError/RuntimeError
            raise RadiomicsExtractionError(
                f"radiomics failed for {where}: {type(exc).__name__}: {exc}"
            ) from None
        features = {
            name: float(value)
            for name, value in result.items()
            if not name.startswith("diagnostics_")
        }
        if not features:
            raise RadiomicsExtractionError(f"radiomics returned no features for {where}")
        out[str(label)] = features
    return out


def _compact_json(payload: Any) -> str:
    return json.dumps(payload, indent=None, separators=(",", ":"))


class RadiomicsExtractor:
    """Per-lesion pyradiomics features of a cohort, cached on disk by content key.

    Hydra-instantiable (``conf/radiomics/default.yaml``). ``settings`` are pyradiomics settings
    (``binWidth``, ``resampledPixelSpacing``, ...; ``label`` is ignored: it is set per lesion);
    ``feature_classes`` a list of class names (all features) or ``{class: [features]}``;
    ``image_types`` e.g. ``{"Original": {}}``. ``cache_dir=None`` disables the cache.
    ``workers`` > 1 extracts patients in a process pool; the result does not depend on it.
    """

    def __init__(
        self,
        settings: Mapping,
        feature_classes: Mapping[str, list[str]] | Sequence[str],
        image_types: Mapping,
        cache_dir: str | Path | None,
        workers: int = 1,
        progress: bool = True,
    ) -> None:
        import radiomics

        settings = _plain(settings or {})
        for name in _IGNORED_SETTINGS:
            settings.pop(name, None)
        settings.update(_FORCED_SETTINGS)
        self.settings: dict[str, Any] = settings
        self.feature_classes = _normalise_feature_classes(_plain(feature_classes))
        self.image_types: dict[str, dict[str, Any]] = {
            str(k): dict(v or {}) for k, v in _plain(image_types or {"Original": {}}).items()
        }
        if not self.image_types:
            raise ValueError("image_types is empty: use {'Original': {}} for the unfiltered image")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.workers = max(1, int(workers or 1))
        self.progress = bool(progress)
        self.pyradiomics_version = str(radiomics.__version__)
        # Validate now (pyradiomics' schema), so a bad config fails before any work.
        try:
            build_pyradiomics(self.params)
        except Exception as exc:
            raise ValueError(f"invalid pyradiomics configuration {self.params}: {exc}") from exc
        self._key = self._compute_key()

    @property
    def params(self) -> dict[str, Any]:
        """The pyradiomics parameter dictionary (``setting``/``featureClass``/``imageType``)."""
        return {
            "setting": dict(self.settings),
            "featureClass": {k: list(v) or None for k, v in self.feature_classes.items()},
            "imageType": {k: dict(v) for k, v in self.image_types.items()},
        }

    def _compute_key(self) -> str:
        # Orders of classes and image types are kept (they order the columns); settings sorted.
        spec = {
            "settings": self.settings,
            "feature_classes": [[k, v] for k, v in self.feature_classes.items()],
            "image_types": [[k, v] for k, v in self.image_types.items()],
            "pyradiomics": self.pyradiomics_version,
            "feature_version": FEATURE_VERSION,
        }
        blob = json.dumps(spec, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    @property
    def key(self) -> str:
        """Hash of settings, classes, image types, pyradiomics and FEATURE_VERSION."""
        return self._key

    # -- cache -------------------------------------------------------------------------------

    def cache_path(self, content_key: str) -> Path | None:
        """The cache file of one patient (by its content key), or None without a cache."""
        if self.cache_dir is None:
            return None
        name = str(content_key)
        if not _SAFE_NAME.match(name):
            name = hashlib.sha256(name.encode()).hexdigest()
        return self.cache_dir / self.key / f"{name}.json"

    def _read_cache(self, content_key: str) -> dict[str, dict[str, float]]:
        path = self.cache_path(content_key)
        if path is None or not path.is_file():
            return {}
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("extractor_key") != self.key:
                raise ValueError("extractor key differs")
            features = payload["features"]
            if not isinstance(features, dict):
                raise ValueError("no features mapping")
            return features
        except (OSError, ValueError, KeyError, AttributeError) as exc:
            log.warning("radiomics cache %s unreadable (%s); recomputing", path, exc)
            return {}

    def _write_cache(self, content_key: str, features: dict[str, dict[str, float]]) -> None:
        path = self.cache_path(content_key)
        if path is None:
            return
        with unless_read_only(path.parent):
            self._write_merged(path, content_key, features)

    def _write_merged(
        self, path: Path, content_key: str, features: dict[str, dict[str, float]]
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Read-merge-replace under a lock: a concurrent job may be writing other lesions of the
        # same patient (same content, same key), and neither must drop the other's labels.
        with FileLock(path.parent / ".lock"):
            merged = {**self._read_cache(content_key), **features}
            payload = {
                "extractor_key": self.key,
                "content_key": str(content_key),
                "feature_version": FEATURE_VERSION,
                "pyradiomics": self.pyradiomics_version,
                "features": dict(sorted(merged.items(), key=lambda kv: int(kv[0]))),
            }
            write_atomic(path, _compact_json(payload))
        spec = path.parent / "extractor.json"
        if not spec.exists():
            spec_payload = {
                "key": self.key,
                "pyradiomics": self.pyradiomics_version,
                "feature_version": FEATURE_VERSION,
                "params": self.params,
            }
            write_atomic(spec, _compact_json(spec_payload))

    # -- extraction --------------------------------------------------------------------------

    def __call__(self, cohort: Cohort) -> pd.DataFrame:
        """Features of every lesion of ``cohort``: index lesion_id (cohort order), float columns."""
        lesions = cohort.lesions
        by_patient: dict[str, list[tuple[str, int]]] = {}
        for lesion_id, row in lesions.iterrows():
            by_patient.setdefault(str(row["patient_id"]), []).append(
                (str(lesion_id), int(row["mask_label"]))
            )

        found: dict[str, dict[str, dict[str, float]]] = {}
        todo: list[tuple[str, list[tuple[str, int]]]] = []
        for pid, items in by_patient.items():
            cached = self._read_cache(cohort.content_keys[pid]) if self.cache_dir else {}
            found[pid] = cached
            missing = [(lid, lab) for lid, lab in items if str(lab) not in cached]
            if missing:
                todo.append((pid, missing))

        with tqdm(
            total=len(by_patient),
            initial=len(by_patient) - len(todo),
            desc=f"radiomics {cohort.name}",
            unit="patient",
            disable=not self.progress,
        ) as bar:
            for pid, features in self._run(cohort, todo):
                self._write_cache(cohort.content_keys[pid], features)
                found[pid] = {**found[pid], **features}
                bar.update(1)

        rows: list[dict[str, float]] = []
        columns: list[str] | None = None
        for lesion_id, row in lesions.iterrows():
            pid, label = str(row["patient_id"]), int(row["mask_label"])
            values = found[pid][str(label)]
            if columns is None:
                columns = list(values)
            elif set(values) != set(columns):
                raise RadiomicsExtractionError(
                    f"radiomics: lesion {lesion_id!r} (patient {pid!r}) has a different feature "
                    f"set than the first lesion; clear {self.cache_path(cohort.content_keys[pid])}"
                )
            rows.append(values)
        frame = pd.DataFrame(
            [[float(r[c]) for c in columns] for r in rows] if columns else None,
            index=pd.Index(lesions.index, name="lesion_id"),
            columns=columns or [],
            dtype=float,
        )
        return frame

    def _run(self, cohort: Cohort, todo: list[tuple[str, list[tuple[str, int]]]]):
        """Yield ``(patient_id, features)`` for every patient of ``todo``."""
        if not todo:
            return
        params = self.params
        jobs = [
            (self.key, params, pid, str(cohort.images[pid]), str(cohort.masks[pid]), items)
            for pid, items in todo
        ]
        _quiet_radiomics()  # for jobs run in-process; pool workers: _init_worker
        try:
            for job, features in run_jobs(_extract_patient, jobs, self.workers, _init_worker):
                yield job[2], features
        except BrokenProcessPool as exc:
            raise RadiomicsExtractionError(
                f"radiomics: a worker process died ({exc}). Workers are started with "
                "'spawn': a script that calls the extractor at import time needs an "
                "`if __name__ == '__main__':` guard; out of memory is the other usual cause. "
                "workers=1 runs in-process."
            ) from exc

    def __repr__(self) -> str:
        return (
            f"RadiomicsExtractor(key={self.key}, classes={list(self.feature_classes)}, "
            f"image_types={list(self.image_types)}, workers={self.workers}, "
            f"cache_dir={self.cache_dir})"
        )


__all__ = ["FEATURE_VERSION", "RadiomicsExtractionError", "RadiomicsExtractor"]
