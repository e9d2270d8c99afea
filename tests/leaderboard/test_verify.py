"""``python -m benchmark.leaderboard verify``: honest tiny records reproduce in a fresh process,
tampered ones fail at their first difference, deep records from another CPU type are judged by
their seed tolerance, records nothing can re-run fail unless marked, and ``--changed-since``
picks the records git says changed. Also the CPU key records carry (benchmark/records/cpu.py) and
how a record's run is composed by the harness, never from its stored config."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tiny_runs import CONF, tiny_run

from benchmark.leaderboard import verify
from benchmark.leaderboard.__main__ import main
from benchmark.leaderboard.checks import is_deep
from benchmark.leaderboard.differences import first_prediction_difference, first_record_difference
from benchmark.leaderboard.predictions import compress, predictions_path, read_predictions
from benchmark.leaderboard.rerun import ConfigDrift, rerun_config
from benchmark.records import cpu
from benchmark.records.reading import load_record, record_problems
from benchmark.records.record_format import hardware

INTEL = {
    "cpu": "Intel(R) Xeon(R) Processor",
    "cpu_vendor": "GenuineIntel",
    "cpu_family": 6,
    "cpu_model_number": 1,  # no AVX-512 CPU has this model number: never this machine
    "cpu_isa": "avx512",
}


@pytest.fixture(scope="module")
def runs(cache_dir, tmp_path_factory) -> dict[str, Path]:
    specs = {"cox0": ("cox_clinical", 0), "cox1": ("cox_clinical", 1), "lr0": ("lr_volume", 0)}
    return {k: tiny_run(m, s, cache_dir, tmp_path_factory).out for k, (m, s) in specs.items()}


@pytest.fixture
def board(runs, tmp_path: Path, cache_dir: Path, monkeypatch) -> Path:
    monkeypatch.setenv("NSCLC_IO_BENCH_CACHE", str(cache_dir))
    root = tmp_path / "leaderboard"
    args = ["submit", "--allow-dirty", *(str(runs[k]) for k in ("cox0", "cox1", "lr0"))]
    assert main([*args, "--root", str(root), "--data", "tiny"]) == 0
    return root


def _edit(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record, indent=2))


def _make_deep_from_intel(record: dict) -> None:
    record["provenance"]["config"]["model"]["submission"]["train"] = {"epochs": 3}
    record["provenance"]["hardware"].update(INTEL)


# --------------------------------------------------------------------------------------------
# End to end: one verify over honest and tampered records (each re-run is a fresh process)


def test_verify_passes_honest_records_and_names_the_first_difference(board: Path, capsys):
    results = board / "results"
    # cox seed 1: one prediction moved in the committed file (the 5th row of the file)
    gz = predictions_path(results / "cox_clinical__seed1.json")
    frame = read_predictions(gz)
    frame.loc[4, "prediction"] += 1e-6
    gz.write_bytes(compress(frame.to_csv(index=False).encode()))
    tampered = read_predictions(gz).iloc[4]
    # lr_volume: a metric of the committed record changed
    _edit(
        results / "lr_volume__seed0.json",
        lambda r: r["metrics"]["nivorad"]["lesion_pd"]["auc"].update(value=0.99),
    )
    code = main(["verify", "--data", "tiny", "--root", str(board), "--jobs", "2"])
    out = capsys.readouterr().out
    assert code == 1, out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if "__seed" in line}
    assert rows["cox_clinical__seed0"] == "verified"
    assert rows["cox_clinical__seed1"] == "FAILED"
    assert rows["lr_volume__seed0"] == "FAILED"
    assert (
        f"cox_clinical__seed1: FAILED: first difference: {tampered['cohort']}/{tampered['task']} "
        f"id {tampered['id']}, column prediction: committed {float(tampered['prediction'])!r}"
        in out
    )
    assert (
        "lr_volume__seed0: FAILED: first difference: metrics.nivorad.lesion_pd.auc.value: "
        "committed 0.99, re-run" in out
    )
    assert "1 verified, 0 re-trained, 0 unverified (marked), 2 FAILED" in out


def _forge_gpu(record: dict) -> None:
    """(6) A record that claims a GPU run and a perfect model."""
    record["provenance"]["config"]["hardware"]["device"] = "cuda"
    record["provenance"]["hardware"]["gpu"] = "NVIDIA H200"
    for tasks in record["metrics"].values():
        for metrics in tasks.values():
            metrics["c_index"]["value"] = 1.0


def test_a_record_nothing_here_can_rerun_fails_unless_marked(board: Path, capsys):
    """(6): a forged GPU record was "not verifiable here" and passed CI, ranked first. Now it
    fails unless its submitter marks it unverified; marked, its figures are still re-scored
    with the harness's labels, and the board shows it without a rank."""
    path = board / "results" / "cox_clinical__seed1.json"
    _edit(path, _forge_gpu)
    assert main(["verify", "--data", "tiny", "--root", str(board), "cox_clinical__seed1"]) == 1
    out = capsys.readouterr().out
    assert "cox_clinical__seed1: FAILED: a NVIDIA H200 record; this machine has no GPU" in out
    assert "not marked in leaderboard/unverified.yaml" in out
    (board / "unverified.yaml").write_text("cox_clinical__seed1: trained on our H200\n")
    assert main(["verify", "--data", "tiny", "--root", str(board), "cox_clinical__seed1"]) == 1
    assert "its metrics are not what the harness scores" in capsys.readouterr().out
    _edit(
        path,
        lambda r: r.update(
            metrics=load_record(path.with_name("cox_clinical__seed0.json"))["metrics"]
        ),
    )
    assert main(["verify", "--data", "tiny", "--root", str(board), "cox_clinical__seed1"]) == 0
    assert "unverified (marked)" in capsys.readouterr().out


