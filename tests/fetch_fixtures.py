"""``make fixtures``: the real data the DICOM and radiomics tests read, fetched by pinned hash.

Nothing here is committed and nothing is downloaded while the harness or a test runs: this step
(which ``make test`` runs first) fills a git-ignored folder, ``.fixtures/`` (or
``$NSCLC_IO_BENCH_FIXTURES``), and the tests fail, naming this step, when it has not run.

- pyradiomics 3.0.1's source distribution (PyPI): two real lung CTs with lesion masks
  (``data/lung{1,2}_{image,label}.nrrd``, 512x512 at 0.57/0.63 mm, 5 mm slices) and its published
  reference feature values (``data/baseline/baseline_*.csv``);
- pydicom 3.0.2's own test files (the pinned dependency): two short real CT series, one regular
  (``CT5N``: 5 slices, 2.5 mm) and one with a gap (``CT2``: 202.5 mm between its first two slices);
- dcmqi 1.5.7's ``itkimage2segimage`` (PyPI wheel; the DCMTK-based SEG writer of 3D Slicer and
  the Imaging Data Commons), which writes a third-party SEG of two lesions on ``CT5N``.

From the lung CTs it also writes ``lung_cohorts/``, a dataset in the cohort layout (each cohort
holds both patients, ``<PRT|NIV|MDA>-LUNG1`` and ``-LUNG2``), for ``data=folder`` runs at
clinical resolution (docs/real-ct.md).

Usage: ``python tests/fetch_fixtures.py [FOLDER]``. Downloads are kept in ``FOLDER/downloads``
and checked against their SHA-256 before use; a second run only re-checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path

# Bump when what this script writes changes: conftest.py refuses fixtures of another version.
FIXTURES_VERSION = 2
READY = "READY.json"
REPO = Path(__file__).resolve().parents[1]

PYRADIOMICS = (
    "https://files.pythonhosted.org/packages/1b/35/c7f7fb7affd302fd8107dcee6b6e7aaf3708b75ad69d5f9"
    "a3dfcadb73eaa/pyradiomics-3.0.1.tar.gz",
    "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5",
)
DCMQI = (
    "https://files.pythonhosted.org/packages/de/f7/2f8912f69f44a988bd7b95a6f994a95cbd4aedc68d66595"
    "eaf109c515717/dcmqi-1.5.7-py3-none-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28"
    "_x86_64.whl",
    "587c896658f08ef0acb83e5a4a05e0b336f4c4dd6f24651ca976d6c4c5c697d9",
)
PYRADIOMICS_FILES = [
    f"data/{case}_{part}.nrrd" for case in ("lung1", "lung2") for part in ("image", "label")
] + [
    f"data/baseline/baseline_{name}.csv"
    for name in ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
]
PYDICOM_SERIES = {
    "CT2": {  # a gap: its first slice is 202.5 mm from the next three, 1.25 mm apart
        "77654033/CT2/17106": "678df720411e86df67031c28e16192cd31e2062a3f090d657b9f16ce86db3f1d",
        "77654033/CT2/17136": "5b2d0734bfd387e93aea75cf5cdb73a5670cf5914937de636ff69ef5dc720573",
        "77654033/CT2/17166": "049b221c9b2ee9a4bdd843dddf561dce1db9ad1924f1b83d87bc3c6e74cc9ab7",
        "77654033/CT2/17196": "e4796e51480a8c73ed717c3300d7384ec92d63e6322edd080d33665ab37365f0",
    },
    "CT5N": {  # regular: 5 slices 2.5 mm apart, stored from the top down
        "98892001/CT5N/2062": "27f8126485634a817f0941cc727094e8cfacb18341fbc317d175ff373804118b",
        "98892001/CT5N/2392": "02b0af20eeae95f6d42554c53a630babaa5ed2519657208137d3c7418b6acb81",
        "98892001/CT5N/2693": "6020fdffd513017e7b2d5dc52435b2bbf27209aabee183a30207a149dccecb2e",
        "98892001/CT5N/3023": "4f7f4f2b3c79acdd5e0fc23fdd9f6bae6e6da9dccfadd1f9147b7bff53756653",
        "98892001/CT5N/3353": "5eaa662118b8d87601a14231893cb7ecf1737a434c95120cfb4076cfce667b18",
    },
}
# The two lesions dcmqi encodes on CT5N: label -> (slices, rows, columns) as index ranges.
DCMQI_LESIONS = {1: ((1, 3), (3, 8), (4, 10)), 2: ((3, 4), (10, 13), (9, 12))}


def folder() -> Path:
    """Where the fixtures live: ``$NSCLC_IO_BENCH_FIXTURES`` or ``<repo>/.fixtures``."""
    return Path(os.environ.get("NSCLC_IO_BENCH_FIXTURES") or REPO / ".fixtures")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, sha256: str, downloads: Path) -> Path:
    target = downloads / url.rsplit("/", 1)[1]
    if target.is_file() and _sha256(target) == sha256:
        return target
    downloads.mkdir(parents=True, exist_ok=True)
    print(f"fixtures: downloading {target.name}", file=sys.stderr)
    with (
        tempfile.NamedTemporaryFile(dir=downloads, delete=False) as tmp,
        urllib.request.urlopen(url, timeout=300) as response,
    ):
        shutil.copyfileobj(response, tmp)
    got = _sha256(Path(tmp.name))
    if got != sha256:
        os.unlink(tmp.name)
        raise SystemExit(f"fixtures: {url} has SHA-256 {got}, expected {sha256}; not used")
    os.replace(tmp.name, target)
    return target


def _pyradiomics(out: Path, downloads: Path) -> None:
    archive = _download(*PYRADIOMICS, downloads)
    with tarfile.open(archive) as tar:
        for rel in PYRADIOMICS_FILES:
            member = tar.getmember(f"pyradiomics-3.0.1/{rel}")
            target = out / "pyradiomics" / rel.removeprefix("data/")
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as src, target.open("wb") as dst:  # type: ignore[union-attr]
                shutil.copyfileobj(src, dst)


def _pydicom(out: Path) -> None:
    import pydicom

    base = Path(pydicom.__file__).parent / "data" / "test_files" / "dicomdirtests"
    for series, files in PYDICOM_SERIES.items():
        (out / "pydicom" / series).mkdir(parents=True, exist_ok=True)
        for rel, sha256 in files.items():
            got = _sha256(base / rel)
            if got != sha256:
                raise SystemExit(
                    f"fixtures: pydicom {pydicom.__version__}'s {rel} has SHA-256 {got}, expected "
                    f"{sha256} (pydicom 3.0.2's); install the pinned pydicom"
                )
            shutil.copy(base / rel, out / "pydicom" / series / f"{Path(rel).name}.dcm")


def _dcmqi(out: Path, downloads: Path) -> None:
    import numpy as np
    import SimpleITK as sitk

    wheel = _download(*DCMQI, downloads)
    tool = downloads / "itkimage2segimage"
    if not tool.is_file():
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open("dcmqi/bin/itkimage2segimage") as src,
            tool.open("wb") as dst,
        ):
            shutil.copyfileobj(src, dst)
    tool.chmod(0o755)
    series = out / "pydicom" / "CT5N"
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
    ct = reader.Execute()
    labels = np.zeros(sitk.GetArrayViewFromImage(ct).shape, dtype=np.uint8)
    for label, ((z0, z1), (y0, y1), (x0, x1)) in DCMQI_LESIONS.items():
        labels[z0:z1, y0:y1, x0:x1] = label
    mask = sitk.GetImageFromArray(labels)
    mask.CopyInformation(ct)
    target = out / "dcmqi"
    target.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(mask, str(target / "CT5N_mask.nrrd"))
    segment = {
        "SegmentAlgorithmType": "MANUAL",
        "SegmentedPropertyCategoryCodeSequence": {
            "CodeValue": "49755003",
            "CodingSchemeDesignator": "SCT",
            "CodeMeaning": "Morphologically Altered Structure",
        },
        "SegmentedPropertyTypeCodeSequence": {
            "CodeValue": "4147007",
            "CodingSchemeDesignator": "SCT",
            "CodeMeaning": "Mass",
        },
    }
    meta = {
        "ContentCreatorName": "Reader^One",
        "ClinicalTrialSeriesID": "1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "dcmqi lesions",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "ContentLabel": "LESIONS",
        "ContentDescription": "two lesions written by dcmqi",
        "segmentAttributes": [
            [
                {**segment, "labelID": label, "SegmentLabel": f"lesion {label}"}
                for label in DCMQI_LESIONS
            ]
        ],
    }
    (target / "meta.json").write_text(json.dumps(meta, indent=2))
    subprocess.run(
        [
            str(tool),
            "--inputImageList", str(target / "CT5N_mask.nrrd"),
            "--inputDICOMDirectory", str(series),
            "--inputMetadata", str(target / "meta.json"),
            "--outputDICOM", str(target / "CT5N_seg.dcm"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


LUNG_CASES = ("lung1", "lung2")
COHORT_PREFIX = {"pembro_rt": "PRT", "nivorad": "NIV", "mdacc": "MDA"}
_CLINICAL = {
    "arm": "io", "pdl1_tps": "50", "age": "64", "sex": "M", "ecog": "1", "os_months": "12.0",
    "os_event": "1", "pfs_months": "4.0", "pfs_event": "1",
}  # fmt: skip


def _write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def _lung_cohorts(out: Path) -> None:
    """pyradiomics' lung CTs as a layout dataset: both patients in every cohort (NIfTI)."""
    import SimpleITK as sitk

    root = out / "lung_cohorts"
    shutil.rmtree(root, ignore_errors=True)
    for cohort, prefix in COHORT_PREFIX.items():
        (root / cohort / "images").mkdir(parents=True)
        (root / cohort / "masks").mkdir()
        patients, lesions = [], []
        for pd, case in enumerate(LUNG_CASES):
            pid = f"{prefix}-{case.upper()}"
            image_path = root / cohort / "images" / f"{pid}.nii.gz"
            mask_path = root / cohort / "masks" / f"{pid}.nii.gz"
            first = root / "pembro_rt" / "images" / f"PRT-{case.upper()}.nii.gz"
            if cohort == "pembro_rt":
                image = sitk.ReadImage(str(out / "pyradiomics" / f"{case}_image.nrrd"))
                label = sitk.ReadImage(str(out / "pyradiomics" / f"{case}_label.nrrd"))
                mask = sitk.Cast(label, sitk.sitkUInt8)
                mask.CopyInformation(image)
                sitk.WriteImage(image, str(image_path), useCompression=True)
                sitk.WriteImage(mask, str(mask_path), useCompression=True)
            else:
                shutil.copy(first, image_path)
                shutil.copy(first.parent.parent / "masks" / first.name, mask_path)
            patients.append({"patient_id": pid, **_CLINICAL})
            lesions.append(
                {"lesion_id": f"{pid}-L1", "patient_id": pid, "mask_label": "1", "site": "lung",
                 "irradiated": "0", "pd": str(pd)}
            )  # fmt: skip
        _write_rows(root / cohort / "patients.csv", patients)
        _write_rows(root / cohort / "lesions.csv", lesions)


def build(out: Path) -> None:
    """Fill ``out`` with every fixture, then mark it ready (with each file's SHA-256)."""
    out = Path(out)
    (out / READY).unlink(missing_ok=True)
    downloads = out / "downloads"
    _pyradiomics(out, downloads)
    _pydicom(out)
    _dcmqi(out, downloads)
    _lung_cohorts(out)
    files = {
        str(p.relative_to(out)): _sha256(p)
        for p in sorted(out.rglob("*"))
        if p.is_file() and downloads not in p.parents
    }
    ready = {"version": FIXTURES_VERSION, "files": files}
    (out / READY).write_text(json.dumps(ready, indent=1) + "\n")
    print(f"fixtures: {len(files)} files ready in {out}", file=sys.stderr)


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else folder())
