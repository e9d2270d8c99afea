"""benchmark.throughput on the CPU: sweep rows, accuracy gate, OOM retry, end-to-end, record."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tiny_runs import cnn3d_net, declared
from torch import nn

from benchmark.api.cohort import Cohort, Outcomes
from benchmark.api.submission import FitContext, Network, Predictions, Submission
from benchmark.data.crops import LesionCrops
from benchmark.leaderboard.throughput_table import ThroughputRecord, render_throughput
from benchmark.records.catalog import by_name
from benchmark.records.schemas import THROUGHPUT_V1, schema_errors
from benchmark.throughput import throughput_record as records
from benchmark.throughput.app import measure, measure_and_write
from benchmark.throughput.end_to_end import choose_mode, memory_chunks, stream_predict
from benchmark.throughput.gate import gate_inputs
from benchmark.throughput.measuring import peak_flops
from benchmark.throughput.model_only import (
    STATUS_FAILED,
    STATUS_OOM_RETRIED,
    DeepTarget,
    deep_target,
    sweep,
    with_oom_retry,
)
from benchmark.throughput.settings import (
    EndToEndSettings,
    GateSettings,
    SweepSettings,
    TrainingScopeSettings,
)
from benchmark.throughput.training import PATHS, train_settings, training_throughput
from benchmark.training import TrainSettings

PROJECT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")
SHAPE = (2, 12, 12, 12)  # [C, x, y, z]: tiny crops


def _settings(**overrides) -> SweepSettings:
    base = dict(
        device="cpu",
        precisions=("fp32", "bf16"),
        layouts=("contiguous",),
        batch_sizes=(1, 2),
        warmup=1,
        min_iters=1,
        max_iters=5,
        min_time_s=0.0,
        latency_iters=3,
        threads=1,
        progress=False,
        gate=GateSettings(batch=4),
    )
    return SweepSettings(**{**base, **overrides})


def _target(make_net, name: str = "fake") -> DeepTarget:
    return DeepTarget(name, make_net, SHAPE, SHAPE, lambda t: t)


def _tiny_resnet() -> nn.Module:
    return cnn3d_net([4, 8, 8, 8])(n_input_channels=2)


class _Pooled(nn.Module):
    """A 3D conv + mean: a logit per sample, cheap."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv3d(2, 1, 3)

    def logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(1, 2, 3, 4))[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(x)


class _OutOfMemoryAbove(_Pooled):
    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"simulated: batch {x.shape[0]} > {self.limit}")
        return self.logit(x)