def test_deep_records_of_another_cpu_are_judged_by_their_seed_spread(tmp_path: Path):
    """A deep record re-trained on another CPU type: each primary metric within max(4 x the
    model's seed sd, 0.02) of the committed one, the sd of the re-trained seeds when two or
    more were re-trained."""

    def record(auc: float, c: float = 0.6) -> dict:
        metric = lambda v: {"value": v}  # noqa: E731
        return {
            "metrics": {
                "pembro_rt_cv": {"lesion_pd": {"auc": metric(auc)}},
                "mdacc": {"lesion_pd": {"auc": metric(auc - 0.05)}, "os": {"c_index": metric(c)}},
            }
        }

    def pending(name: str, committed: float, retrained: float) -> verify.Outcome:
        return verify.Outcome(
            name, "", 1.0, model="deep", committed=record(committed), retrained=record(retrained)
        )

    # re-trained seeds 0.70, 0.73, 0.76: sd 0.03 on both AUCs, 0 on C -> pooled sd 0.0245
    outcomes = verify.judge_retrained(
        [
            pending("deep__seed0", 0.71, 0.70),
            pending("deep__seed1", 0.84, 0.73),
            pending("deep__seed2", 0.76, 0.76),
        ],
        tmp_path,
    )
    status = {o.record: o.status for o in outcomes}
    assert status == {
        "deep__seed0": "re-trained",
        "deep__seed1": "FAILED",
        "deep__seed2": "re-trained",
    }
    failed = next(o for o in outcomes if o.status == "FAILED")
    assert "mdacc/lesion_pd auc: committed 0.7900, re-trained 0.6800" in failed.detail
    assert "(|difference| > 0.098)" in failed.detail


def test_unknown_records_and_refs_are_refused(board: Path, capsys):
    assert main(["verify", "--data", "tiny", "--root", str(board), "nope__seed0"]) == 2
    assert "no such record" in capsys.readouterr().err
    assert (
        main(["verify", "--data", "tiny", "--root", str(board), "--changed-since", "no-such-ref"])
        == 2
    )
    assert "is not in a git checkout" in capsys.readouterr().err  # a temporary board


