"""``python -m benchmark.throughput model=NAME``: inference throughput of one model (Hydra app)."""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../../conf", config_name="throughput")
def main(cfg: DictConfig) -> None:
    # heavy imports after Hydra has parsed --help / --cfg
    from benchmark.throughput.app import measure_and_write

    measure_and_write(cfg, Path(HydraConfig.get().runtime.output_dir))


if __name__ == "__main__":
    main()