class _PerturbedLowPrecision(_Pooled):
    """Right in fp32; its reduced-precision path is off by a logit of 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift = 1.0 if torch.is_autocast_enabled(x.device.type) else 0.0
        return self.logit(x) + shift


def test_sweep_records_rows_gate_latency_and_flops():
    torch.set_num_threads(1)
    result = sweep(_target(_tiny_resnet, "tiny-resnet"), _settings(), CPU)
    assert [(r.precision, r.batch) for r in result.rows] == [
        ("fp32", 1),
        ("fp32", 2),
        ("bf16", 1),
        ("bf16", 2),
    ]
    assert result.flops_per_sample and result.flops_per_sample > 0
    assert result.skipped == []
    for row in result.rows:
        assert row.samples_per_s > 0 and row.iters >= 1 and row.batch_run == row.batch
        assert set(row.gate) >= {"max_abs_diff", "tolerance", "passed"}
        assert row.gate["tolerance"] == (1e-4 if row.precision == "fp32" else 1e-2)
        assert row.achieved_tflop_per_s > 0 and row.peak_share is None  # no peak for a CPU
        assert (row.latency_p50_ms is not None) == (row.batch == 1)
    fp32 = [r for r in result.rows if r.precision == "fp32"]
    assert all(r.gate["passed"] and r.gate["max_abs_diff"] == 0.0 for r in fp32)
    lo, hi = result.reference_range
    assert 0.0 < lo <= hi < 1.0  # BatchNorm calibrated: the reference is not saturated


def test_tf32_is_skipped_on_cpu_with_a_reason():
    settings = _settings(precisions=("fp32", "tf32"), batch_sizes=(1,))
    result = sweep(_target(lambda: _PerturbedLowPrecision()), settings, CPU)
    assert [r.precision for r in result.rows] == ["fp32"]
    assert result.skipped[0]["precision"] == "tf32" and "CUDA" in result.skipped[0]["reason"]


def test_out_of_memory_retries_at_half_the_batch():
    settings = _settings(precisions=("fp32",), batch_sizes=(1, 2, 8))
    result = sweep(_target(lambda: _OutOfMemoryAbove(2)), settings, CPU)
    by_batch = {r.batch: r for r in result.rows}
    assert by_batch[2].status == "ok" and by_batch[2].oom_at == []
    retried = by_batch[8]
    assert retried.status == STATUS_OOM_RETRIED
    assert retried.oom_at == [8, 4] and retried.batch_run == 2
    assert retried.samples_per_s > 0


def test_out_of_memory_at_every_batch_fails_the_row():
    calls = []

    def measure(batch: int) -> int:
        calls.append(batch)
        raise torch.OutOfMemoryError("simulated")

    assert with_oom_retry(measure, 4, CPU) == (None, None, [4, 2, 1])
    assert calls == [4, 2, 1]
    settings = _settings(precisions=("fp32",), batch_sizes=(4,))
    row = sweep(_target(lambda: _OutOfMemoryAbove(0)), settings, CPU).rows[0]
    assert row.status == STATUS_FAILED and "out of memory" in row.error


def test_a_perturbed_reduced_precision_path_fails_the_gate():
    result = sweep(_target(lambda: _PerturbedLowPrecision()), _settings(), CPU)
    for row in result.rows:
        if row.precision == "fp32":
            assert row.status == "ok" and row.gate["passed"]
        else:
            assert row.status == STATUS_FAILED and not row.gate["passed"]
            assert row.gate["max_abs_diff"] > 0.1 > row.gate["tolerance"]
            assert "accuracy gate" in row.error
            assert row.samples_per_s > 0  # timed anyway, shown, never counted
    assert result.best().precision == "fp32"
    mode, batch, how = choose_mode(result, EndToEndSettings(), (1, 2), n=10)
    assert (mode.precision, batch) == ("fp32", 2) and "fastest passing" in how


@pytest.mark.parametrize("pad", [False, True])
def test_stream_predict_matches_one_forward_pass(pad: bool):
    torch.manual_seed(0)
    net = _tiny_resnet().eval()
    crops = np.random.default_rng(0).random((7, *SHAPE)).astype(np.float16)
    ids = [f"L{i}" for i in range(7)]

    def predict(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return torch.sigmoid(net(x)).reshape(-1)

    result = stream_predict(
        memory_chunks(crops, ids, size=2), predict, lambda t: t, SHAPE, batch=3, device=CPU, pad=pad
    )
    expected = predict(torch.from_numpy(crops).float()).numpy()
    assert result.lesion_ids == ids and result.batches == 3
    assert result.padded == (2 if pad else 0)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-6)


def test_tf32_flags_are_set_and_restored():
    from benchmark.throughput.model_only import tf32_math

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    for enabled in (True, False):
        with tf32_math(enabled):
            assert torch.backends.cuda.matmul.allow_tf32 is enabled
            assert torch.backends.cudnn.allow_tf32 is enabled
            torch.get_float32_matmul_precision()  # readable: no legacy/new API mix
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before


def test_settings_are_checked_before_any_work():
    with pytest.raises(ValueError, match="precisions"):
        SweepSettings.from_config({"precisions": ["fp8"]})
    with pytest.raises(ValueError, match="unknown settings"):
        SweepSettings.from_config({"batchsizes": [1]})
    with pytest.raises(ValueError, match="cohorts"):
        SweepSettings.from_config({"end_to_end": {"cohorts": ["nowhere"]}})


def test_peak_flops_by_gpu_name():
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4e12)
    assert peak_flops("NVIDIA H100 PCIe", "tf32") == pytest.approx(378e12)
    assert peak_flops("NVIDIA H200", "fp32") == pytest.approx(67e12)
    assert peak_flops("NVIDIA H200 NVL", "fp16") == pytest.approx(835.5e12)
    assert peak_flops("Some GPU", "fp32") is None and peak_flops(None, "fp32") is None


def _compose(cache_dir: Path, *overrides: str):
    with initialize_config_dir(str(PROJECT / "conf"), version_base="1.3"):
        return compose("throughput", overrides=[f"paths.cache_dir={cache_dir}", *overrides])


def test_config_presets_follow_the_device(cache_dir: Path):
    cpu = SweepSettings.from_config(dict(_compose(cache_dir, "model=timm25d_resnet18").throughput))
    gpu = SweepSettings.from_config(dict(_compose(cache_dir, "hardware=gpu").throughput))
    assert cpu.device == "cpu" and cpu.precisions == ("fp32", "bf16")
    assert gpu.device == "cuda" and gpu.precisions == ("fp32", "tf32", "bf16", "fp16")
    assert max(gpu.batch_sizes) > max(cpu.batch_sizes)


FAST = (
    "data=tiny",
    "hardware.workers=1",
    "throughput.threads=1",
    "throughput.batch_sizes=[1,2]",
    "throughput.precisions=[fp32,bf16]",
    "throughput.min_time_s=0",
    "throughput.warmup=1",
    "throughput.latency_iters=3",
    "throughput.end_to_end.repeats=1",
    "throughput.progress=false",
    "throughput.end_to_end.cohorts=[mdacc]",
    "throughput.end_to_end.precision=fp32",
    "throughput.end_to_end.layout=contiguous",
    "throughput.training.lesions=8",
    "throughput.training.warmup=1",
    "throughput.training.min_steps=1",
    "throughput.training.min_time_s=0",
    "throughput.training.repeats=2",
    "crops.progress=false",
)


@pytest.mark.parametrize(
    ("model", "net", "input_shape", "layout"),
    [
        (
            "cnn3d",
            "model.submission.net.block_inplanes=[4,8,8,8]",
            [2, 12, 12, 12],
            "channels_last_3d",
        ),
        pytest.param(  # ~11 s; the record's shape is cnn3d's
            "timm25d_resnet18",
            "model.submission.image_size=16",
            [6, 16, 16],
            "channels_last",
            marks=pytest.mark.slow,
        ),
    ],
    ids=["cnn3d", "timm25d_resnet18"],
)
def test_deep_model_record_on_tiny_cohorts(
    model: str,
    net: str,
    input_shape: list[int],
    layout: str,
    cache_dir: Path,
    tmp_path: Path,
    capsys,
):
    cfg = _compose(
        cache_dir, f"model={model}", *FAST, "crops.spacing_mm=4.0", "crops.size_mm=48.0", net
    )
    record = measure_and_write(cfg, tmp_path)
    assert json.loads((tmp_path / "throughput.json").read_text()) == record
    assert record["schema"] == records.THROUGHPUT_SCHEMA and record["model"] == model
    assert record["input"]["network_input_shape"] == input_shape
    assert record["flops_per_sample"] > 0
    rows = record["model_only"]["rows"]
    assert {(r["precision"], r["layout"], r["batch"]) for r in rows} == {
        (p, lay, b) for p in ("fp32", "bf16") for lay in ("contiguous", layout) for b in (1, 2)
    }
    assert all(r["samples_per_s"] > 0 and "passed" in r["gate"] for r in rows)
    e2e = record["end_to_end"]
    paths = [(r["path"], r["cache"]) for r in e2e["rows"]]
    assert paths == [
        ("stream", "cold"),
        ("stream", "warm"),
        ("stream", "in host memory"),
        ("harness-predict", "warm"),
    ]
    assert all(r["lesions_per_s"] > 0 for r in e2e["rows"])
    assert e2e["mode"]["precision"] == "fp32" and e2e["workers"]["crop_processes"] == 1
    assert e2e["rows"][3]["max_abs_diff_vs_stream"] < 1e-5  # the fast path predicts the same
    assert e2e["ratio_warm_to_model_only"] > 0
    for key in ("torch", "cpu", "cpu_count", "packages"):
        assert key in record["hardware"]
    assert record["suggested_name"].startswith(f"{model}__cpu-")
    assert "fp32-bf16" in record["suggested_name"]
    out = capsys.readouterr().out
    assert "samples/s" in out and "lesions/s" in out and "ms/lesion" in out
    # Each figure states the grid it was measured on (tiny MDACC: 1.8 x 1.8 x 5 mm voxels).
    grid = e2e["images"]
    assert grid["spacing_mm_min"] == grid["spacing_mm_max"] == [1.8, 1.8, 5.0]
    assert "images " in out and "spacing (1.8, 1.8, 5) mm" in out
    cold = e2e["rows"][0]
    assert cold["ms_per_lesion"] == pytest.approx(
        1000 * cold["seconds"] / e2e["counts"]["lesions"], rel=1e-2
    )
    # What the leaderboard reads (benchmark/leaderboard/throughput_table.py) is there.
    assert schema_errors(record, THROUGHPUT_V1) == []
    # The training scope: the model's own settings, augmentation off, in line and ahead.
    training = record["training"]
    assert training["measured"] and training["batch"] == cfg.model.submission.train.batch_size
    assert [r["path"] for r in training["rows"]] == [
        "no augmentation",
        "augmentation in line",
        "augmentation ahead",
    ]
    assert all(
        r["samples_per_s"] > 0 and len(r["runs_samples_per_s"]) == 2 for r in training["rows"]
    )
    by_path = {r["path"]: r["samples_per_s"] for r in training["rows"]}
    assert training["fit_path"] == "augmentation ahead"
    assert training["ratio"] == pytest.approx(
        by_path["augmentation ahead"] / by_path["no augmentation"], rel=1e-3
    )
    assert training["augment_ms_per_batch"] > 0 and "training" in record["scope"]
    assert "with augmentation / without" in out
    scopes = [r["scope"] for r in record["rows"]]
    assert scopes.count("model-only") == len(rows) and len(scopes) == len(rows) + 3 + 4
    assert scopes[len(rows) : len(rows) + 3] == [f"training ({p})" for p in by_path]
    table = render_throughput([ThroughputRecord(tmp_path / record["suggested_name"], record)])
    assert table.count("| model-only |") == len(rows)
    # The summary line: the device slug, and the record's own warm / model-only ratio.
    (summary,) = [line for line in table.splitlines() if line.startswith(f"| {model} | cpu-")]
    assert f"| {e2e['ratio_warm_to_model_only']:.2f} |" in summary


def test_clinical_model_is_end_to_end_only(cache_dir: Path):
    cfg = _compose(cache_dir, "model=cox_clinical", *FAST)
    record = measure(cfg)
    assert record["model_only"]["measured"] is False
    assert "no imaging" in record["model_only"]["reason"]
    (row,) = record["end_to_end"]["rows"]
    assert row["cache"] == "none" and row["patients_per_s"] > 0 and row["lesions_per_s"] is None
    assert record["rows"][0]["unit"] == "patients"
    assert record["end_to_end"]["fitted_on"] == "pembro_rt"


def test_radiomics_model_cold_and_warm(cache_dir: Path):
    record = measure(_compose(cache_dir, "model=rf_radiomics", *FAST))
    caches = [r["cache"] for r in record["end_to_end"]["rows"]]
    assert caches == ["cold", "warm"]
    assert record["end_to_end"]["workers"]["features_processes"] == 1


class _OwnDeepModel(Submission):
    """A deep submission of its own (no CropClassifier): a tiny net declared via network()."""

    tasks = ("lesion_pd",)

    def __init__(self, crops: LesionCrops) -> None:
        self.crops = crops

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> _OwnDeepModel:
        torch.manual_seed(context.seed)
        self.net_ = _Pooled()
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        return self._predict(self.net_, "cpu", cohort)

    def _predict(self, net: nn.Module, device: str, cohort: Cohort) -> Predictions:
        x, ids = self.crops(cohort)
        with torch.no_grad():
            logits = net.eval().to(device)(torch.from_numpy(x).float().to(device))
        return {"lesion_pd": pd.Series(torch.sigmoid(logits).reshape(-1).cpu().numpy(), ids)}

    def network(self) -> Network:
        return Network(
            build=_Pooled,
            crops=self.crops,
            to_input=lambda t: t,
            predictor=lambda net, device: functools.partial(self._predict, net, device),
            predict_batch=1024,  # one batch: more than the lesions of a tiny cohort
        )


class _NoNetwork(Submission):
    """A model without a network or per-lesion cache: a constant risk per patient."""

    tasks = ("os",)

    def fit(
        self, cohort: Cohort, outcomes: Outcomes, context: FitContext = FitContext()
    ) -> _NoNetwork:
        return self

    def predict(self, cohort: Cohort) -> Predictions:
        return {"os": pd.Series(0.0, index=cohort.patient_ids)}


TINY_CROPS = ("crops.spacing_mm=4.0", "crops.size_mm=48.0")


def test_a_declared_network_is_measured_whatever_its_class(cache_dir: Path):
    cfg = _compose(cache_dir, *FAST, *TINY_CROPS, "throughput.layouts=[contiguous]")
    record = measure(cfg, _OwnDeepModel(instantiate(cfg.crops)))
    assert record["model_only"]["measured"] is True
    assert record["input"]["network_input_shape"] == [2, 12, 12, 12]
    rows = record["model_only"]["rows"]
    assert {(r["precision"], r["batch"]) for r in rows} == {
        (p, b) for p in ("fp32", "bf16") for b in (1, 2)
    }
    assert all(r["samples_per_s"] > 0 for r in rows)
    e2e = record["end_to_end"]
    harness = [r for r in e2e["rows"] if r["path"] == "harness-predict"]
    assert len(harness) == 1 and harness[0]["max_abs_diff_vs_stream"] < 1e-5
    assert e2e["workers"]["crop_processes"] == 1


def test_training_scope_needs_the_shared_training_settings(cache_dir: Path):
    """Settings come from the model config's ``submission.train``; a submission handed in (it
    may train otherwise) or a model without that node is not timed, and says why."""
    cfg = _compose(cache_dir, *FAST, *TINY_CROPS, "throughput.layouts=[contiguous]")
    record = measure(cfg, _OwnDeepModel(instantiate(cfg.crops)))
    assert record["training"]["measured"] is False
    assert "not built from the model config" in record["training"]["reason"]
    assert not any(r["scope"].startswith("training") for r in record["rows"])
    assert train_settings(None) is None
    assert train_settings({"_target_": "some.Other", "epochs": 3}) is None
    node = OmegaConf.to_container(cfg.model.submission.train, resolve=True)
    assert train_settings(node) == TrainSettings(
        **{k: v for k, v in node.items() if k != "_target_"}
    )


def test_training_rows_time_the_fit_loop_with_and_without_augmentation():
    """A real (tiny) network: every row trains, the ratio is as the fit runs (ahead on the CPU)."""
    net = cnn3d_net([4, 8, 8, 8])
    crops = LesionCrops(None, spacing_mm=4.0, size_mm=48.0, progress=False)
    network = Network(
        build=lambda: net(n_input_channels=2), crops=crops, to_input=lambda t: t,
        predictor=lambda n, d: None, predict_batch=8,
    )  # fmt: skip
    train = TrainSettings(batch_size=4, rotate_deg=180, noise_std=0.02, threads=1, progress=False)
    scope = TrainingScopeSettings(lesions=8, warmup=1, min_steps=2, min_time_s=0, repeats=1)
    result = training_throughput(network, train, CPU, scope)
    assert [r["path"] for r in result["rows"]] == list(PATHS)
    assert all(r["steps"] == 2 and r["samples_per_s"] > 0 for r in result["rows"])
    assert result["crop_shape"] == [2, 12, 12, 12] and result["threads"] == 1
    serial = replace(train, augment_ahead=False)
    assert training_throughput(network, serial, CPU, scope)["fit_path"] == "augmentation in line"
    with pytest.raises(ValueError, match="unknown"):
        TrainingScopeSettings.from_config({"lesion": 3})


def test_no_declared_network_is_end_to_end_only(cache_dir: Path):
    record = measure(_compose(cache_dir, *FAST), _NoNetwork())
    assert record["model_only"] == {
        "measured": False,
        "reason": "no imaging and no network (clinical tables only)",
    }
    assert set(record["scope"]) == {"end_to_end"}
    assert record["tasks"] == ["os"]
    (row,) = record["end_to_end"]["rows"]
    assert row["path"] == "submission.predict" and row["patients_per_s"] > 0


@pytest.mark.parametrize(
    ("model", "caches", "has_network"),
    [
        ("cnn3d", ["crops"], True),
        ("timm25d_resnet18", ["crops"], True),
        ("rf_radiomics", ["features"], False),
        ("rsf", ["features"], False),
        ("lr_volume", ["features"], False),
        ("cox_clinical", [], False),
        ("template", ["features"], False),
        ("hgb_radiomics_clinical", ["features"], False),
        ("peritumoral_radiomics", ["features", "ring_features"], False),
    ],
)
def test_every_model_declares_its_caches_and_network(
    model: str, caches: list[str], has_network: bool, cache_dir: Path
):
    """A baseline (the harness's own code) is built here; a submission in the sandbox, where its
    worker answers (tests/tiny_runs.py: declared), since CI must not run contributed code here."""
    if by_name()[model].kind == "baseline":
        submission = instantiate(_compose(cache_dir, f"model={model}").model.submission)
        found = {
            name: {"cache_dir": c.cache_dir, "workers": c.workers, "cache_path": c.cache_path}
            for name, c in submission.caches().items()
        }
        network = submission.network() is not None
    else:
        report = declared(model, cache_dir)
        found, network = report.caches, report.network
    assert sorted(found) == caches
    for cache in found.values():
        assert cache["cache_dir"] is not None and cache["workers"] >= 1
        assert cache["cache_path"] is True or callable(cache["cache_path"])
    assert network == has_network


def test_a_zero_head_is_given_weights_so_the_gate_compares_something(tmp_path: Path):
    """timm25d starts its head at zero (p = 0.5 for every lesion); the measured copy must not,
    or every precision would 'agree' with fp32 on a constant."""
    from baselines.timm25d import Timm25D

    crops = LesionCrops(tmp_path, progress=False, spacing_mm=4.0, size_mm=64.0)
    submission = Timm25D(crops, backbone="test_resnet", image_size=32)
    assert not submission.build_net().get_classifier().weight.any()  # as training starts it
    target = deep_target(submission.network(), "timm25d_test")
    x = gate_inputs(target.input_shape, 8, 0)
    net = target.build(torch.device("cpu"), calibration=x)
    with torch.no_grad():
        p = torch.sigmoid(net(x)).reshape(-1)
    assert p.std() > 1e-3  # predictions that differ between lesions
