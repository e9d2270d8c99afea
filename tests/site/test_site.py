"""Site boards on the tiny profile: a private folder dataset with planted ids and values is
evaluated and exported, and none of what was planted leaves; the record is registered and the
board shows its section, validated, with the cross-board ranks."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import tiny_run

from benchmark.leaderboard.__main__ import main as leaderboard_main
from benchmark.leaderboard.board import Paths, load_board
from benchmark.leaderboard.datasets import dataset_problems, known_commit, protocol_of
from benchmark.leaderboard.store import LeaderboardError
from benchmark.leaderboard.table import render_readme
from benchmark.records.reading import Reference
from benchmark.records.record_format import PROJECT_ROOT
from benchmark.records.schemas import SITE_V1, schema_errors
from benchmark.site.__main__ import main as site_main
from benchmark.site.aggregate import load_runs, site_record

MODELS = ("cox_clinical", "lr_volume")
# Low enough for the tiny cohorts (8-10 patients each) to show some cells, so that the privacy
# check covers published figures and not only suppressed cells.
LOW = ("--min-patients", "3", "--min-events", "2")
HEAD = subprocess.run(
    ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
).stdout.strip()


def _plant(tiny_root: Path, root: Path) -> list[str]:
    """Copy the tiny cohorts to ``root`` as a site's folder (no truth/), every id, age, time,
    date and note a marker; returns the markers as they are written in the site's files."""
    markers = []
    for n, cohort in enumerate(("pembro_rt", "nivorad", "mdacc")):
        source, target = tiny_root / cohort, root / cohort
        patients = pd.read_csv(source / "patients.csv", dtype={"patient_id": str})
        lesions = pd.read_csv(source / "lesions.csv", dtype={"patient_id": str, "lesion_id": str})
        rename = {pid: f"ZQX{n}{i:03d}PID" for i, pid in enumerate(patients["patient_id"])}
        for folder in ("images", "masks"):
            (target / folder).mkdir(parents=True)
            for old, new in rename.items():
                shutil.copy(source / folder / f"{old}.nii.gz", target / folder / f"{new}.nii.gz")
        patients["patient_id"] = patients["patient_id"].map(rename)
        patients["age"] = [f"{60 + i}.{731 + n}9" for i in range(len(patients))]
        patients["os_months"] = [f"{t:.2f}7319" for t in patients["os_months"]]
        patients["scan_date"] = [f"19{40 + i}-0{n + 1}-2{n}" for i in range(len(patients))]
        patients["notes"] = [
            f"ZQX note {n}-{i} lives on Quixote Lane" for i in range(len(patients))
        ]
        lesions["patient_id"] = lesions["patient_id"].map(rename)
        lesions["lesion_id"] = [f"ZQX{n}{i:03d}LID" for i in range(len(lesions))]
        patients.to_csv(target / "patients.csv", index=False)
        lesions.to_csv(target / "lesions.csv", index=False)
        markers += [*patients["patient_id"], *lesions["lesion_id"], *patients["age"]]
        markers += [*patients["os_months"], *patients["scan_date"], *patients["notes"]]
    return markers + ["ZQX", "Quixote", root.name]


@pytest.fixture(scope="module")
def site(cache_dir, tiny_root, tmp_path_factory) -> tuple[Path, Path, list[str]]:
    """(site's runs, exported record, planted markers): two models, seed 0, on the planted
    folder dataset, through `python -m benchmark.site evaluate` and `export`."""
    root = tmp_path_factory.mktemp("site") / "ZQXROOT"
    markers = _plant(tiny_root, root)
    runs, out = root.parent / "runs", root.parent / "export"
    argv = ["evaluate", "--dataset", "planted_site", "--out", str(runs), "--models", *MODELS]
    argv += ["--seeds", "0", "data=folder", f"data.root={root}"]  # overrides after a list
    argv += [f"paths.cache_dir={cache_dir}"]
    assert site_main(argv) == 0
    assert (
        site_main(["export", "--dataset", "planted_site", str(out), "--runs", str(runs), *LOW]) == 0
    )
    return runs, out / "planted_site.json", markers


def test_nothing_planted_leaves_the_site(site):
    runs, exported, markers = site
    data = exported.read_bytes()
    record = json.loads(data)
    shown = [s for s in record["sections"] if not s["suppressed"]]
    assert shown, "every cell suppressed: the check would cover no figure"
    assert {s["model"] for cell in shown for s in cell["standings"]} == set(MODELS)
    # The markers are in the site's own run folders (the check can find them)...
    local = b"".join(p.read_bytes() for p in runs.rglob("predictions.csv"))
    assert b"ZQX0000PID" in local
    # ...and none of them, in any case, in the export.
    lowered = data.lower()
    leaked = [m for m in markers if m.lower().encode() in lowered]
    assert not leaked, f"exported: {leaked[:5]}"
    assert schema_errors(record, SITE_V1) == []


