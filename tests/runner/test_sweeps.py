"""Sweeps: Hydra launchers, per-job status, failures, skip/resume, seed rows, concurrent caches."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from tiny_runs import bench

from benchmark.api.cohort import COHORTS
from benchmark.data.layout import CACHE_VERSION
from benchmark.records.reading import config_key
from benchmark.runner.run_folder import STATUS, existing_record
from benchmark.runner.sweep import SEEDS_CSV

PROJECT = Path(__file__).resolve().parents[2]
CONF = PROJECT / "conf"
# One process per job on 2 cores: no radiomics/sklearn worker pools inside the jobs.
ONE_WORKER = "hardware.workers=1"
SWEEP = (
    "-m",
    "model=cox_clinical,rsf",
    "seed=0,1",
    "data=tiny",
    "hydra/launcher=joblib",
    "hydra.launcher.n_jobs=2",
    ONE_WORKER,
)


def summary_of(proc: subprocess.CompletedProcess) -> str:
    """The sweep summary the callback prints last (jobs print their own tables before it)."""
    out = proc.stdout
    start = out.rfind("\nsweep ")
    assert start >= 0, f"no sweep summary in stdout:\n{out}\n{proc.stderr}"
    return out[start:]


def status(job: Path) -> dict:
    return json.loads((job / STATUS).read_text())


def file_id(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


@pytest.fixture(scope="module")
def joblib_sweep(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    sweep = tmp_path_factory.mktemp("sweeps") / "joblib"
    proc = bench(*SWEEP, f"hydra.sweep.dir={sweep}", cache_dir=cache_dir)
    return sweep, proc


# --------------------------------------------------------------------------------------------
# Launchers


def test_joblib_sweep_writes_a_record_per_job_and_prints_a_summary(joblib_sweep):
    sweep, proc = joblib_sweep
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert [j.name for j in jobs] == [
        f"data=tiny,hardware.workers=1,model={m},seed={s}"
        for m in ("cox_clinical", "rsf")
        for s in (0, 1)
    ]
    for job in jobs:
        assert status(job)["state"] == "succeeded"
        record = json.loads((job / "result.json").read_text())
        assert f"model={record['model']}" in job.name and f"seed={record['seed']}" in job.name
        assert (job / "predictions.csv").is_file()

    summary = summary_of(proc)
    assert "4 jobs, 4 succeeded, 0 skipped" in summary and "0 failed" in summary
    rows = [line for line in summary.splitlines() if "| pembro_rt_cv" in line]
    assert {row.split("|")[1].strip() for row in rows} == {"cox_clinical", "rsf"}
    assert all("| 0 1 " in row and "±" in row for row in rows)

    # seeds.csv: one row per model/cohort/task/metric over both seeds, the mean of the records
    import pandas as pd

    seeds = pd.read_csv(sweep / SEEDS_CSV)
    row = seeds[
        (seeds.model == "rsf") & (seeds.cohort == "pembro_rt_cv") & (seeds.metric == "c_index")
    ]
    row = row[row.task == "os"].iloc[0]
    values = [
        json.loads((job / "result.json").read_text())["metrics"]["pembro_rt_cv"]["os"]["c_index"][
            "value"
        ]
        for job in jobs
        if "model=rsf" in job.name
    ]
    assert row["n_seeds"] == 2 and row["mean"] == pytest.approx(np.mean(values))
    assert row["sd"] == pytest.approx(np.std(values, ddof=1))
    assert row["ci95_low"] <= row["mean"] <= row["ci95_high"]


@pytest.mark.slow  # ~27 s
def test_joblib_jobs_can_start_process_pools(tmp_path: Path):
    """A loky worker's start method is not the stdlib's: a job's own pools must still work."""
    sweep = tmp_path / "sweep"
    proc = bench(
        "-m",
        "model=cox_clinical",
        "data=tiny",
        "hardware.workers=2",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=1",
        f"hydra.sweep.dir={sweep}",
        cache_dir=tmp_path / "cold-cache",  # the simulator builds the data in a process pool
    )
    assert "1 job, 1 succeeded" in summary_of(proc)


