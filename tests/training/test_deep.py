"""The deep baselines: shared training loop, determinism, weights, configs, and the harness run."""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from tiny_runs import bench, cnn3d_net

from baselines.cnn3d import CNN3D
from baselines.timm25d import Timm25D
from benchmark.api.submission import FitContext
from benchmark.data.crops import LesionCrops
from benchmark.evaluation.protocol import run_protocol
from benchmark.toolkit.deep import build_with_input
from benchmark.training import (
    BatchAugment,
    LesionBatches,
    TrainSettings,
    fit_binary,
    inner_split,
    predict_logits,
)
from benchmark.training.augment import quarter_turns, rotation_matrices, sampling_grid
from benchmark.training.settings import TrainSettingsError, check_train_settings
from benchmark.utils.devices import resolve_device

PROJECT = Path(__file__).resolve().parents[2]

# Small and quick: 16³ crops (48 mm at 3 mm), two epochs.
FAST_TRAIN = TrainSettings(epochs=2, batch_size=8, patience=2, progress=False, threads=2)


def _crops(cache_dir: Path) -> LesionCrops:
    return LesionCrops(cache_dir / "crops", workers=1, spacing_mm=3.0, size_mm=48.0, progress=False)


def _resnet():
    return cnn3d_net([8, 16, 32, 64])


def _model(family: str, cache_dir: Path, seed: int, **kwargs):
    if family == "cnn3d":
        return CNN3D(_crops(cache_dir), _resnet(), FAST_TRAIN, seed=seed, **kwargs)
    kwargs.setdefault("backbone", "test_resnet")  # timm's own tiny test network
    return Timm25D(_crops(cache_dir), train=FAST_TRAIN, seed=seed, **kwargs)


# timm25d: ~17 s, slow; both families share the training loop (benchmark/training.py)
@pytest.mark.parametrize("family", ["cnn3d", pytest.param("timm25d", marks=pytest.mark.slow)])
def test_same_seed_same_predictions_on_cpu(family, tiny_cohorts, cache_dir: Path, tmp_path):
    dev = tiny_cohorts["pembro_rt"]
    external = tiny_cohorts["mdacc"].cohort
    runs = []
    for seed in (0, 0, 1):
        model = _model(family, cache_dir, seed)
        model.fit(dev.cohort, dev.outcomes)
        runs.append(model.predict(external)["lesion_pd"])
    first, again, other = runs
    assert list(first.index) == external.lesion_ids
    assert ((first > 0) & (first < 1)).all()
    np.testing.assert_array_equal(first.to_numpy(), again.to_numpy())
    assert not np.array_equal(first.to_numpy(), other.to_numpy())


def test_the_protocol_names_each_fits_weights_and_they_reload(
    tiny_cohorts, cache_dir: Path, tmp_path: Path
):
    """Each fit's context names its artefact folder (fold0, fold1, final), not a call count."""
    dev = tiny_cohorts["pembro_rt"]
    test = tiny_cohorts["nivorad"]
    models = []

    def make_model():
        models.append(_model("cnn3d", cache_dir, 0))
        return models[-1]

    run_protocol(
        make_model,
        "cnn3d_t",
        ("pembro_rt", dev),
        {"nivorad": test.cohort},
        ("lesion_pd",),
        n_splits=2,
        fold_seed=0,
        run_context=FitContext(seed=0, artefact_dir=tmp_path),
    )
    kept = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.pt"))
    assert kept == ["final/weights.pt", "fold0/weights.pt", "fold1/weights.pt"]
    saved = torch.load(tmp_path / "final" / "weights.pt", weights_only=False)
    assert saved["fit"] == "final" and saved["seed"] == 0
    assert saved["train_patients"] == sorted(dev.cohort.patient_ids)
    assert len(saved["history"]) >= 1 and saved["settings"]["epochs"] == 2
    fold0 = torch.load(tmp_path / "fold0" / "weights.pt", weights_only=False)
    assert set(fold0["train_patients"]) < set(dev.cohort.patient_ids)
    final = models[-1]  # the protocol builds the final model last
    fresh = _model("cnn3d", cache_dir, 5)
    fresh.fit(dev.cohort, dev.outcomes)
    fresh.net_.load_state_dict(saved["state_dict"])
    np.testing.assert_allclose(
        fresh.predict(test.cohort)["lesion_pd"].to_numpy(),
        final.predict(test.cohort)["lesion_pd"].to_numpy(),
    )


