"""The built-in trial simulator: determinism, trial-like tables, plausible CT, the cohort layout."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from cohort_factory import LESION_HEADER, PATIENT_HEADER
from scipy import ndimage
from scipy.spatial import ConvexHull
from sklearn.metrics import roc_auc_score
from sksurv.metrics import concordance_index_censored
from sksurv.nonparametric import kaplan_meier_estimator

from benchmark.api.cohort import ARMS, COHORTS
from benchmark.data import simulator
from benchmark.data.simulator import (
    ANATOMY_LABELS,
    GENERATOR_NAME,
    GENERATOR_VERSION,
    SITES,
    load_profile,
    render_patient,
    simulate,
    simulate_tables,
)

PREFIX = {"pembro_rt": "PRT", "nivorad": "NIV", "mdacc": "MDA"}


@pytest.fixture(scope="module")
def default_tables():
    return simulate_tables(load_profile("default"), 0)


@pytest.fixture(scope="module")
def tiny_tables():
    return simulate_tables(load_profile("tiny"), 0)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return simulate("tiny", 0, tmp_path_factory.mktemp("sim") / "tiny", progress=False)


def km_median(time: np.ndarray, event: np.ndarray) -> float:
    t, s = kaplan_meier_estimator(np.asarray(event, bool), np.asarray(time, float))
    below = np.flatnonzero(s <= 0.5)
    return float(t[below[0]]) if len(below) else float("nan")


def read(path: Path) -> tuple[np.ndarray, sitk.Image]:
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), image


def longest_diameter_mm(voxels: np.ndarray, spacing_zyx: np.ndarray) -> float:
    points = voxels * spacing_zyx
    if len(points) > 4:
        with contextlib.suppress(Exception):  # flat point sets: use them all
            points = points[ConvexHull(points).vertices]
    return float(np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1)).max())


# ---------------------------------------------------------------------------------------------
# Profiles


def test_profiles_load_and_unknown_names_are_refused():
    default, tiny = load_profile("default"), load_profile("tiny")
    assert default["name"] == "default" and tiny["name"] == "tiny"
    assert set(default["cohorts"]) == set(COHORTS) == set(tiny["cohorts"])
    # tiny is the default profile with overrides: it carries every field (the cache key).
    assert tiny["defaults"]["survival"] == default["defaults"]["survival"]
    assert tiny["cohorts"]["pembro_rt"]["medians"] == default["cohorts"]["pembro_rt"]["medians"]
    with pytest.raises(ValueError, match=r"unknown simulator profile 'nope'.*default.*tiny"):
        load_profile("nope")
    with pytest.raises(ValueError, match="not a simulator profile"):
        load_profile("folder")
    with pytest.raises(ValueError, match="unknown simulator profile"):
        load_profile("../data/default")


def test_a_profile_mapping_overrides_cohort_sizes():
    profile = load_profile("tiny")
    profile["cohorts"]["nivorad"]["arms"] = {"io": 2, "io+sabr": 5}
    tables = simulate_tables(profile, 3)
    assert tables["nivorad"].patients["arm"].value_counts().to_dict() == {"io+sabr": 5, "io": 2}
    profile["cohorts"]["nivorad"]["arms"] = {"chemo": 4}
    with pytest.raises(ValueError, match="arms"):
        simulate_tables(profile, 3)
    with pytest.raises(ValueError, match="seed"):
        simulate_tables("tiny", -1)


# ---------------------------------------------------------------------------------------------
# Tables


def test_tables_are_deterministic_and_depend_on_the_seed(tiny_tables):
    again = simulate_tables("tiny", 0)
    other = simulate_tables("tiny", 1)
    for name in COHORTS:
        for frame in ("patients", "lesions", "truth_lesions", "truth_patients", "latent"):
            pd.testing.assert_frame_equal(
                getattr(tiny_tables[name], frame), getattr(again[name], frame)
            )
        assert (
            not tiny_tables[name]
            .truth_patients["lp_os"]
            .equals(other[name].truth_patients["lp_os"])
        )
        assert not np.array_equal(
            tiny_tables[name].patients["os_months"], other[name].patients["os_months"]
        )


def test_default_cohorts_are_trial_shaped(default_tables):
    arms = {n: t.patients["arm"].value_counts().to_dict() for n, t in default_tables.items()}
    assert arms["pembro_rt"] == {"io": 40, "io+sabr": 36}
    assert 80 <= sum(arms["nivorad"].values()) <= 100
    assert 1.7 <= arms["nivorad"]["io+sabr"] / arms["nivorad"]["io"] <= 2.3
    assert 90 <= sum(arms["mdacc"].values()) <= 110
    assert min(arms["mdacc"].values()) >= 0.4 * sum(arms["mdacc"].values())

    patients = pd.concat([t.patients for t in default_tables.values()])
    tps = patients["pdl1_tps"]
    known = tps.dropna()
    assert 0.52 <= (known < 1).mean() <= 0.68
    assert 0.15 <= ((known >= 1) & (known < 50)).mean() <= 0.35
    assert 0.07 <= (known >= 50).mean() <= 0.23
    assert 0 < tps.isna().mean() <= 0.08
    assert known.between(0, 100).all()
    assert patients["age"].between(38, 90).all() and 60 <= patients["age"].mean() <= 72
    assert set(patients["sex"]) == {"M", "F"}
    assert set(patients["ecog"]) <= {0, 1, 2} and (patients["ecog"] == 2).mean() < 0.15

    for name, t in default_tables.items():
        p, les = t.patients, t.lesions
        assert list(p.columns) == PATIENT_HEADER
        assert list(les.columns) == LESION_HEADER
        assert all(re.fullmatch(rf"{PREFIX[name]}-\d{{3}}", pid) for pid in p["patient_id"])
        assert (les["lesion_id"] == les["patient_id"] + "-L" + les["mask_label"].astype(str)).all()
        counts = les.groupby("patient_id").size().reindex(p["patient_id"], fill_value=0)
        assert counts.between(1, 6).all() and counts.max() >= 5
        labels = les.groupby("patient_id")["mask_label"].apply(sorted)
        assert all(lab == list(range(1, len(lab) + 1)) for lab in labels)
        assert set(les["site"]) == set(SITES)
        site_share = les["site"].value_counts(normalize=True)
        assert (
            site_share[["lung", "lymph_node"]].min() > site_share.drop(["lung", "lymph_node"]).max()
        )
        # One irradiated lesion per io+sabr patient, none in the io arm.
        irradiated = les.groupby("patient_id")["irradiated"].sum()
        arm = p.set_index("patient_id")["arm"]
        assert (irradiated[arm[arm == "io+sabr"].index] == 1).all()
        assert (irradiated[arm[arm == "io"].index] == 0).all()
        # Survival columns.
        assert (p["os_months"] > 0).all() and (p["pfs_months"] > 0).all()
        assert (p["pfs_months"] <= p["os_months"]).all()
        assert set(p["os_event"]) <= {0, 1} and set(p["pfs_event"]) <= {0, 1}
        assert 0.3 < p["os_event"].mean() < 0.95 and p["pfs_event"].mean() > p["os_event"].mean()
        assert set(les["pd"]) == {0, 1} and set(les["irradiated"]) == {0, 1}


def test_lesion_diameters_are_recist_measurable(default_tables):
    latent = pd.concat([t.latent for t in default_tables.values()])
    d = latent["diameter_mm"]
    assert d.between(10, 50).all()
    assert (latent.loc[latent["site"] == "lymph_node", "diameter_mm"] >= 15).all()
    assert 15 <= d.median() <= 35 and 0.03 <= (d > 35).mean() <= 0.3  # lognormal, a few masses


def test_truth_is_consistent_with_the_labels(default_tables):
    pooled_p, pooled_pd = [], []
    for t in default_tables.values():
        truth = t.truth_lesions.set_index("lesion_id")["p_pd"]
        les = t.lesions.set_index("lesion_id")
        assert list(truth.index) == list(les.index)
        assert ((truth > 0) & (truth < 1)).all()
        assert abs(les["pd"].mean() - truth.mean()) < 0.08
        assert 0.25 <= truth.mean() <= 0.45
        # The irradiated lesion is controlled in about 90%.
        assert truth[les["irradiated"] == 1].mean() < 0.2
        pooled_p.append(truth)
        pooled_pd.append(les["pd"])
        # Latent RECIST growth agrees with the label: PD iff >= 20 % and >= 5 mm.
        lat = t.latent
        grow = lat["diameter_followup_mm"] - lat["diameter_mm"]
        recist = (grow >= 0.2 * lat["diameter_mm"] - 1e-9) & (grow >= 5 - 1e-9)
        assert (recist.astype(int).to_numpy() == lat["pd"].to_numpy()).mean() > 0.99
        # True linear predictors: higher = worse.
        p, lp = t.patients, t.truth_patients
        assert list(lp["patient_id"]) == list(p["patient_id"])
        c_os = concordance_index_censored(p["os_event"].astype(bool), p["os_months"], lp["lp_os"])
        c_pfs = concordance_index_censored(
            p["pfs_event"].astype(bool), p["pfs_months"], lp["lp_pfs"]
        )
        assert c_os[0] > 0.6 and c_pfs[0] > 0.6
    p_pd, pd_ = pd.concat(pooled_p), pd.concat(pooled_pd)
    assert roc_auc_score(pd_, p_pd) > 0.75


def test_cohorts_have_different_acquisition(default_tables, tiny_tables):
    for tables in (default_tables, tiny_tables):
        acq = {n: t.acquisition for n, t in tables.items()}
        slices = [acq[n]["spacing_mm"][2] for n in COHORTS]
        in_plane = [acq[n]["spacing_mm"][0] for n in COHORTS]
        assert len(set(slices)) == 3 and len(set(in_plane)) == 3
        assert len({acq[n]["noise_hu"] for n in COHORTS}) == 3
        assert len({acq[n]["hu_offset"] for n in COHORTS}) == 3
        assert len({acq[n]["kernel"] for n in COHORTS}) == 3


# ---------------------------------------------------------------------------------------------
# The written dataset (tiny profile)


def test_tiny_layout_matches_the_contract(tiny_root: Path, tiny_tables):
    meta = json.loads((tiny_root / "dataset.json").read_text())
    assert meta["generator"] == GENERATOR_NAME and meta["generator_version"] == GENERATOR_VERSION
    assert meta["profile"] == "tiny" and meta["seed"] == 0 and meta["cohorts"] == list(COHORTS)
    assert not list(tiny_root.parent.glob("tiny.tmp-*"))
    for name in COHORTS:
        folder = tiny_root / name
        t = tiny_tables[name]
        patients = pd.read_csv(folder / "patients.csv")
        lesions = pd.read_csv(folder / "lesions.csv")
        assert list(patients["patient_id"]) == list(t.patients["patient_id"])
        assert patients["pdl1_tps"].isna().tolist() == t.patients["pdl1_tps"].isna().tolist()
        pd.testing.assert_frame_equal(lesions, t.lesions, check_dtype=False)
        truth_l = pd.read_csv(folder / "truth" / "lesions.csv")
        truth_p = pd.read_csv(folder / "truth" / "patients.csv")
        assert list(truth_l.columns) == ["lesion_id", "p_pd"]
        assert list(truth_p.columns) == ["patient_id", "lp_os", "lp_pfs"]
        np.testing.assert_allclose(truth_l["p_pd"], t.truth_lesions["p_pd"], atol=1e-6)
        # Tiny cohorts still have both arms, an event and both PD classes.
        assert set(patients["arm"]) == set(ARMS)
        assert patients["os_event"].sum() >= 1 and patients["pfs_event"].sum() >= 1
        assert set(lesions["pd"]) == {0, 1}
        assert sorted(p.name for p in (folder / "images").iterdir()) == sorted(
            f"{pid}.nii.gz" for pid in patients["patient_id"]
        )
        for pid, group in lesions.groupby("patient_id"):
            image_arr, image = read(folder / "images" / f"{pid}.nii.gz")
            mask_arr, mask = read(folder / "masks" / f"{pid}.nii.gz")
            assert image_arr.dtype == np.int16 and mask_arr.dtype in (np.uint8, np.uint16)
            assert image.GetSize() == mask.GetSize() == tuple(t.acquisition["shape"])
            assert image.GetSpacing() == mask.GetSpacing()
            assert np.allclose(image.GetSpacing(), t.acquisition["spacing_mm"])
            assert image.GetOrigin() == mask.GetOrigin()
            assert image.GetDirection() == mask.GetDirection()
            assert set(np.unique(mask_arr)) == {0, *group["mask_label"]}


def test_tiny_ct_is_plausible(tiny_root: Path, tiny_tables):
    lesion_medians, diameters = [], []
    for name in COHORTS:
        t = tiny_tables[name]
        offset = t.acquisition["hu_offset"]
        for index in range(3):
            rendered = render_patient(t, index)
            pid = rendered.patient_id
            image, itk = read(tiny_root / name / "images" / f"{pid}.nii.gz")
            mask, _ = read(tiny_root / name / "masks" / f"{pid}.nii.gz")
            np.testing.assert_array_equal(image, rendered.image)
            np.testing.assert_array_equal(mask, rendered.mask)
            tissue = rendered.anatomy
            air = np.median(image[tissue == ANATOMY_LABELS["air"]])
            lung = np.median(image[tissue == ANATOMY_LABELS["lung"]])
            fat = np.median(image[tissue == ANATOMY_LABELS["fat"]])
            marrow = np.median(image[tissue == ANATOMY_LABELS["marrow"]])
            liver = np.median(image[tissue == ANATOMY_LABELS["liver"]])
            assert -1030 <= air <= -970, (pid, air)
            assert -900 <= lung - offset <= -700, (pid, lung)
            assert -130 <= fat - offset <= -60, (pid, fat)
            assert marrow >= 300, (pid, marrow)
            assert 30 <= liver - offset <= 80, (pid, liver)
            spacing_zyx = np.array(itk.GetSpacing())[::-1]
            for label in np.unique(mask)[1:]:
                inside = mask == label
                lesion_medians.append(float(np.median(image[inside])))
                diameters.append(longest_diameter_mm(np.argwhere(inside), spacing_zyx))
    assert all(-100 <= m <= 120 for m in lesion_medians), lesion_medians
    assert -20 <= np.median(lesion_medians) <= 80
    assert all(8 <= d <= 70 for d in diameters), diameters


def test_lesions_sit_in_their_site(tiny_tables):
    lung_like = {ANATOMY_LABELS["lung"], ANATOMY_LABELS["vessel"], ANATOMY_LABELS["halo"]}
    checked = set()
    for t in tiny_tables.values():
        for index in range(len(t.patients)):
            rendered = render_patient(t, index)
            rows = t.lesions[t.lesions["patient_id"] == rendered.patient_id]
            for _, row in rows.iterrows():
                inside = rendered.mask == row["mask_label"]
                if row["site"] not in ("lung", "liver"):
                    continue
                # The shell just outside the lesion is the organ it sits in.
                shell = ndimage.binary_dilation(inside, iterations=1) & ~inside
                around = rendered.anatomy[shell]
                if row["site"] == "lung":
                    share = np.isin(around, list(lung_like)).mean()
                else:
                    share = np.isin(
                        around, [ANATOMY_LABELS["liver"], ANATOMY_LABELS["halo"]]
                    ).mean()
                assert share > 0.5, (rendered.patient_id, row["site"], share)
                checked.add(row["site"])
    assert checked == {"lung", "liver"}


@pytest.mark.slow  # ~12 s
def test_the_margin_reaches_as_far_as_its_latent_width(default_tables):
    """The peritumoral margin (HALO tissue) lies outside the mask, as far as ``halo_mm`` says."""
    t = default_tables["pembro_rt"]
    reach, width = [], []
    for index in range(12):
        rendered = render_patient(t, index)
        spacing_zyx = np.asarray(rendered.spacing)[::-1]
        halo = rendered.anatomy == ANATOMY_LABELS["halo"]
        lesions = t.latent[t.latent["patient_index"] == index]
        for _, lesion in lesions.iterrows():
            inside = rendered.mask == lesion["mask_label"]
            assert not (halo & inside).any()
            distance = ndimage.distance_transform_edt(~inside, sampling=spacing_zyx)
            others = (rendered.mask > 0) & ~inside
            if others.any():  # margin voxels of this lesion: nearer to it than to any other
                distance[
                    ndimage.distance_transform_edt(~others, sampling=spacing_zyx) < distance
                ] = 99
            near = halo & (distance <= 20.0)
            if near.sum() > 20:
                reach.append(np.percentile(distance[near], 90))
                width.append(lesion["halo_mm"])
    assert len(reach) >= 15
    rho = pd.Series(reach).corr(pd.Series(width), method="spearman")
    assert rho > 0.8, rho


def test_measured_noise_and_offset_differ_between_cohorts(tiny_root: Path, tiny_tables):
    # Measured in the liver's interior: uniform tissue, and (unlike air with a negative offset)
    # never clipped at -1024 HU, which would shrink the noise.
    noise, level = {}, {}
    for name in COHORTS:
        rendered = render_patient(tiny_tables[name], 0)
        image, _ = read(tiny_root / name / "images" / f"{rendered.patient_id}.nii.gz")
        liver = ndimage.binary_erosion(rendered.anatomy == ANATOMY_LABELS["liver"], iterations=2)
        assert liver.sum() > 1000, name
        values = image[liver].astype(float)
        noise[name], level[name] = values.std(), np.median(values)
    assert noise["pembro_rt"] < noise["mdacc"] < noise["nivorad"], noise
    assert level["mdacc"] < level["pembro_rt"] < level["nivorad"], level


def test_images_are_identical_across_runs_and_workers(tiny_root: Path, tmp_path: Path):
    again = simulate("tiny", 0, tmp_path / "again", workers=2, progress=False)
    files = sorted(p.relative_to(tiny_root) for p in tiny_root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        assert (tiny_root / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = simulate_tables("tiny", 5)["pembro_rt"]
    first = render_patient(other, 0).image
    written, _ = read(tiny_root / "pembro_rt" / "images" / "PRT-001.nii.gz")
    assert first.shape == written.shape and not np.array_equal(first, written)


def test_simulate_refuses_a_non_empty_folder_and_leaves_no_half_dataset(tmp_path, monkeypatch):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="not empty"):
        simulate("tiny", 0, busy, progress=False)
    assert (busy / "keep.txt").read_text() == "x"

    calls = []

    def failing(job):
        calls.append(job)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return job[1]["patient_id"]

    monkeypatch.setattr(simulator.write, "_render_job", failing)
    out = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        simulate("tiny", 0, out, progress=False)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [busy]


def test_simulate_fills_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(simulator.write, "_render_job", lambda job: job[1]["patient_id"])
    out = tmp_path / "empty"
    out.mkdir()
    assert simulate("tiny", 0, out, progress=False) == out
    assert (out / "dataset.json").is_file() and (out / "pembro_rt" / "patients.csv").is_file()


@pytest.mark.slow
def test_default_build_fits_the_budget(tmp_path: Path):
    import time

    start = time.perf_counter()
    root = simulate("default", 0, tmp_path / "default", workers=2, progress=False)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert seconds < 120, seconds
    assert size < 500e6, size