def test_small_cells_are_suppressed_without_counts(site, tmp_path):
    runs, _, _ = site
    record = site_record("planted_site", load_runs(runs))  # default rules: >= 10 patients
    assert record["suppression"] == {"min_patients": 10, "min_events": 5}
    assert all(s["suppressed"] for s in record["sections"])  # tiny cohorts: < 10 patients each
    assert all(set(s) == {"cohort", "task", "metric", "suppressed"} for s in record["sections"])
    low = site_record("planted_site", load_runs(runs), min_patients=3, min_events=2)
    for section in low["sections"]:
        if not section["suppressed"]:
            positive, n = section["n_positive"], section["n"]
            assert section["n_patients"] >= 3 and min(positive, n - positive) >= 2


def test_the_site_figures_are_the_boards_ranking(site, tmp_path):
    """A site cell is what the public board computes from the same predictions."""
    from benchmark.leaderboard.ranking import rank_models

    runs, exported, _ = site
    record = json.loads(exported.read_text())
    cell = next(s for s in record["sections"] if not s["suppressed"])
    loaded = load_runs(runs)
    slices = {}
    for run in loaded:
        frame = run.predictions
        rows = frame[(frame["cohort"] == cell["cohort"]) & (frame["task"] == cell["task"])]
        if len(rows):
            slices.setdefault(run.model, []).append((run.seed, rows.reset_index(drop=True)))
    expected = rank_models(cell["task"], slices, n_boot=1000, seed=0)
    assert [s["model"] for s in cell["standings"]] == [s.model for s in expected]
    for got, want in zip(cell["standings"], expected, strict=True):  # published to 3 decimals
        assert got["value"] == round(want.value, 3)
        assert got["ci95"] == [round(x, 3) for x in want.ci95]
        assert got["p_best"] == round(want.p_best, 3)


def test_runs_of_another_dataset_are_not_aggregated(site, tmp_path):
    runs, _, _ = site
    mixed = tmp_path / "runs"
    shutil.copytree(runs, mixed)
    path = mixed / "lr_volume__seed0" / "result.json"
    record = json.loads(path.read_text())
    record["provenance"]["data_fingerprint"] = "sha256:" + "0" * 64
    path.write_text(json.dumps(record))
    out = tmp_path / "export"
    assert site_main(["export", "--dataset", "planted_site", str(out), "--runs", str(mixed)]) == 2
    assert not out.exists()


@pytest.fixture(scope="module")
def board(cache_dir, tmp_path_factory) -> Path:
    """A tiny simulated board: the same two models, seed 0."""
    root = tmp_path_factory.mktemp("site-board")
    runs = [tiny_run(m, 0, cache_dir, tmp_path_factory).out for m in MODELS]
    args = ["submit", "--allow-dirty", *map(str, runs)]  # --allow-dirty: a modified test tree
    assert leaderboard_main([*args, "--root", str(root), "--data", "tiny"]) == 0
    return root


def _as_of_head(exported: Path, tmp_path: Path) -> Path:
    """The site record as if the site ran this checkout's HEAD (a test tree may be modified)."""
    record = json.loads(exported.read_text())
    record["harness_commit"] = HEAD
    path = tmp_path / exported.name
    path.write_text(json.dumps(record))
    return path


def test_a_registered_site_gets_its_section_and_the_cross_board_ranks(site, board, tmp_path):
    _, exported, _ = site
    root = tmp_path / "board"
    shutil.copytree(board, root)
    argv = ["register", str(_as_of_head(exported, tmp_path)), "--root", str(root)]
    argv += ["--holder", "Quixote General", "--description", "Planted cohorts."]
    assert site_main(argv) == 0
    assert (root / "datasets" / "planted_site.yaml").is_file()
    reference = Reference.from_conf("tiny")
    loaded = load_board(Paths.under(root), reference)
    assert [s.name for s in loaded.sites] == ["planted_site"]
    text = render_readme(loaded)
    assert text.index("## Site boards") > text.index("## PEMBRO-RT")  # the simulated board first
    assert "### planted_site" in text and "Not re-runnable by CI" in text
    assert "Held by** Quixote General" in text
    assert "## Simulated board vs site boards" in text
    assert "Spearman ρ" in text
    # the cross-board row of a model: its simulated rank, then its site rank
    cross = text[text.index("## Simulated board vs site boards") :]
    assert any(line.startswith("| lr_volume | ") and "→" in line for line in cross.splitlines())


