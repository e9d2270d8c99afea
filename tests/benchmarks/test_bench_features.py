"""Per-lesion work on the CPU: radiomics extraction and lesion crops (fresh, cached, and at
clinical resolution), augmentation and the training step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from tiny_runs import cnn3d_net

from benchmark.data.crops import LesionCrops, crop_patient, views_25d
from benchmark.features.radiomics import RadiomicsExtractor
from benchmark.throughput.end_to_end import cached_patients, read_patient
from benchmark.training import BatchAugment, TrainSettings, TrainStep
from benchmark.utils.threads import torch_threads

pytestmark = pytest.mark.benchmark

PROJECT = Path(__file__).resolve().parents[2]
# (spacing mm, cube edge mm): conf/hardware/cpu.yaml and gpu.yaml `deep` presets.
CROP_PRESETS = {
    preset: (float(deep.spacing_mm), float(deep.size_mm))
    for preset in ("cpu", "gpu")
    for deep in [OmegaConf.load(PROJECT / "conf" / "hardware" / f"{preset}.yaml").deep]
}
WINDOW = (-1000.0, 400.0)


@pytest.fixture(scope="module")
def pembro_rt(tiny_cohorts):
    return tiny_cohorts["pembro_rt"].cohort


@pytest.fixture(scope="module")
def one_lesion(pembro_rt):
    """The first patient of the cohort with a single lesion, as a one-patient cohort."""
    counts = pembro_rt.lesions["patient_id"].value_counts()
    pid = str(counts.index[counts.argmin()])
    return pembro_rt.subset([pid])


def _extractor(cache_dir: Path | None) -> RadiomicsExtractor:
    conf = OmegaConf.load(PROJECT / "conf" / "radiomics" / "default.yaml")
    return RadiomicsExtractor(
        settings=conf.settings,
        feature_classes=conf.feature_classes,
        image_types=conf.image_types,
        cache_dir=cache_dir,
        workers=1,
        progress=False,
    )


def test_radiomics_one_patient_no_cache(benchmark, one_lesion):
    extractor = _extractor(None)
    benchmark.extra_info["lesions"] = len(one_lesion.lesions)
    frame = benchmark.pedantic(extractor, args=(one_lesion,), rounds=3, warmup_rounds=1)
    assert frame.shape[0] == len(one_lesion.lesions) and frame.shape[1] > 50


def test_radiomics_cohort_cache_hit(benchmark, pembro_rt, tmp_path):
    extractor = _extractor(tmp_path)
    extractor(pembro_rt)
    benchmark.extra_info["lesions"] = len(pembro_rt.lesions)
    assert benchmark(extractor, pembro_rt).shape[0] == len(pembro_rt.lesions)


@pytest.mark.parametrize("preset", sorted(CROP_PRESETS))
def test_crop_one_patient(benchmark, one_lesion, preset: str):
    spacing, size_mm = CROP_PRESETS[preset]
    pid = one_lesion.patient_ids[0]
    args = (
        str(one_lesion.images[pid]),
        str(one_lesion.masks[pid]),
        spacing,
        round(size_mm / spacing),
        WINDOW,
    )
    with torch_threads(1):  # as in the crop workers
        out = benchmark.pedantic(crop_patient, args=args, rounds=5, warmup_rounds=1)
    assert out["ct"].shape[1:] == (round(size_mm / spacing),) * 3


@pytest.mark.parametrize("preset", sorted(CROP_PRESETS))
@pytest.mark.parametrize("case", ["lung1", "lung2"])
def test_crop_clinical_ct(benchmark, real_fixtures, case: str, preset: str):
    """pyradiomics' real lung CTs, 512x512 (one lesion each): issue 27's budget is 300 ms."""
    spacing, size_mm = CROP_PRESETS[preset]
    folder = real_fixtures / "lung_cohorts" / "pembro_rt"
    patient = f"PRT-{case.upper()}"
    args = (
        str(folder / "images" / f"{patient}.nii.gz"),
        str(folder / "masks" / f"{patient}.nii.gz"),
        spacing,
        round(size_mm / spacing),
        WINDOW,
    )
    with torch_threads(1):
        out = benchmark.pedantic(crop_patient, args=args, rounds=5, warmup_rounds=1)
    assert out["labels"].tolist() == [1]


def test_crops_cohort_cache_hit(benchmark, pembro_rt, tmp_path):
    crops = LesionCrops(tmp_path, workers=1, progress=False)
    crops(pembro_rt)
    benchmark.extra_info["lesions"] = len(pembro_rt.lesions)
    x, ids = benchmark(crops, pembro_rt)
    assert x.shape[0] == len(ids) == len(pembro_rt.lesions)


def test_stream_reads_cached_crops(benchmark, pembro_rt, tmp_path):
    """The end-to-end path's reader: float16 crops straight from the cache files."""
    crops = LesionCrops(tmp_path, workers=1, progress=False)
    crops(pembro_rt)
    items = cached_patients(crops, [pembro_rt])

    def read_all() -> int:
        return sum(len(read_patient(item)[0]) for item in items)

    assert benchmark(read_all) == len(pembro_rt.lesions)


def test_views_25d_with_resize(benchmark):
    x = torch.rand((64, 2, 32, 32, 32))

    def views() -> torch.Tensor:
        images = views_25d(x)
        return torch.nn.functional.interpolate(images, size=(64, 64), mode="bilinear")

    assert benchmark(views).shape == (64, 6, 64, 64)


def test_cnn3d_forward_at_the_cpu_preset(benchmark):
    torch.manual_seed(0)
    net = cnn3d_net([16, 32, 64, 128])(n_input_channels=2).eval()  # hardware/cpu.yaml widths
    x = torch.rand((8, 2, 32, 32, 32))

    def forward() -> np.ndarray:
        with torch.inference_mode():
            return net(x).numpy()

    with torch_threads(1):  # conf/hardware/cpu.yaml deep.threads
        assert benchmark(forward).shape == (8, 1)


def test_augment_a_training_batch_at_the_cpu_preset(benchmark):
    """conf/train/default.yaml's augmentation on a batch of conf/hardware/cpu.yaml crops."""
    augment = BatchAugment(180.0, 2.0, 0.02, seed=0)
    x = torch.rand((16, 2, 32, 32, 32))
    with torch_threads(1):
        assert benchmark(augment, x).shape == x.shape


def test_cnn3d_training_step_at_the_cpu_preset(benchmark):
    torch.manual_seed(0)
    net = cnn3d_net([16, 32, 64, 128])(n_input_channels=2)
    x, y = torch.rand((16, 2, 32, 32, 32)), (torch.rand(16) < 0.4).float()
    settings = TrainSettings(batch_size=16, channels_last=True, threads=1)
    step = TrainStep(net, settings, torch.device("cpu"), example=x, total_steps=10**6)
    with torch_threads(1):
        assert torch.isfinite(benchmark(step, x, y))
