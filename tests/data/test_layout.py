"""The cohort layout: validation messages, loading into the blinded view, fingerprint, CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cohort_factory import (
    Case,
    PatientSpec,
    append_row,
    delete_row,
    drop_column,
    get_cell,
    make_dataset,
    read_csv,
    reported,
    rewrite_volume,
    set_cell,
    write_csv,
)

from benchmark.api.cohort import (
    LESION_OUTCOME_COLUMNS,
    PATIENT_OUTCOME_COLUMNS,
    Cohort,
    Outcomes,
)
from benchmark.data import layout
from benchmark.data.layout import CohortError, Problem

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[PatientSpec]]]:
    root = tmp_path_factory.mktemp("template") / "data"
    return root, make_dataset(root)


@pytest.fixture
def data(template, tmp_path: Path) -> Path:
    """A fresh copy of the valid dataset, to break."""
    root = tmp_path / "data"
    shutil.copytree(template[0], root)
    return root


@pytest.fixture
def spec(template) -> dict[str, list[PatientSpec]]:
    return template[1]


# ---------------------------------------------------------------------------------------------
# Problems


def test_problem_str_names_file_row_column_and_id():
    assert str(Problem("a/b.csv", "bad", 3, "col", "X1")) == "a/b.csv:3 [col] X1: bad"
    assert str(Problem("a/b.csv", "bad", 3)) == "a/b.csv:3: bad"
    assert str(Problem("a/m.nii.gz", "bad", id="P1")) == "a/m.nii.gz P1: bad"
    assert str(Problem("x/", "missing")) == "x/: missing"


def test_cohort_error_lists_every_problem():
    problems = [Problem("a.csv", "one", 2), Problem("b.csv", "two", 5, "c")]
    err = CohortError(problems, "/root")
    assert isinstance(err, ValueError)
    assert err.problems == problems
    lines = str(err).splitlines()
    assert lines == ["2 problems in /root:", "a.csv:2: one", "b.csv:5 [c]: two"]


# ---------------------------------------------------------------------------------------------
# A valid dataset


def test_valid_dataset_has_no_problem(data: Path):
    assert layout.validate(data) == []
    result = layout.scan(data)
    assert result.counts == {"pembro_rt": (4, 7), "nivorad": (3, 6), "mdacc": (3, 6)}
    assert result.fingerprint is not None and result.fingerprint.startswith("sha256:")


def test_validate_reports_progress_when_asked(data: Path, capsys):
    assert layout.validate(data, ("mdacc",), progress=True) == []
    assert "validate:" in capsys.readouterr().err
    assert layout.validate(data, ("mdacc",)) == []
    assert capsys.readouterr().err == ""


def test_load_gives_blinded_tables_and_outcomes(data: Path, spec, tmp_path: Path):
    cohort, outcomes = layout.load(data, "pembro_rt", view_dir=tmp_path / "view")
    assert isinstance(cohort, Cohort) and isinstance(outcomes, Outcomes)
    patients, lesions = spec["pembro_rt"], [x for p in spec["pembro_rt"] for x in p.lesions]

    assert cohort.patients.index.name == "patient_id"
    assert list(cohort.patients.index) == [p.patient_id for p in patients]
    assert list(cohort.patients.columns) == ["arm", "pdl1_tps", "age", "sex", "ecog"]
    assert not set(PATIENT_OUTCOME_COLUMNS) & set(cohort.patients.columns)
    assert cohort.lesions.index.name == "lesion_id"
    assert list(cohort.lesions.columns) == ["patient_id", "mask_label", "site", "irradiated"]
    assert not set(LESION_OUTCOME_COLUMNS) & set(cohort.lesions.columns)

    assert cohort.patients["pdl1_tps"].dtype == np.float64
    assert cohort.lesions["mask_label"].dtype == np.int64
    assert cohort.lesions["irradiated"].dtype == np.int64
    assert pd.api.types.is_string_dtype(cohort.patients["arm"])
    expected_tps = [np.nan if p.pdl1_tps is None else p.pdl1_tps for p in patients]
    np.testing.assert_array_equal(cohort.patients["pdl1_tps"].to_numpy(), expected_tps)
    assert cohort.patients["arm"].tolist() == [p.arm for p in patients]
    assert cohort.lesions["patient_id"].tolist() == [x.patient_id for x in lesions]
    assert cohort.lesions["mask_label"].tolist() == [x.mask_label for x in lesions]
    assert cohort.lesions["irradiated"].tolist() == [x.irradiated for x in lesions]

    assert outcomes.lesion_pd.dtype == np.int64
    assert outcomes.lesion_pd.to_dict() == {x.lesion_id: x.pd for x in lesions}
    for endpoint in ("os", "pfs"):
        frame = getattr(outcomes, endpoint)
        assert list(frame.columns) == ["time", "event"]
        assert frame["event"].dtype == bool and frame["time"].dtype == np.float64
        assert frame["time"].tolist() == [getattr(p, f"{endpoint}_months") for p in patients]
        assert frame["event"].tolist() == [bool(getattr(p, f"{endpoint}_event")) for p in patients]

    keys = cohort.content_keys
    assert set(keys) == {p.patient_id for p in patients}
    assert all(k.startswith("sha256:") for k in keys.values()) and len(set(keys.values())) == 4
    sub = cohort.subset(["PR002"])
    assert sub.lesion_ids == ["PR002-L1", "PR002-L2"]
    assert outcomes.subset(sub).lesion_pd.index.tolist() == sub.lesion_ids


def test_load_sorts_by_id_whatever_the_row_order(data: Path, tmp_path: Path):
    path = data / "pembro_rt" / "lesions.csv"
    rows = read_csv(path)
    write_csv(path, [rows[0], *reversed(rows[1:])])
    cohort, outcomes = layout.load(data, "pembro_rt", view_dir=tmp_path / "view")
    assert cohort.lesion_ids == sorted(cohort.lesion_ids)
    assert outcomes.lesion_pd.index.tolist() == cohort.lesion_ids


def test_view_holds_links_to_images_and_no_table(data: Path, tmp_path: Path):
    view_dir = tmp_path / "view"
    cohort, _ = layout.load(data, "nivorad", view_dir=view_dir)
    folder = view_dir / "nivorad"
    assert sorted(p.name for p in folder.iterdir()) == ["images", "masks"]
    assert not [p for p in view_dir.rglob("*") if p.suffix.lower() == ".csv"]
    for pid in cohort.patient_ids:
        for kind, paths in (("images", cohort.images), ("masks", cohort.masks)):
            path = paths[pid]
            assert path.parent == (folder / kind).resolve()
            original = data / "nivorad" / kind / f"{pid}.nii.gz"
            assert path.read_bytes() == original.read_bytes()
            assert os.path.samefile(path, original)  # a hard link, same file system here
            for parent in path.parents:  # walking up never meets a table
                assert not (parent / "patients.csv").exists()
                assert not (parent / "lesions.csv").exists()


def test_view_is_reused_and_rebuilt_when_the_data_change(data: Path, tmp_path: Path):
    view_dir = tmp_path / "view"
    cohort, _ = layout.load(data, "mdacc", view_dir=view_dir)
    inode = (view_dir / "mdacc").stat().st_ino
    layout.load(data, "mdacc", view_dir=view_dir)
    assert (view_dir / "mdacc").stat().st_ino == inode  # reused as is

    source = data / "mdacc" / "images" / "MD001.nii.gz"
    replacement = tmp_path / "new.nii.gz"
    shutil.copy(source, replacement)
    rewrite_volume(replacement, lambda a: a + 1)
    os.replace(replacement, source)  # a new file (new inode), as many tools write
    again, _ = layout.load(data, "mdacc", view_dir=view_dir)
    assert again.images["MD001"].read_bytes() == source.read_bytes()
    assert again.content_keys["MD001"] != cohort.content_keys["MD001"]
    assert again.content_keys["MD002"] == cohort.content_keys["MD002"]
    assert not [p for p in view_dir.iterdir() if p.name.startswith(".mdacc.") and p.is_dir()]


def test_view_with_a_stray_file_is_rebuilt(data: Path, tmp_path: Path):
    view_dir = tmp_path / "view"
    layout.load(data, "mdacc", view_dir=view_dir)
    (view_dir / "mdacc" / "images" / "lesions.csv").write_text("lesion_id,pd\n")
    layout.load(data, "mdacc", view_dir=view_dir)
    assert not list(view_dir.rglob("*.csv"))


def test_load_refuses_a_view_dir_inside_the_data(data: Path):
    with pytest.raises(ValueError, match="inside the data root"):
        layout.load(data, "mdacc", view_dir=data / "mdacc" / "view")
    assert not (data / "mdacc" / "view").exists()


def test_load_of_a_broken_cohort_raises_and_creates_nothing(data: Path, tmp_path: Path):
    set_cell(data / "pembro_rt" / "patients.csv", 3, "os_months", "-1")
    set_cell(data / "pembro_rt" / "lesions.csv", 2, "pd", "7")
    view_dir = tmp_path / "view"
    with pytest.raises(CohortError) as caught:
        layout.load(data, "pembro_rt", view_dir=view_dir)
    assert len(caught.value.problems) == 2
    assert "pembro_rt/patients.csv:3 [os_months] PR002" in str(caught.value)
    assert "pembro_rt/lesions.csv:2 [pd] PR001-L1" in str(caught.value)
    assert not view_dir.exists()
    # another, valid cohort of the same root loads: only the asked cohort is checked
    assert layout.load(data, "nivorad", view_dir=view_dir)[0].name == "nivorad"
    assert sorted(p.name for p in view_dir.iterdir() if not p.name.startswith(".")) == ["nivorad"]


def test_load_truth(data: Path, spec):
    truth = layout.load_truth(data, "nivorad")
    assert truth is not None
    lesions = [x for p in spec["nivorad"] for x in p.lesions]
    assert truth.lesion_p_pd.to_dict() == {x.lesion_id: x.p_pd for x in lesions}
    assert list(truth.patient_lp.columns) == ["os", "pfs"]
    assert truth.patient_lp["os"].to_dict() == {p.patient_id: p.lp_os for p in spec["nivorad"]}
    shutil.rmtree(data / "nivorad" / "truth")
    assert layout.load_truth(data, "nivorad") is None


def test_load_truth_with_a_bad_value_raises(data: Path):
    set_cell(data / "mdacc" / "truth" / "lesions.csv", 2, "p_pd", "1.5")
    with pytest.raises(CohortError, match=r"mdacc/truth/lesions.csv:2 \[p_pd\] MD001-L1"):
        layout.load_truth(data, "mdacc")


# ---------------------------------------------------------------------------------------------
# Broken datasets: one case per kind of problem, each naming file, row, column and id


PR = "pembro_rt"
P_CSV, L_CSV = f"{PR}/patients.csv", f"{PR}/lesions.csv"


def _cell(name: str, line: int, column: str, value: str) -> Callable[[Path], None]:
    return lambda root: set_cell(root / PR / name, line, column, value)


def _zero_label(label: int, pid: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        rewrite_volume(root / PR / "masks" / f"{pid}.nii.gz", lambda a: np.where(a == label, 0, a))

    return mutate


def _geometry(**geometry) -> Callable[[Path], None]:
    return lambda root: rewrite_volume(root / PR / "masks" / "PR001.nii.gz", **geometry)


def _bytes(rel: str, edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        path = root / rel
        path.write_bytes(edit(path.read_bytes()))

    return mutate


def _pfs_after_os(root: Path) -> None:
    path = root / PR / "patients.csv"
    os_months = float(get_cell(path, 2, "os_months"))
    set_cell(path, 2, "pfs_months", f"{os_months + 5:g}")


def _delete_lesion_row_4(root: Path) -> None:
    delete_row(root / L_CSV, 4)
    delete_row(root / PR / "truth" / "lesions.csv", 4)  # the truth row goes with it


def _duplicate_patient(root: Path) -> None:
    path = root / PR / "patients.csv"
    append_row(path, read_csv(path)[1])


def _float_mask(root: Path) -> None:
    path = root / PR / "masks" / "PR001.nii.gz"
    rewrite_volume(path, lambda a: np.where(a == 1, 1.0, 0.0).astype(np.float32) + (a == 1) * 0.5)


def _size(root: Path) -> None:
    import SimpleITK as sitk

    path = root / PR / "masks" / "PR001.nii.gz"
    image = sitk.ReadImage(str(path))
    bigger = sitk.ConstantPad(image, (0, 0, 0), (0, 0, 1))
    sitk.WriteImage(bigger, str(path), useCompression=True)


CASES = {
    "missing column (patients)": Case(
        lambda r: drop_column(r / P_CSV, "pfs_event"),
        P_CSV,
        "missing column 'pfs_event'",
        1,
        "pfs_event",
    ),
    "missing column (lesions)": Case(
        lambda r: drop_column(r / "nivorad/lesions.csv", "mask_label"),
        "nivorad/lesions.csv",
        "missing column 'mask_label'",
        1,
        "mask_label",
    ),
    "duplicate patient id": Case(
        _duplicate_patient,
        P_CSV,
        "duplicate patient_id 'PR001', also on line 2",
        6,
        "patient_id",
        "PR001",
    ),
    "duplicate lesion id": Case(
        _cell("lesions.csv", 4, "lesion_id", "PR002-L1"),
        L_CSV,
        "duplicate lesion_id 'PR002-L1', also on line 3",
        4,
        "lesion_id",
        "PR002-L1",
    ),
    "empty lesion id": Case(
        _cell("lesions.csv", 2, "lesion_id", ""),
        L_CSV,
        "empty lesion_id",
        2,
        "lesion_id",
    ),
    "mask_label absent from the mask": Case(
        _zero_label(2, "PR002"),
        L_CSV,
        "mask_label 2 is not in the mask pembro_rt/masks/PR002.nii.gz (labels present: 1)",
        4,
        "mask_label",
        "PR002-L2",
    ),
    "mask label without a lesion row": Case(
        _delete_lesion_row_4,
        f"{PR}/masks/PR002.nii.gz",
        "label 2 in the mask has no row in pembro_rt/lesions.csv",
        id="PR002",
    ),
    "mask_label not a positive integer": Case(
        _cell("lesions.csv", 2, "mask_label", "0"),
        L_CSV,
        "mask_label '0' is not a positive integer",
        2,
        "mask_label",
        "PR001-L1",
    ),
    "mask_label repeated within a patient": Case(
        _cell("lesions.csv", 4, "mask_label", "1"),
        L_CSV,
        "mask_label 1 of patient PR002 is also used by lesion PR002-L1 (line 3)",
        4,
        "mask_label",
        "PR002-L2",
    ),
    "geometry: spacing": Case(
        _geometry(spacing=(0.8, 0.8, 3.0)),
        f"{PR}/masks/PR001.nii.gz",
        "spacing (0.8, 0.8, 3) differs from the image's (0.8, 0.8, 2.5)",
        id="PR001",
    ),
    "geometry: origin": Case(
        _geometry(origin=(0.0, 0.0, 0.0)),
        f"{PR}/masks/PR001.nii.gz",
        "origin (0, 0, 0) differs from the image's (-8, -8, -12.5)",
        id="PR001",
    ),
    "geometry: direction": Case(
        _geometry(direction=(-1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)),
        f"{PR}/masks/PR001.nii.gz",
        "direction (-1, 0, 0, 0, 1, 0, 0, 0, 1) differs",
        id="PR001",
    ),
    "geometry: size": Case(
        _size,
        f"{PR}/masks/PR001.nii.gz",
        "size (20, 20, 11) differs from the image's (20, 20, 10)",
        id="PR001",
    ),
    "negative time": Case(
        _cell("patients.csv", 3, "os_months", "-2"),
        P_CSV,
        "os_months -2 is not > 0",
        3,
        "os_months",
        "PR002",
    ),
    "missing time": Case(
        _cell("patients.csv", 4, "pfs_months", ""),
        P_CSV,
        "missing time",
        4,
        "pfs_months",
        "PR003",
    ),
    "time not a number": Case(
        _cell("patients.csv", 4, "os_months", "soon"),
        P_CSV,
        "os_months 'soon' is not a number",
        4,
        "os_months",
        "PR003",
    ),
    "event not 0/1": Case(
        _cell("patients.csv", 5, "os_event", "2"),
        P_CSV,
        "os_event '2' is not an event flag; expected 0 (censored) or 1 (event)",
        5,
        "os_event",
        "PR004",
    ),
    "pfs after os": Case(
        _pfs_after_os,
        P_CSV,
        "exceeds os_months",
        2,
        "pfs_months",
        "PR001",
    ),
    "arm unknown": Case(
        _cell("patients.csv", 2, "arm", "chemo"),
        P_CSV,
        "arm 'chemo' is not one of io, io+sabr",
        2,
        "arm",
        "PR001",
    ),
    "pdl1 out of range": Case(
        _cell("patients.csv", 2, "pdl1_tps", "120"),
        P_CSV,
        "pdl1_tps '120' is out of range",
        2,
        "pdl1_tps",
        "PR001",
    ),
    "pdl1 not a number": Case(
        _cell("patients.csv", 2, "pdl1_tps", "high"),
        P_CSV,
        "pdl1_tps 'high'",
        2,
        "pdl1_tps",
        "PR001",
    ),
    "ecog out of range": Case(
        _cell("patients.csv", 2, "ecog", "7"),
        P_CSV,
        "ecog '7' is not an ECOG score",
        2,
        "ecog",
        "PR001",
    ),
    "pd not 0/1": Case(
        _cell("lesions.csv", 3, "pd", "yes"),
        L_CSV,
        "pd 'yes' is not 0 or 1",
        3,
        "pd",
        "PR002-L1",
    ),
    "irradiated not 0/1": Case(
        _cell("lesions.csv", 5, "irradiated", "2"),
        L_CSV,
        "irradiated '2' is not 0 or 1",
        5,
        "irradiated",
        "PR003-L1",
    ),
    "lesion of an unknown patient": Case(
        _cell("lesions.csv", 2, "patient_id", "PR999"),
        L_CSV,
        "lesion PR001-L1 of unknown patient 'PR999'",
        2,
        "patient_id",
        "PR001-L1",
        count=2,  # and PR001's label 1 is left without a row: both are true
    ),
    "patient without image": Case(
        lambda r: (r / PR / "images" / "PR003.nii.gz").unlink(),
        P_CSV,
        "no image file; expected pembro_rt/images/PR003.nii.gz",
        4,
        None,
        "PR003",
    ),
    "patient without mask": Case(
        lambda r: (r / PR / "masks" / "PR001.nii.gz").unlink(),
        P_CSV,
        "no mask file; expected pembro_rt/masks/PR001.nii.gz",
        2,
        None,
        "PR001",
    ),
    "image of no patient": Case(
        lambda r: shutil.copy(r / PR / "images" / "PR001.nii.gz", r / PR / "images" / "ZZ9.nii.gz"),
        f"{PR}/images/ZZ9.nii.gz",
        "image of no patient; 'ZZ9' is not a patient_id",
        id="ZZ9",
    ),
    "stray file": Case(
        lambda r: (r / PR / "images" / "notes.txt").write_text("x"),
        f"{PR}/images/notes.txt",
        "unexpected file in pembro_rt/images/; expected only <patient_id>.nii.gz files",
    ),
    "stray file shadowing a mask": Case(
        lambda r: (r / PR / "masks" / "PR001.nii").write_bytes(b"x"),
        f"{PR}/masks/PR001.nii",
        "unexpected file in pembro_rt/masks/; expected only <patient_id>.nii.gz files (NIfTI "
        "readers would read it instead of PR001.nii.gz)",
    ),
    "garbage image": Case(
        _bytes(f"{PR}/images/PR002.nii.gz", lambda b: b"this is no NIfTI file\n" * 40),
        f"{PR}/images/PR002.nii.gz",
        "unreadable image: cannot read as NIfTI",
    ),
    "truncated mask (half)": Case(
        _bytes(f"{PR}/masks/PR003.nii.gz", lambda b: b[: len(b) // 2]),
        f"{PR}/masks/PR003.nii.gz",
        "unreadable mask: corrupt or truncated gzip data",
    ),
    "truncated mask (no gzip trailer)": Case(
        _bytes(f"{PR}/masks/PR003.nii.gz", lambda b: b[:-4]),
        f"{PR}/masks/PR003.nii.gz",
        "unreadable mask: corrupt or truncated gzip data",
    ),
    "empty image file": Case(
        _bytes(f"{PR}/images/PR001.nii.gz", lambda b: b""),
        f"{PR}/images/PR001.nii.gz",
        "unreadable image",
    ),
    "mask not integer-valued": Case(
        _float_mask,
        f"{PR}/masks/PR001.nii.gz",
        "mask has non-integer values (e.g. 1.5)",
        count=2,  # and label 1 is then not in the mask
    ),
    "ragged row": Case(
        lambda r: (r / P_CSV).write_text((r / P_CSV).read_text().replace("\nPR002,", "\nPR002,x,")),
        P_CSV,
        "11 fields, the header has 10",
        3,
        id="PR002",
    ),
    "not UTF-8": Case(
        _bytes(L_CSV, lambda b: b.replace(b"lung", b"l\xfcng")),
        L_CSV,
        "not UTF-8 text",
    ),
    "bad CSV quoting": Case(
        _bytes(P_CSV, lambda b: b + b'PR005,"io\n'),
        P_CSV,
        "cannot parse as CSV",
        6,
        count=1,  # nothing is checked against an unparsed table
    ),
    "missing lesions.csv": Case(
        lambda r: (r / L_CSV).unlink(),
        L_CSV,
        "missing file",
    ),
    "missing masks folder": Case(
        lambda r: shutil.rmtree(r / PR / "masks"),
        f"{PR}/masks/",
        "missing folder",
    ),
    "missing cohort folder": Case(
        lambda r: shutil.rmtree(r / "mdacc"),
        "mdacc/",
        "missing cohort folder",
    ),
    "truth probability out of range": Case(
        lambda r: set_cell(r / "nivorad/truth/lesions.csv", 3, "p_pd", "-0.1"),
        "nivorad/truth/lesions.csv",
        "p_pd '-0.1' is not a probability",
        3,
        "p_pd",
        "NV002-L1",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_broken_dataset_is_reported(data: Path, name: str):
    case = CASES[name]
    case.mutate(data)
    problems = layout.validate(data)
    found = reported(problems, case)
    text = str(found)
    assert text.startswith(case.file if case.row is None else f"{case.file}:{case.row}")
    with pytest.raises(CohortError):
        layout.fingerprint(data)


def test_every_problem_is_reported_at_once(data: Path):
    set_cell(data / "pembro_rt" / "patients.csv", 2, "arm", "IO")
    set_cell(data / "pembro_rt" / "patients.csv", 3, "os_event", "")
    set_cell(data / "nivorad" / "lesions.csv", 3, "pd", "2")
    (data / "mdacc" / "masks" / "MD002.nii.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    rewrite_volume(data / "mdacc" / "masks" / "MD003.nii.gz", spacing=(1.0, 1.0, 1.0))
    problems = layout.validate(data)
    assert [(p.file, p.row, p.column, p.id) for p in problems] == [
        ("pembro_rt/patients.csv", 2, "arm", "PR001"),
        ("pembro_rt/patients.csv", 3, "os_event", "PR002"),
        ("nivorad/lesions.csv", 3, "pd", "NV002-L1"),
        ("mdacc/masks/MD002.nii.gz", None, None, None),
        ("mdacc/masks/MD003.nii.gz", None, None, "MD003"),
    ]
    assert layout.validate(data, ["nivorad"]) == [problems[2]]


def test_a_cohort_without_patients_is_a_problem(data: Path):
    path = data / "nivorad" / "patients.csv"
    write_csv(path, read_csv(path)[:1])
    problems = layout.validate(data, ["nivorad"])
    assert str(problems[0]) == (
        "nivorad/patients.csv: no patient rows; expected one row per patient under the header"
    )


def test_geometry_within_tolerance_is_accepted(data: Path):
    rewrite_volume(data / "pembro_rt" / "masks" / "PR001.nii.gz", spacing=(0.8, 0.8, 2.50001))
    assert layout.validate(data, ["pembro_rt"]) == []


def test_a_missing_root_is_one_problem(tmp_path: Path):
    problems = layout.validate(tmp_path / "nowhere")
    assert len(problems) == 1 and "is not a folder" in problems[0].message


def test_a_subset_of_cohorts_may_be_validated(data: Path):
    shutil.rmtree(data / "mdacc")
    assert layout.validate(data, ["pembro_rt", "nivorad"]) == []
    assert [p.file for p in layout.validate(data)] == ["mdacc/"]
    with pytest.raises(ValueError, match="unknown cohorts"):
        layout.validate(data, ["pembro"])


# ---------------------------------------------------------------------------------------------
# Fingerprint and cache


def test_fingerprint_is_stable(data: Path, template, tmp_path: Path):
    first = layout.fingerprint(data)
    assert first == layout.fingerprint(data) == layout.fingerprint(template[0])
    assert first == layout.fingerprint(data, cache_dir=tmp_path / "cache")
    assert first == layout.fingerprint(data, cache_dir=tmp_path / "cache")  # from the cache
    assert first == layout.fingerprint(data, workers=1)
    assert layout.fingerprint(data, ["nivorad", "pembro_rt"]) == layout.fingerprint(
        data, ["pembro_rt", "nivorad"]
    )
    assert layout.fingerprint(data, ["pembro_rt"]) != first


def test_fingerprint_changes_with_one_voxel(data: Path):
    before = layout.fingerprint(data)

    def bump(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a[5, 10, 10] += 1
        return a

    rewrite_volume(data / "nivorad" / "images" / "NV002.nii.gz", bump)
    assert layout.fingerprint(data) != before


def test_fingerprint_changes_with_one_cell(data: Path):
    before = layout.fingerprint(data)
    set_cell(data / "mdacc" / "patients.csv", 3, "age", "71")
    assert layout.fingerprint(data) != before


def test_fingerprint_changes_with_geometry_only(data: Path):
    before = layout.fingerprint(data)
    for kind in ("images", "masks"):
        rewrite_volume(data / "mdacc" / kind / "MD001.nii.gz", origin=(1.0, 2.0, 3.0))
    assert layout.validate(data) == []
    assert layout.fingerprint(data) != before


def test_fingerprint_ignores_formatting_and_truth(data: Path):
    before = layout.fingerprint(data)
    path = data / "pembro_rt" / "lesions.csv"
    rows = read_csv(path)
    write_csv(path, [rows[0], *reversed(rows[1:])])  # row order
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))  # line endings
    set_cell(data / "nivorad" / "truth" / "lesions.csv", 2, "p_pd", "0.5")  # truth
    assert layout.validate(data) == []
    assert layout.fingerprint(data) == before


def test_cache_skips_unchanged_files(data: Path, tmp_path: Path, monkeypatch):
    calls: list[Path] = []
    real = layout.images._read_nifti

    def counting(path: Path, is_mask: bool):
        calls.append(path)
        return real(path, is_mask)

    monkeypatch.setattr(layout.images, "_read_nifti", counting)  # where _FileCache looks it up
    cache = tmp_path / "cache"
    first = layout.scan(data, cache_dir=cache)
    assert len(calls) == 20 and first.problems == []
    second = layout.scan(data, cache_dir=cache)
    assert len(calls) == 20 and second.fingerprint == first.fingerprint

    image = data / "nivorad" / "images" / "NV001.nii.gz"
    rewrite_volume(image, lambda a: a - 1)
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    third = layout.scan(data, cache_dir=cache)
    assert calls[20:] == [image] and third.fingerprint != first.fingerprint
    layout.scan(data)  # without a cache, every file is read
    assert len(calls) == 41


def test_cache_does_not_hide_a_corrupted_file(data: Path, tmp_path: Path):
    cache = tmp_path / "cache"
    assert layout.validate(data, cache_dir=cache) == []
    mask = data / "mdacc" / "masks" / "MD003.nii.gz"
    mask.write_bytes(mask.read_bytes()[:-10])
    problems = layout.validate(data, cache_dir=cache)
    assert [p.file for p in problems] == ["mdacc/masks/MD003.nii.gz"]


# ---------------------------------------------------------------------------------------------
# Command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmark.data", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_validate_a_broken_root_exits_1(data: Path):
    set_cell(data / "pembro_rt" / "lesions.csv", 3, "pd", "maybe")
    done = _cli("validate", str(data))
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("pembro_rt/lesions.csv:3 [pd] PR002-L1: pd 'maybe' is not 0 or 1")
    assert lines[-1] == f"1 problem in {data}"


def test_cli_validate_a_valid_root_exits_0(data: Path):
    done = _cli("validate", str(data), "--cohorts", "pembro_rt,nivorad")
    assert done.returncode == 0, done.stdout + done.stderr
    fingerprint = layout.fingerprint(data, ["pembro_rt", "nivorad"])
    assert done.stdout.strip() == (
        f"{data} is valid: {fingerprint}, pembro_rt 4 patients/7 lesions, "
        "nivorad 3 patients/6 lesions"
    )


def test_cli_rejects_unknown_cohorts_and_shows_help(data: Path):
    done = _cli("validate", str(data), "--cohorts", "pembro")
    assert done.returncode == 2 and "unknown cohort(s) pembro" in done.stderr
    done = _cli("--help")
    assert done.returncode == 0 and "validate" in done.stdout and "simulate" in done.stdout


def test_cli_simulate_calls_the_simulator(tmp_path: Path, monkeypatch, capsys):
    from benchmark.data.__main__ import main

    calls = []

    def simulate(profile_name, seed, out, workers=1):
        calls.append((profile_name, seed, out, workers))
        make_dataset(out)

    fake = types.ModuleType("benchmark.data.simulator")
    fake.simulate = simulate
    monkeypatch.setitem(sys.modules, "benchmark.data.simulator", fake)
    out = tmp_path / "sim"
    assert main(["simulate", "--profile", "tiny", "--seed", "7", "--workers", "2", str(out)]) == 0
    assert calls == [("tiny", 7, out, 2)]
    assert f"{out} is valid: sha256:" in capsys.readouterr().out
