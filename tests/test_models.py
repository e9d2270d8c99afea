"""Every model config (conf/model/*.yaml) composes. Running every model (baselines and
submissions) through the harness and the submission contract is tests/test_contract.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parents[1] / "conf"
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