def test_only_and_sample_select_without_running(board: Path):
    results = board / "results"
    _edit(results / "cox_clinical__seed0.json", _make_deep_from_intel)

    def chosen(*args: str) -> list[str]:
        opts = verify._parser().parse_args([*args, "--root", str(board)])
        return [p.stem for p in verify.select(opts)]

    assert chosen("--only", "deep") == ["cox_clinical__seed0"]
    assert chosen("--only", "classical") == ["cox_clinical__seed1", "lr_volume__seed0"]
    sample = chosen("--sample", "2", "--sample-seed", "3")
    assert len(sample) == 2 and sample == chosen("--sample", "2", "--sample-seed", "3")
    assert chosen(str(results / "lr_volume__seed0.json")) == ["lr_volume__seed0"]


# --------------------------------------------------------------------------------------------
# --changed-since


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_changed_since_picks_only_changed_records(tmp_path: Path):
    results = tmp_path / "leaderboard" / "results"
    results.mkdir(parents=True)
    for stem in ("a__seed0", "b__seed0", "c__seed0", "e__seed0"):
        (results / f"{stem}.json").write_text("{}")
        (results / f"{stem}.predictions.csv.gz").write_bytes(b"x")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "records")
    (results / "b__seed0.predictions.csv.gz").write_bytes(b"y")  # predictions changed
    (results / "e__seed0.json").write_text('{"x": 1}')  # record changed
    (results / "c__seed0.json").unlink()  # deleted: nothing to verify
    (results / "d__seed0.json").write_text("{}")  # new, untracked
    (tmp_path / "code.py").write_text("x = 2\n")  # not a record
    changed = verify.changed_records(results, "HEAD")
    assert [p.name for p in changed] == ["b__seed0.json", "d__seed0.json", "e__seed0.json"]
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "more")
    assert verify.changed_records(results, "HEAD") == []
    assert [p.name for p in verify.changed_records(results, "HEAD~1")] == [
        "b__seed0.json",
        "d__seed0.json",
        "e__seed0.json",
    ]
    with pytest.raises(verify.Refused, match="no such commit"):
        verify.changed_records(results, "HEAD~5")


# --------------------------------------------------------------------------------------------
# Pieces


def test_first_differences_name_row_and_key(runs):
    committed = read_predictions(runs["cox0"] / "predictions.csv")
    assert first_prediction_difference(committed, committed.copy()) is None
    moved = committed.copy()
    moved.loc[7, "prediction"] += 1e-12
    row = committed.iloc[7]
    assert first_prediction_difference(committed, moved).startswith(
        f"{row['cohort']}/{row['task']} id {row['id']}, column prediction"
    )
    assert first_prediction_difference(committed, moved, tolerance=1e-9) is None
    missing = committed.drop(index=3)
    assert "in the committed predictions, not in the re-run's" in first_prediction_difference(
        committed, missing
    )
    record = load_record(runs["cox0"] / "result.json")
    other = json.loads(json.dumps(record))
    assert first_record_difference(record, other) is None
    other["oracle"]["mdacc"]["os"]["c_index"]["ci95"][1] += 0.01
    assert first_record_difference(record, other).startswith("oracle.mdacc.os.c_index.ci95[1]:")


def test_cpu_key_tells_cpus_apart_and_old_records_match_nothing():
    here = hardware()
    assert here["key"] == cpu.numerics_key(here)
    assert here["key"].count("/") == 2 and "?" not in here["key"]
    assert cpu.same_numerics(here, dict(here))
    assert not cpu.same_numerics(here, INTEL) or here["cpu_vendor"] == "GenuineIntel"
    old = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_count": 2}  # a record before the key
    assert cpu.numerics_key(old) == "GenuineIntel/?.?/?"
    assert not cpu.same_numerics(old, old)
    assert cpu.vendor_from_name("AMD EPYC 7B13") == "AuthenticAMD"
    assert cpu.flags_isa("fpu sse avx avx2 avx512f") == "avx512"
    assert cpu.flags_isa("fpu sse avx avx2") == "avx2"
    assert cpu.flags_isa("fpu sse") == "default"
    fields = cpu.cpuinfo_fields("vendor_id\t: AuthenticAMD\nmodel\t\t: 1\n\nvendor_id\t: X\n")
    assert fields == {"vendor_id": "AuthenticAMD", "model": "1"}