def test_a_site_record_that_does_not_match_its_registration_is_refused(site, board, tmp_path):
    _, exported, _ = site
    root = tmp_path / "board"
    shutil.copytree(board, root)
    argv = ["register", str(_as_of_head(exported, tmp_path)), "--root", str(root)]
    assert site_main([*argv, "--holder", "Q", "--description", "D"]) == 0
    record_path = root / "datasets" / "planted_site.json"
    good = json.loads(record_path.read_text())
    registration = {
        "name": "planted_site",
        "description": "D",
        "holder": "Q",
        "fingerprint": good["data_fingerprint"],
        "protocol": "default",
    }
    protocol = protocol_of("default")

    def problems(change) -> list[str]:
        record = copy.deepcopy(good)
        change(record)
        return dataset_problems(registration, record, protocol)

    assert problems(lambda r: None) == []
    assert (
        "not the registered"
        in problems(lambda r: r.update(data_fingerprint="sha256:" + "1" * 64))[0]
    )
    assert "protocol differs" in problems(lambda r: r["protocol"]["cv"].update(n_splits=3))[0]
    assert (
        "not in this repository's history"
        in problems(lambda r: r.update(harness_commit="f" * 40))[0]
    )
    assert "modified" in problems(lambda r: r.update(harness_commit=HEAD + "-dirty"))[0]
    assert problems(lambda r: r["sections"][0].update(patient_ids=["x"]))  # schema
    assert known_commit(HEAD) is None
    # On disk: the board refuses to build, naming the file.
    record_path.write_text(json.dumps({**good, "data_fingerprint": "sha256:" + "2" * 64}))
    with pytest.raises(LeaderboardError, match="planted_site.yaml"):
        load_board(Paths.under(root), Reference.from_conf("tiny"))


@pytest.mark.slow
def test_a_site_end_to_end_from_dicom(board, cache_dir, tmp_path):
    """The README's worked example on the tiny profile: a fresh draw written as DICOM, imported
    as a site's private folder, evaluated, exported, registered, and shown on the board."""
    from benchmark.data.__main__ import main as data_main

    drawn, dicom, private = tmp_path / "drawn", tmp_path / "dicom", tmp_path / "private"
    assert data_main(["simulate", "--profile", "tiny", "--seed", "7", str(drawn)]) == 0
    assert data_main(["export-dicom", str(drawn), str(dicom)]) == 0
    shutil.rmtree(drawn)  # the site holds DICOM and a clinical table, nothing else
    argv = ["import-dicom", str(dicom), "--manifest", str(dicom / "manifest_rtstruct.csv")]
    assert data_main([*argv, "--clinical", str(dicom / "clinical.csv"), str(private)]) == 0
    runs, out = tmp_path / "runs", tmp_path / "export"
    argv = ["evaluate", "--dataset", "drawn_site", "--models", *MODELS, "--seeds", "0"]
    argv += ["--out", str(runs), "data=folder", f"data.root={private}"]
    assert site_main([*argv, f"paths.cache_dir={cache_dir}"]) == 0
    assert (
        site_main(["export", "--dataset", "drawn_site", str(out), "--runs", str(runs), *LOW]) == 0
    )
    root = tmp_path / "board"
    shutil.copytree(board, root)
    argv = ["register", str(_as_of_head(out / "drawn_site.json", tmp_path)), "--root", str(root)]
    assert site_main([*argv, "--holder", "nobody", "--description", "tiny, data seed 7"]) == 0
    assert leaderboard_main(["--root", str(root), "--data", "tiny", "--no-figures"]) == 0
    text = (root / "README.md").read_text()
    assert "### drawn_site" in text and "Spearman ρ" in text
    site_print = json.loads((root / "datasets" / "drawn_site.json").read_text())["data_fingerprint"]
    public = json.loads(next((root / "results").glob("*.json")).read_text())
    assert site_print != public["provenance"]["data_fingerprint"]  # another draw: a new dataset


def test_a_site_model_run_with_another_config_is_marked(site, board, tmp_path):
    _, exported, _ = site
    root = tmp_path / "board"
    shutil.copytree(board, root)
    path = _as_of_head(exported, tmp_path)
    record = json.loads(path.read_text())
    record["models"]["lr_volume"]["model_config"] = "0" * 16  # as if run with other settings
    path.write_text(json.dumps(record))
    argv = ["register", str(path), "--root", str(root), "--holder", "Q", "--description", "D"]
    assert site_main(argv) == 0
    text = render_readme(load_board(Paths.under(root), Reference.from_conf("tiny")))
    assert "another model config than the simulated board's records" in text
    line = next(x for x in text.splitlines() if "another model config" in x)
    assert "lr_volume" in line and "cox_clinical" not in line


def test_a_site_without_bubblewrap_is_refused_unless_it_asks_for_less(monkeypatch, capsys):
    from benchmark.sandbox import bwrap
    from benchmark.site.evaluate import SiteError, check_sandbox

    monkeypatch.setattr(bwrap, "available", lambda: False)
    with pytest.raises(SiteError, match="bubblewrap is not usable here"):
        check_sandbox(["data=tiny"])
    assert check_sandbox(["data=tiny", "sandbox=process"]) == "process"
    assert site_main(["evaluate", "--dataset", "x", "--out", "/nonexistent", "data=tiny"]) == 2
    assert "pass sandbox=process" in capsys.readouterr().err