def test_inner_split_keeps_patients_together_and_both_classes():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"P{i}" for i in range(20)], 3)
    y = rng.integers(0, 2, len(groups))
    train, val = inner_split(y, groups, 0.2, seed=0)
    assert len(val) > 0 and set(groups[train]).isdisjoint(groups[val])
    assert sorted(np.concatenate([train, val])) == list(range(len(y)))
    assert set(y[val]) == {0, 1}
    # Too few patients: no validation (train on all, keep the last epoch).
    train, val = inner_split(y[:9], groups[:9], 0.2, seed=0)
    assert len(val) == 0 and len(train) == 9


@pytest.mark.parametrize("monitor", ["val_loss", "val_auc"])
def test_early_stopping_restores_the_best_epoch(monitor: str):
    """Noise labels: validation stops improving, and the best epoch's weights are kept."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(48, 1, 8, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, 48)
    groups = np.repeat([f"P{i}" for i in range(16)], 3)
    settings = TrainSettings(
        epochs=12,
        batch_size=8,
        lr=3e-2,
        patience=3,
        augment=False,
        progress=False,
        monitor=monitor,
        min_epochs=2,
    )

    def make_net():
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(512, 1))

    result = fit_binary(make_net, x, y, groups, settings, seed=0)
    sign = 1 if monitor == "val_loss" else -1
    values = [sign * row[monitor] for row in result.history]
    # Epoch 1 is never kept (min_epochs=2); the best of the rest is, ties to the earliest.
    assert result.best_epoch == int(np.argmin(values[1:])) + 2
    assert len(values) == 12 or len(values) - result.best_epoch == 3  # stopped by patience
    # The kept weights are those of the best epoch: predicting the validation set again
    # reproduces its recorded value.
    train, val = inner_split(y, groups, 0.2, 0)
    logits = predict_logits(result.net, x[val], settings)
    if monitor == "val_auc":
        from sklearn.metrics import roc_auc_score

        assert roc_auc_score(y[val], logits) == pytest.approx(-values[result.best_epoch - 1])
    n_pos = y[train].sum()
    assert result.pos_weight == pytest.approx((result.n_train - n_pos) / n_pos)


def test_network_input_channels_follow_the_crops():
    net = build_with_input(_resnet(), channels=1, size=16)
    assert net(torch.zeros(2, 1, 16, 16, 16)).shape == (2, 1)
    from monai.networks.nets import Classifier

    factory = functools.partial(Classifier, classes=1, channels=(4, 8), strides=(2, 2))
    assert build_with_input(factory, channels=2, size=16)(torch.zeros(2, 2, 16, 16, 16)).shape == (
        2,
        1,
    )


def test_timm_loads_a_local_pretrained_file(tmp_path: Path, cache_dir: Path):
    import timm

    source = timm.create_model("resnet18", pretrained=False)  # 3 channels, 1000 classes
    path = tmp_path / "resnet18.pth"
    torch.save(source.state_dict(), path)
    model = _model("timm25d", cache_dir, 0, backbone="resnet18", pretrained_path=str(path))
    net = model.build_net()
    assert net.conv1.weight.shape[1] == model.in_chans == 6
    torch.testing.assert_close(net.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
    assert net.fc.weight.shape == (1, 512)
    with pytest.raises(FileNotFoundError, match="pretrained_path"):
        _model("timm25d", cache_dir, 0, pretrained_path=str(tmp_path / "missing.pth")).build_net()


@pytest.mark.parametrize("backbone", ["resnet18", "efficientnet_b0", "convnext_atto"])
def test_every_backbone_starts_at_p_one_half(backbone: str, cache_dir: Path):
    """timm's EfficientNet head init is U(-1, 1) for one class: logits of +-13 at init, and a
    network that then predicted 0 or 1 for most lesions. The head starts at zero instead."""
    model = _model("timm25d", cache_dir, 0, backbone=backbone, image_size=32)
    net = model.build_net()  # train mode, as the first step sees it
    with torch.no_grad():
        logits = net(
            torch.rand(8, model.in_chans, 32, 32, generator=torch.Generator().manual_seed(0))
        )
    assert torch.count_nonzero(net.get_classifier().weight) == 0
    torch.testing.assert_close(logits, torch.zeros_like(logits))


def test_a_backbone_too_deep_for_the_views_fails_with_the_fix(cache_dir: Path):
    model = _model("timm25d", cache_dir, 0, backbone="convnext_atto")  # 16x16 views: too small
    with pytest.raises(ValueError, match="image_size"):
        model.build_net()
    model.image_size = 32
    assert model.build_net()(torch.zeros(2, 6, 32, 32)).shape == (2, 1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_a_gpu_fails_clearly(tiny_cohorts, tmp_path: Path):
    with pytest.raises(RuntimeError, match="hardware=cpu"):
        resolve_device("cuda")
    crops = LesionCrops(tmp_path / "crops", progress=False)
    model = CNN3D(crops, _resnet(), TrainSettings(progress=False))
    dev = tiny_cohorts["pembro_rt"]
    with pytest.raises(RuntimeError, match="hardware=cpu"):
        model.fit(dev.cohort, dev.outcomes, FitContext(device="cuda"))
    assert not (tmp_path / "crops").exists()  # it failed before cropping anything


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(PROJECT / "conf"), version_base="1.3"):
        return compose("config", overrides=["paths.cache_dir=/tmp/unused", *overrides])


@pytest.mark.parametrize(
    ("model", "backbone"),
    [
        ("timm25d_resnet18", "resnet18"),
        ("timm25d_efficientnet_b0", "efficientnet_b0"),
        ("timm25d_convnext_atto", "convnext_atto"),
    ],
)
def test_timm_variants_compose(model: str, backbone: str):
    cfg = _compose(f"model={model}")
    assert cfg.model.name == model
    sub = instantiate(cfg.model.submission, seed=0, _convert_="all")
    assert isinstance(sub, Timm25D) and sub.backbone == backbone
    assert sub.in_chans == 6 and sub.settings.epochs == cfg.hardware.deep.epochs


def test_backbone_args_reach_timm():
    """ConvNeXt's MLPs as Linear layers (conv_mlp: false), as conf/model/timm25d_convnext_atto.yaml
    asks: without the argument timm builds them as 1x1 convolutions."""
    cfg = _compose("model=timm25d_convnext_atto")
    sub = instantiate(cfg.model.submission, seed=0, _convert_="all")
    assert sub.backbone_args == {"conv_mlp": False}
    mlp = sub.build_net().stages[3].blocks[0].mlp
    assert isinstance(mlp.fc1, torch.nn.Linear)
    sub.backbone_args = {}
    assert isinstance(sub.build_net().stages[3].blocks[0].mlp.fc1, torch.nn.Conv2d)


def test_the_timm_base_is_not_a_model():
    """Variants name themselves; the shared base (conf/model_base) is not selectable."""
    with pytest.raises(Exception, match="timm25d"):
        _compose("model=timm25d")


def test_deep_configs_read_one_training_group():
    """cnn3d and every timm variant share conf/train/default.yaml; cnn3d changes two keys."""
    cnn = _compose("model=cnn3d").model.submission.train
    timm = _compose("model=timm25d_resnet18").model.submission.train
    differs = sorted(k for k in cnn if cnn[k] != timm[k])
    assert differs == ["channels_last", "epochs"]
    assert "device" not in cnn  # the device is the fit context's (hardware.device)


def test_hardware_presets_size_the_deep_models():
    cpu = instantiate(_compose("model=cnn3d").model.submission, seed=0, _convert_="all")
    gpu = instantiate(
        _compose("model=cnn3d", "hardware=gpu").model.submission, seed=0, _convert_="all"
    )
    assert isinstance(cpu, CNN3D) and cpu.crops.size == 32
    assert gpu.crops.size == 64 and gpu.settings.amp == "bf16"
    assert gpu.settings.batch_size > cpu.settings.batch_size
    assert gpu.settings.epochs > cpu.settings.epochs
    assert cpu.crops.key != gpu.crops.key
    assert sum(p.numel() for p in gpu.build_net().parameters()) > 10 * sum(
        p.numel() for p in cpu.build_net().parameters()
    )


def test_the_quick_preset_sets_both_families_on_either_hardware():
    """preset=quick: two epochs, min_epochs 0 and 21^3 crops for cnn3d and timm25d alike."""
    for hardware in ("cpu", "gpu"):
        for model in ("cnn3d", "timm25d_resnet18"):
            cfg = _compose(f"model={model}", f"hardware={hardware}", "preset=quick")
            check_train_settings(cfg)
            train = cfg.model.submission.train
            assert (train.epochs, train.min_epochs) == (2, 0), (hardware, model)
            assert instantiate(cfg.crops).size == 21


def test_refused_training_settings_name_their_config_keys_before_any_data():
    """epochs_3d below min_epochs: one message naming both keys and the fix, in the parent."""
    cfg = _compose("model=cnn3d", "hardware.deep.epochs_3d=2")
    with pytest.raises(TrainSettingsError) as caught:
        check_train_settings(cfg)
    message = str(caught.value)
    assert "min_epochs is 10, epochs 2" in message
    assert "(from hardware.deep.min_epochs)" in message
    assert "(from hardware.deep.epochs_3d)" in message
    assert "preset=quick" in message


def test_a_run_with_refused_training_settings_stops_before_the_data(tmp_path: Path):
    proc = bench(
        "model=cnn3d",
        "data=tiny",
        "hardware.deep.epochs_3d=2",
        f"hydra.run.dir={tmp_path}",
        cache_dir=tmp_path / "cache",
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "hardware.deep.epochs_3d" in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "cache").exists()  # nothing simulated, nothing cropped


# The quick preset (conf/preset/quick.yaml: two epochs, 21^3 crops) and a tiny timm backbone:
# the full path in seconds.
QUICK = ("preset=quick",)


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("cnn3d", ()),
        pytest.param(  # ~60 s; its harness path is cnn3d's, its network is tested above
            "timm25d_resnet18", ("model.submission.backbone=test_resnet",), marks=pytest.mark.slow
        ),
    ],
)
def test_a_tiny_run_through_the_harness(model: str, extra, tmp_path: Path, cache_dir: Path):
    bench(
        f"model={model}",
        "data=tiny",
        *QUICK,
        *extra,
        f"hydra.run.dir={tmp_path}",
        cache_dir=cache_dir,
    )
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["model"] == model
    for key in ("pembro_rt_cv", "nivorad", "mdacc"):
        auc = record["metrics"][key]["lesion_pd"]["auc"]
        assert auc["n"] > 0 and auc["n_pos"] > 0
        assert auc["value"] is None or auc["ci95"][0] <= auc["value"] <= auc["ci95"][1]
    weights = sorted(p.parent.name for p in (tmp_path / "artefacts").glob("*/weights.pt"))
    assert weights == sorted([f"fold{k}" for k in range(5)] + ["final"])
    assert record["provenance"]["config"]["hardware"]["deep"]["epochs"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("model", ["cnn3d", "timm25d_resnet18"])
def test_a_tiny_run_at_the_cpu_defaults(model: str, tmp_path: Path, cache_dir: Path):
    """The CPU preset unchanged (budget: 2 minutes on 2 cores, crops included)."""
    bench(f"model={model}", "data=tiny", f"hydra.run.dir={tmp_path}", cache_dir=cache_dir)
    record = json.loads((tmp_path / "result.json").read_text())
    assert record["metrics"]["pembro_rt_cv"]["lesion_pd"]["auc"]["n"] > 0
    assert (tmp_path / "artefacts" / "final" / "weights.pt").is_file()


# ---- augmentation on whole batches, and the batches of a fit -----------------------------------


def test_flips_and_quarter_turns_move_voxels_without_blurring():
    """The sampling grid means what torch's affine_grid means, and a flip, an axial quarter turn
    or a 90° rotation about x reads voxel centres (bilinear = the moved voxels)."""
    x = torch.rand(3, 2, 8, 8, 8, generator=torch.Generator().manual_seed(0))
    matrix = torch.eye(3).repeat(3, 1, 1)
    matrix[0, 0, 0] = -1.0  # flip x
    matrix[1] = quarter_turns(torch.tensor([1]))[0]
    matrix[2] = rotation_matrices(torch.tensor([[math.pi / 2, 0.0, 0.0]]))[0]
    offset = torch.zeros(3, 3)
    grid = sampling_grid(matrix, offset, (8, 8, 8))
    # affine_grid's theta acts on (z, y, x) normalised coordinates: the same matrix, reversed.
    theta = torch.cat([matrix.flip(1).flip(2), offset[:, :, None]], dim=2)
    expected = torch.nn.functional.affine_grid(theta, [3, 2, 8, 8, 8], align_corners=True)
    torch.testing.assert_close(grid, expected, atol=1e-6, rtol=0)
    out = torch.nn.functional.grid_sample(x, grid, "bilinear", "zeros", align_corners=True)
    torch.testing.assert_close(out[0], x[0].flip(1), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1], torch.rot90(x[1], -1, dims=(1, 2)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[2], torch.rot90(x[2], -1, dims=(2, 3)), atol=1e-5, rtol=0)


def _labelled_crops(n: int = 6, size: int = 16) -> torch.Tensor:
    """CT in [0, 1] and a label channel with a few distinct values, none of them 0."""
    generator = torch.Generator().manual_seed(1)
    ct = torch.rand(n, 1, size, size, size, generator=generator)
    levels = torch.tensor([-1.0, -0.25, 0.5, 1.0])
    labels = levels[torch.randint(0, 4, (n, 1, size, size, size), generator=generator)]
    return torch.cat([ct, labels], dim=1)


def test_augmentation_is_seeded_and_keeps_label_values():
    x = _labelled_crops()
    before = x.clone()
    first = BatchAugment(180.0, 2.0, 0.02, seed=0)(x)
    again = BatchAugment(180.0, 2.0, 0.02, seed=0)(x)
    other = BatchAugment(180.0, 2.0, 0.02, seed=1)(x)
    torch.testing.assert_close(x, before, atol=0, rtol=0)  # the input is not changed
    assert first.shape == x.shape and first.dtype == torch.float32
    assert torch.equal(first, again) and not torch.equal(first, other)
    # Nearest neighbours, padded with the border: a label channel only takes values it had (a
    # distance map padded with 0 would show a lesion surface in the corners).
    assert set(first[:, 1].unique().tolist()) <= {-1.0, -0.25, 0.5, 1.0}
    assert len(first[:, 0].unique()) > 1000  # CT is interpolated
    # Padding: CT with air (0, before intensity jitter of at most +-0.05 and x(1 +- 0.1)),
    # labels with their border: a cube of ones rotated in any orientation shows both.
    ones = torch.ones(8, 2, 16, 16, 16)
    turned = BatchAugment(180.0, seed=0)(ones)
    assert (turned[:, 0].flatten(1).min(dim=1).values < 0.06).all()
    assert (turned[:, 0].flatten(1).max(dim=1).values > 0.85).all()
    assert torch.equal(turned[:, 1], ones[:, 1])


def test_small_rotations_move_half_the_samples():
    """rotate_deg < 90: the affine part applies with probability 0.5 (MONAI's RandAffine),
    the rest only flip and turn (signed permutations); 180: every sample is rotated."""
    matrix, _ = BatchAugment(15.0, seed=0).spatial(400, torch.device("cpu"))
    permutation = ((matrix.abs() - 1).abs() < 1e-6) | (matrix.abs() < 1e-6)
    kept = permutation.flatten(1).all(dim=1).float().mean().item()
    assert 0.4 < kept < 0.6
    matrix, _ = BatchAugment(180.0, seed=0).spatial(400, torch.device("cpu"))
    assert not ((matrix.abs() - 1).abs() < 1e-6).flatten(1).any(dim=1).all()
    angles = torch.linalg.det(matrix).abs()  # rotation x scaling: |det| = product of scales
    assert ((angles > 0.9**3) & (angles < 1.1**3)).all()


def test_batches_are_the_same_with_the_look_ahead_thread_or_without():
    x = _labelled_crops(n=10, size=8)
    y = np.array([0, 1] * 5, dtype=np.float32)
    settings = TrainSettings(batch_size=4, rotate_deg=180.0, noise_std=0.02, augment_ahead=True)
    ahead = LesionBatches(x, y, settings, seed=3, device=torch.device("cpu"))
    in_line = LesionBatches(
        x, y, replace(settings, augment_ahead=False), seed=3, device=torch.device("cpu")
    )
    assert ahead.ahead and not in_line.ahead and len(ahead) == 3  # 4 + 4 + 2
    for _ in range(2):
        for (a, ya), (b, yb) in zip(ahead.epoch(), in_line.epoch(), strict=True):
            assert torch.equal(a, b) and torch.equal(ya, yb)
    # A last batch of one lesion is dropped (BatchNorm cannot train on it).
    assert len(LesionBatches(x[:9], y[:9], settings, 0, torch.device("cpu"))) == 2
    # Handed over in a 3D network's channels-last layout, the same values.
    layout = torch.channels_last_3d
    last = LesionBatches(x, y, settings, 3, torch.device("cpu"), layout)
    plain = LesionBatches(x, y, settings, 3, torch.device("cpu"))
    for (a, _), (b, _) in zip(last.epoch(), plain.epoch(), strict=True):
        assert a.is_contiguous(memory_format=layout) and not b.is_contiguous(memory_format=layout)
        assert torch.equal(a, b)


def test_an_epoch_sees_every_lesion_once_or_balances_the_classes():
    x = torch.arange(40, dtype=torch.float32).view(40, 1, 1, 1, 1).expand(40, 1, 2, 2, 2)
    y = np.array([1] * 4 + [0] * 36, dtype=np.float32)
    plain = TrainSettings(batch_size=8, augment=False)
    seen = torch.cat([b[:, 0, 0, 0, 0] for b, _ in LesionBatches(x, y, plain, 0, "cpu").epoch()])
    assert sorted(seen.tolist()) == list(range(40))
    balanced = LesionBatches(x, y, replace(plain, balance="sampler"), 0, "cpu")
    drawn = torch.cat([t for _ in range(10) for _, t in balanced.epoch()])
    assert 0.4 < drawn.mean().item() < 0.6  # 10% positives, drawn about half the time


def test_the_look_ahead_thread_changes_no_weight():
    rng = np.random.default_rng(2)
    x = rng.random((24, 2, 8, 8, 8)).astype(np.float32)
    y = np.array([0, 1, 1] * 8)
    groups = np.repeat([f"P{i}" for i in range(12)], 2)
    settings = TrainSettings(
        epochs=2, batch_size=8, val_fraction=0.0, rotate_deg=180.0, noise_std=0.02,
        progress=False, threads=1,
    )  # fmt: skip

    def make_net():
        return cnn3d_net([4, 4, 8, 8])(n_input_channels=2)

    weights = []
    for ahead in (True, False):
        result = fit_binary(make_net, x, y, groups, replace(settings, augment_ahead=ahead), 0)
        weights.append(result.net.state_dict())
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name


@pytest.mark.gpu
def test_augmentation_and_a_fit_run_on_the_gpu():
    device = torch.device("cuda")
    x = _labelled_crops().to(device)
    first = BatchAugment(180.0, 2.0, 0.02, seed=0, device=device)(x)
    again = BatchAugment(180.0, 2.0, 0.02, seed=0, device=device)(x)
    assert first.device.type == "cuda" and torch.equal(first, again)
    assert set(first[:, 1].unique().tolist()) <= {-1.0, -0.25, 0.5, 1.0}
    rng = np.random.default_rng(0)
    crops = rng.random((16, 2, 16, 16, 16)).astype(np.float32)
    y = np.array([0, 1] * 8)
    settings = TrainSettings(
        epochs=2, batch_size=8, val_fraction=0.0, device="cuda", progress=False
    )
    result = fit_binary(_resnet(), crops, y, np.arange(16).astype(str), settings, 0)
    assert len(result.history) == 2 and np.isfinite(result.history[-1]["train_loss"])


def test_the_fit_profile_script_names_the_loop_s_parts():
    """scripts/fit_profile.py finds the step by the names the loop has (a rename would file
    every sample under "other" and report 0% forward + backward)."""
    import importlib.util

    from benchmark.training import TrainStep
    from benchmark.training.batches import ahead

    spec = importlib.util.spec_from_file_location("fit_profile", PROJECT / "scripts/fit_profile.py")
    profile = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profile)
    fit = f"{fit_binary.__name__} (benchmark/training/fit.py:1)"
    step = f"{TrainStep.__call__.__qualname__} (benchmark/training/fit.py:2)"
    module = "_call_impl (torch/nn/modules/module.py:3)"
    cases = {
        "forward": [fit, step, module, "forward (monai/networks/nets/resnet.py:4)"],
        "backward": [fit, step, "backward (torch/_tensor.py:5)"],
        "loss": [fit, step, module, "BCEWithLogitsLoss.forward (torch/nn/modules/loss.py:6)"],
        "waiting for the next augmented batch": [
            fit,
            f"{ahead.__name__} (benchmark/training/batches.py:7)",
            "wait (threading.py:8)",
        ],
    }
    for expected, frames in cases.items():
        assert profile.categorise(frames) == (expected, True)
    assert profile.categorise(["LesionCrops.__call__ (benchmark/data/crops.py:9)"])[1] is False