def test_old_and_new_hardware_fields_keep_records_valid(runs):
    record = load_record(runs["cox0"] / "result.json")
    assert record["provenance"]["hardware"]["key"] == hardware()["key"]
    for name in ("key", "cpu_vendor", "cpu_family", "cpu_model_number", "cpu_isa"):
        del record["provenance"]["hardware"][name]
    assert record_problems(record) == []
    record["provenance"]["hardware"]["cpu_family"] = "six"
    assert any("hardware.cpu_family" in p for p in record_problems(record))


def test_a_rerun_is_composed_by_the_harness_never_from_the_stored_config(runs):
    """(1): a forged record's stored config could name code for the verify process to build,
    or ``sandbox: none``. The re-run is the harness's own composition of the record's model and
    seed (the cache moved to this machine's, progress off, the sandbox from conf/config.yaml);
    a stored config that differs from it where numbers change is refused, naming the key."""
    record = load_record(runs["cox0"] / "result.json")
    config = record["provenance"]["config"]
    config["sandbox"] = "none"
    config["hydra"] = {"callbacks": {"steal": {"_target_": "attacks.parent_side_predictions"}}}
    cfg = rerun_config(record, "/elsewhere/cache/", "tiny")
    assert cfg.paths.cache_dir == "/elsewhere/cache"
    assert cfg.radiomics.cache_dir == "/elsewhere/cache/radiomics"
    assert cfg.radiomics.progress is False
    assert cfg.sandbox == OmegaConf.load(CONF / "config.yaml").sandbox == "bwrap"
    assert "hydra" not in cfg and cfg.seed == record["seed"] and cfg.model.name == "cox_clinical"
    config["model"]["submission"]["alpha"] = 5.0
    config["radiomics"]["_target_"] = "attacks.parent_side_predictions"
    with pytest.raises(ConfigDrift, match=r"model.submission.alpha: 5.0 vs 0.01"):
        rerun_config(record, "/elsewhere/cache/", "tiny")


def test_committed_deep_records_are_recognised_from_their_config():
    results = Path(__file__).resolve().parents[2] / "leaderboard" / "results"
    kinds = {
        p.stem.split("__")[0]: is_deep(json.loads(p.read_text())["provenance"]["config"])
        for p in results.glob("*__seed0.json")
    }
    assert {m for m, deep in kinds.items() if deep} == {
        "cnn3d",
        "timm25d_convnext_atto",
        "timm25d_efficientnet_b0",
        "timm25d_resnet18",
    }
    assert len(kinds) == 11


def test_gpu_records_use_the_gate_tolerance_and_need_that_gpu(runs):
    record = load_record(runs["cox0"] / "result.json")
    record["provenance"]["config"]["hardware"]["device"] = "cuda"
    record["provenance"]["config"]["model"]["submission"]["train"] = {"amp": "bf16"}
    record["provenance"]["hardware"]["gpu"] = "NVIDIA H200"
    cpu_only = verify.Machine(hardware(), None)
    assert "this machine has no GPU" in verify.not_rerunnable(record, cpu_only)
    other = verify.Machine(hardware(), "NVIDIA A100")
    assert "this machine has a NVIDIA A100" in verify.not_rerunnable(record, other)
    same = verify.Machine(hardware(), "NVIDIA H200")
    assert verify.not_rerunnable(record, same) is None
    assert verify.tolerance(record, same) == 1e-2
    record["provenance"]["config"]["model"]["submission"]["train"] = {"amp": "off"}
    assert verify.tolerance(record, same) == 1e-4