@pytest.mark.slow  # ~30 s; the joblib sweep stays in the default suite
def test_submitit_local_sweep_goes_on_past_a_failed_job_and_names_it(
    tmp_path: Path, cache_dir: Path
):
    sweep = tmp_path / "submitit"
    proc = bench(
        "-m",
        "model=cox_clinical",
        "data=tiny",
        "model.submission.covariates=[pdl1,arm],[pdl1,tumour_colour]",
        "hydra/launcher=submitit_local",
        ONE_WORKER,
        f"hydra.sweep.dir={sweep}",
        cache_dir=cache_dir,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # the sweep says a job failed
    assert (sweep / ".submitit").is_dir()  # jobs went through submitit
    good, bad = (next(sweep.glob(f"*covariates=[[]pdl1,{c}]*")) for c in ("arm", "tumour_colour"))
    assert status(good)["state"] == "succeeded" and (good / "result.json").is_file()
    failure = status(bad)
    assert failure["state"] == "failed" and not (bad / "result.json").exists()
    assert failure["error"]["type"] == "ValueError"
    assert "tumour_colour" in failure["error"]["message"] and failure["error"]["traceback"]

    summary = summary_of(proc)
    assert "2 jobs, 1 succeeded, 0 skipped (record already there), 1 failed" in summary
    assert "ValueError: unknown clinical covariate(s) ['tumour_colour']" in summary
    assert str(bad) in summary
    assert (
        "| cox_clinical | data=tiny hardware.workers=1 model.submission.covariates=[pdl1,arm]"
        in (summary)
    )


def test_launcher_presets_compose():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        local = compose("config", ["hydra/launcher=local"], return_hydra_config=True)
        slurm = compose("config", ["hydra/launcher=slurm"], return_hydra_config=True)
    assert local.hydra.launcher._target_.endswith("JoblibLauncher")
    assert local.hydra.launcher.n_jobs == 2
    assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
    assert slurm.hydra.callbacks.sweep_summary._target_ == "benchmark.runner.sweep.SweepSummary"


def test_slurm_preset_renders_an_sbatch_job_array(tmp_path: Path, monkeypatch):
    """The preset's keys pass submitit's checks and give the intended #SBATCH lines."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", ["hydra/launcher=slurm"], return_hydra_config=True)
    params = OmegaConf.to_container(cfg.hydra.launcher, resolve=False)
    params.pop("_target_")
    params.update(submitit_folder=str(tmp_path / "%j"), name="benchmark")
    # What hydra_submitit_launcher's BaseSubmititLauncher.launch does with these parameters:
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 2))
    executor = submitit.AutoExecutor(
        cluster="slurm",
        folder=params.pop("submitit_folder"),
        slurm_max_num_timeout=params.pop("max_num_timeout"),
    )
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    executor._executor.parameters["map_count"] = 100  # a sweep of 100 jobs: one array
    sbatch = executor._executor._make_submission_file_text("python -m benchmark", "uid")
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH --mem=32GB",
        "#SBATCH --time=120",
        "#SBATCH --array=0-99%32",  # at most array_parallelism at once
    ):
        assert line in sbatch, sbatch


# --------------------------------------------------------------------------------------------
# Skip / resume


@pytest.mark.slow  # ~45 s: a second sweep
def test_rerun_skips_finished_jobs_and_a_changed_config_runs(joblib_sweep, cache_dir: Path):
    sweep, _ = joblib_sweep
    records = sorted(sweep.glob("*/result.json"))
    before = {p: file_id(p) for p in records}

    proc = bench(*SWEEP, f"hydra.sweep.dir={sweep}", cache_dir=cache_dir)
    assert "4 jobs, 0 succeeded, 4 skipped" in summary_of(proc)
    for path in records:
        assert file_id(path) == before[path]  # not rewritten
        assert status(path.parent)["state"] == "skipped"
        assert "skip: " in (path.parent / "__main__.log").read_text()

    # Same job folder (the override kept out of its name), another config: it runs again.
    job = sweep / "data=tiny,hardware.workers=1,model=cox_clinical,seed=0"
    proc = bench(
        "-m",
        "model=cox_clinical",
        "seed=0",
        "data=tiny",
        ONE_WORKER,
        "model.submission.alpha=0.05",
        "hydra.job.config.override_dirname.exclude_keys=[model.submission.alpha]",
        f"hydra.sweep.dir={sweep}",
        cache_dir=cache_dir,
    )
    assert "1 job, 1 succeeded, 0 skipped" in summary_of(proc)
    assert status(job)["state"] == "succeeded"
    assert file_id(job / "result.json") != before[job / "result.json"]
    record = json.loads((job / "result.json").read_text())
    assert record["provenance"]["config"]["model"]["submission"]["alpha"] == 0.05
    assert "is of another config" in (job / "__main__.log").read_text()


def test_existing_record_needs_the_same_model_seed_config_and_data(joblib_sweep, tmp_path):
    sweep, _ = joblib_sweep
    job = next(sweep.glob("*model=rsf,seed=1"))
    record = json.loads((job / "result.json").read_text())
    config, data = record["provenance"]["config"], record["provenance"]["data_fingerprint"]

    def found(changed: dict, fingerprint: str = data, base: dict = config) -> bool:
        cfg = OmegaConf.merge(OmegaConf.create(base), changed)
        return existing_record(job, cfg, fingerprint) is not None

    assert found({})
    # where the caches are (every path under it moves along), and progress bars: no number
    moved = json.loads(json.dumps(config).replace(config["paths"]["cache_dir"], str(tmp_path)))
    assert moved != config and found({"radiomics": {"progress": False}}, base=moved)
    assert not found({"seed": 0})
    assert not found({"model": {"submission": {"n_estimators": 100}}})
    assert not found({"protocol": {"bootstrap": {"n_boot": 10}}})
    assert not found({}, fingerprint="sha256:" + "0" * 64)
    assert existing_record(tmp_path, OmegaConf.create(config), data) is None  # no record there


def test_config_key_ignores_cache_location_and_progress_only():
    config = {
        "seed": 0,
        "paths": {"cache_dir": "/a/cache"},
        "radiomics": {"cache_dir": "/a/cache/radiomics", "progress": True, "binWidth": 25},
    }
    moved = {
        "seed": 0,
        "paths": {"cache_dir": "/b/other"},
        "radiomics": {"cache_dir": "/b/other/radiomics", "progress": False, "binWidth": 25},
    }
    assert config_key(config) == config_key(moved)
    assert config_key(config) != config_key({**config, "seed": 1})
    assert config_key(config, without=("seed",)) == config_key(
        {**config, "seed": 1}, without=("seed",)
    )
    assert config_key(config) != config_key(
        {**config, "radiomics": {**config["radiomics"], "binWidth": 10}}
    )


# --------------------------------------------------------------------------------------------
# Caches filled by concurrent jobs


def _tree(root: Path) -> dict[str, Path]:
    # Lock files (filelock) stay behind by design; everything else must be a complete cache file.
    return {
        p.relative_to(root).as_posix(): p
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CHEAP = (
    "data=tiny",
    ONE_WORKER,
    "radiomics.feature_classes=[shape,firstorder]",
    "protocol.bootstrap.n_boot=50",
)


@pytest.mark.slow  # ~90 s: three full runs at once on a cold cache
def test_three_jobs_fill_a_cold_cache_at_once(tmp_path: Path, tiny_root: Path, tiny_cohorts):
    """rf_radiomics and rsf (the same radiomics, written by both) and cnn3d (crops) start
    together on an empty cache: all succeed, and the cache holds each file once, whole, with the
    content a single process computes, and no temporary file."""
    cache = tmp_path / "cache"
    env = {**os.environ, "NSCLC_IO_BENCH_CACHE": str(cache)}
    jobs = {
        "rf_radiomics": ["model.submission.n_estimators=50"],
        "rsf": ["model.submission.n_estimators=50"],
        "cnn3d": ["hardware.deep.epochs_3d=1", "hardware.deep.min_epochs=0"],
    }
    procs = {
        model: subprocess.Popen(
            [sys.executable, "-m", "benchmark", f"model={model}", *CHEAP, *extra]
            + [f"hydra.run.dir={tmp_path / model}"],
            cwd=PROJECT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for model, extra in jobs.items()
    }
    for model, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"{model}:\n{out}"
        assert (tmp_path / model / "result.json").is_file()

    files = _tree(cache)
    leftovers = [n for n in files if ".tmp" in n or ".old-" in n]
    leftovers += [str(p) for p in cache.rglob("*") if p.is_dir() and ".tmp" in p.name]
    assert not leftovers, leftovers

    # simulated data: one dataset, byte for byte the one a single process builds
    (data,) = [p for p in (cache / "data").iterdir() if p.is_dir()]
    assert data.name == tiny_root.name
    built, reference = _tree(data), _tree(tiny_root)
    assert built.keys() == reference.keys()
    assert all(_digest(built[n]) == _digest(reference[n]) for n in built)

    # layout scan cache: one whole entry per image and mask, the same as a single scan's
    images = {n for n in built if n.endswith(".nii.gz")}
    entries = [json.loads(p.read_text()) for p in (cache / CACHE_VERSION).glob("*.json")]
    assert len(entries) == len(images)
    ref_entries = {}
    for path in (tiny_root.parent.parent / CACHE_VERSION).glob("*.json"):
        entry = json.loads(path.read_text())
        if entry["ident"]["path"].startswith(str(tiny_root.resolve()) + "/"):
            rel = Path(entry["ident"]["path"]).relative_to(tiny_root.resolve()).as_posix()
            ref_entries[rel] = entry
    for entry in entries:
        rel = Path(entry["ident"]["path"]).relative_to(data.resolve()).as_posix()
        assert entry["info"] == ref_entries[rel]["info"], rel

    # blinded views: every image and mask once, linked to the dataset's file
    (view,) = (cache / "views").iterdir()
    linked = {n: p for n, p in _tree(view).items() if not n.startswith(".")}
    assert linked.keys() == images
    assert all(os.path.samefile(p, data / n) for n, p in linked.items())

    # radiomics and crops: per patient one file, equal to what one process computes alone
    from hydra.utils import instantiate

    ref_cache = tmp_path / "reference"
    conf = OmegaConf.create(
        {
            "paths": {"cache_dir": str(ref_cache)},
            "hardware": OmegaConf.load(CONF / "hardware" / "cpu.yaml"),
            "radiomics": OmegaConf.load(CONF / "radiomics" / "default.yaml"),
            "crops": OmegaConf.load(CONF / "crops" / "default.yaml"),
        }
    )
    conf.radiomics.feature_classes = ["shape", "firstorder"]
    conf.hardware.workers = 1
    conf.radiomics.progress = conf.crops.progress = False
    extractor, cropper = instantiate(conf.radiomics), instantiate(conf.crops)
    for name in COHORTS:
        extractor(tiny_cohorts[name].cohort)
        cropper(tiny_cohorts[name].cohort)
    n_patients = sum(len(tiny_cohorts[n].cohort.patients) for n in COHORTS)
    for kind in ("radiomics", "crops"):
        built, reference = _tree(cache / kind), _tree(ref_cache / kind)
        assert built.keys() == reference.keys(), kind
        assert len(built) == n_patients + 1, kind  # + the spec file of the extractor key
        for name, path in built.items():
            if path.suffix == ".json":
                assert json.loads(path.read_text()) == json.loads(reference[name].read_text())
                continue
            with np.load(path) as a, np.load(reference[name]) as b:
                assert a.files == b.files, name
                assert all(np.array_equal(a[k], b[k]) for k in a.files), name
