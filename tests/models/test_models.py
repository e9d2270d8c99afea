"""Every model config (conf/model/*.yaml) composes. Running every model (baselines and
submissions) through the harness and the submission contract is tests/models/test_contract.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class

from baselines import NETWORK_MODELS
from benchmark.api.submission import Network, Submission
from benchmark.records.catalog import discover
from benchmark.runner.probes import size_probe
from benchmark.training.network_size import NetworkSizeError, check_network_size

CONF = Path(__file__).resolve().parents[2] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def model_config(name: str, cache_dir: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="config",
            overrides=[f"model={name}", "data=tiny", f"paths.cache_dir={cache_dir}", *overrides],
        )


@pytest.mark.parametrize("name", MODELS)
def test_every_model_config_composes(name: str, tmp_path: Path):
    cfg = model_config(name, tmp_path)
    assert cfg.model.name == name, "conf/model/<name>.yaml must set name: <name>"
    assert "_target_" in cfg.model.submission


def test_the_declared_deep_baselines_are_those_with_a_network(tmp_path: Path):
    """baselines.NETWORK_MODELS (what benchmark.records.catalog reads) names exactly the baselines
    whose class overrides network(); a submission declares it in its card (network: true)."""
    deep = set()
    for name in MODELS:
        target = model_config(name, tmp_path).model.submission._target_
        if get_class(target).network is not Submission.network:
            deep.add(name)
    assert deep == set(NETWORK_MODELS)
    baselines = {e.name: e.deep for e in discover() if e.kind == "baseline"}
    assert {n for n, d in baselines.items() if d} == deep


def _densenet_network(size: int) -> Network:
    from types import SimpleNamespace

    from monai.networks.nets import DenseNet121

    return Network(
        build=lambda: DenseNet121(spatial_dims=3, in_channels=2, out_channels=1),
        crops=SimpleNamespace(channels=2, size=size),  # type: ignore[arg-type]
        to_input=lambda x: x,
        predictor=lambda net, device: None,  # type: ignore[arg-type, return-value]
        predict_batch=1,
    )


def test_a_network_too_small_for_its_crops_is_refused_with_the_size_it_needs():
    """DenseNet121 (suggested in conf/model/cnn3d.yaml) downsamples 32x: the quick preset's
    21^3 crops do not go through; the probe finds the smallest edge that does."""
    found = size_probe(_densenet_network(21))
    assert found["size"] == 21 and "kernel size" in found["error"]
    smallest = found["smallest"]
    assert smallest is not None and 21 < smallest <= 64
    assert size_probe(_densenet_network(smallest))["error"] is None
    assert size_probe(_densenet_network(smallest - 1))["error"] is not None


def test_training_refuses_a_network_too_small_for_its_crops_before_the_first_step():
    """The check fit_binary runs on its built network: one line with the size needed."""
    network = _densenet_network(21)
    with pytest.raises(NetworkSizeError, match=r"21\^3-voxel crops .* smallest crop it takes"):
        check_network_size(network.build(), network.build, network.to_input, (2, 21, 21, 21))
    check_network_size(network.build(), network.build, network.to_input, (2, 32, 32, 32))
