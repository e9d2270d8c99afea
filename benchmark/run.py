"""One run: open the data, run the protocol, score, write the record (or reuse a finished one)."""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmark.atomic import write_atomic
from benchmark.cohort import COHORTS
from benchmark.data.source import open_dataset
from benchmark.isolation import Limits, isolated_factory
from benchmark.protocol import folds_digest, run_protocol
from benchmark.record_format import CV_KEY_SUFFIX, build_record, record_json
from benchmark.report import metrics_table
from benchmark.run_folder import ARTEFACTS, PREDICTIONS, RECORD, existing_record
from benchmark.scoring import as_dicts, attach_outcomes, score, score_oracle
from benchmark.submission import FitContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """What a run did: computed a new record, or found this run's record already there."""

    record: dict[str, Any]
    reused: bool


def _peak_rss_mib() -> float:
    """Peak resident memory of this process and its finished children (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


def run(cfg: DictConfig, out_dir: Path) -> RunOutcome:
    """Run ``cfg`` through the protocol; write predictions.csv and result.json into ``out_dir``.

    A complete record of the same model, seed, config and data already in ``out_dir`` is
    reused (``benchmark.run_folder.existing_record``): re-running a sweep skips finished jobs.
    """
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    out_dir = Path(out_dir)
    protocol = OmegaConf.to_container(cfg.protocol, resolve=True)
    names = [protocol["development"], *protocol["external"]]
    unknown = [n for n in names if n not in COHORTS]
    if unknown:
        raise ValueError(f"protocol names unknown cohorts {unknown}; known: {COHORTS}")

    # Built first: with sandbox=process its worker server starts while the data are scanned.
    make_model = isolated_factory(
        str(cfg.model.name),
        OmegaConf.to_container(cfg.model.submission, resolve=True),
        int(cfg.seed),
        str(cfg.sandbox),
        Limits(**OmegaConf.to_container(cfg.limits, resolve=True)),
    )
    dataset = open_dataset(
        OmegaConf.to_container(cfg.data, resolve=True),
        names,
        Path(cfg.paths.cache_dir),
        workers=cfg.hardware.workers,
    )
    previous = existing_record(out_dir, cfg, dataset.fingerprint)
    if previous is not None:
        return RunOutcome(previous, reused=True)
    # The development cohort's outcomes train the fits; an external cohort's outcomes are read
    # only once its predictions are back.
    development = dataset.load([protocol["development"]])[protocol["development"]]
    external = dataset.views(protocol["external"])
    log.info("data %s (%s)", dataset.root, dataset.fingerprint)

    model_name = cfg.model.name

    predictions, folds = run_protocol(
        make_model,
        model_name,
        (protocol["development"], development),
        external,
        tuple(protocol["tasks"]),
        n_splits=protocol["cv"]["n_splits"],
        fold_seed=protocol["cv"]["fold_seed"],
        run_context=FitContext(
            seed=int(cfg.seed),
            device=str(cfg.hardware.device),
            workers=int(cfg.hardware.workers),
            artefact_dir=out_dir / ARTEFACTS,
        ),
    )

    by_key = {protocol["development"] + CV_KEY_SUFFIX: development}
    by_key.update(dataset.load(protocol["external"]))
    metrics = score(predictions, by_key, development, protocol)
    tasks = tuple(predictions["task"].unique())
    truth_by_key = {key: dataset.truth(key.removesuffix(CV_KEY_SUFFIX)) for key in by_key}
    oracle = score_oracle(tasks, by_key, truth_by_key, development, protocol)

    record = build_record(
        model=model_name,
        seed=int(cfg.seed),
        metrics=as_dicts(metrics),
        oracle=as_dicts(oracle),
        config=OmegaConf.to_container(cfg, resolve=True),
        data_fingerprint=dataset.fingerprint,
        folds=folds_digest(folds),
        started_at=started_at,
        duration_s=time.perf_counter() - clock,
        peak_rss_mib=_peak_rss_mib(),
    )
    # predictions first: result.json's presence is what marks a complete run.
    write_atomic(out_dir / PREDICTIONS, attach_outcomes(predictions, by_key).to_csv(index=False))
    write_atomic(out_dir / RECORD, record_json(record))
    print(f"\n{model_name} (seed {cfg.seed}) on {dataset.fingerprint[:19]}…\n")
    print(metrics_table(metrics, oracle))
    print(f"\nrecord: {out_dir / RECORD}")
    return RunOutcome(record, reused=False)
