"""``python -m benchmark model=NAME``: one model through the fixed protocol (Hydra entry point).

A single run exits 1 on an error; a sweep (``-m``) runs every job, and its summary
(``benchmark/runner/sweep.py``) exits 1 when one failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from benchmark.runner.config_rules import SubmissionConfigError, check_folders
from hydra_plugins.nsclc_io_bench_submissions.submissions_searchpath import submission_conf_dirs


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    from benchmark.runner.job import run_job  # heavy imports after Hydra has parsed --help / --cfg
    from benchmark.training.settings import TrainSettingsError

    try:
        run_job(cfg, Path(HydraConfig.get().runtime.output_dir))
    except TrainSettingsError as err:  # refused before any data: the rule, not a traceback
        print(err, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    try:  # the search-path plugin refuses them too; here the message comes without a traceback
        check_folders([folder.parent for folder in submission_conf_dirs()])
    except SubmissionConfigError as err:
        print(err, file=sys.stderr)
        sys.exit(2)
    main()
