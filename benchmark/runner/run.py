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

from benchmark.api.cohort import COHORTS
from benchmark.api.submission import FitContext, LesionCache
from benchmark.data.source import open_dataset
from benchmark.data.watch import FileWatch
from benchmark.evaluation.protocol import folds_digest, run_protocol
from benchmark.evaluation.report import metrics_table
from benchmark.evaluation.scoring import as_dicts, attach_outcomes, score, score_oracle
from benchmark.records.record_format import CV_KEY_SUFFIX, PROJECT_ROOT, build_record, record_json
from benchmark.runner.harness_caches import fill, folders, harness_caches, harness_nodes
from benchmark.runner.run_folder import (
    ARTEFACTS,
    PREDICTIONS,
    RECORD,
    check_artefacts,
    existing_record,
)
from benchmark.sandbox.bwrap import Mounts
from benchmark.sandbox.isolation import Limits, isolated_models, resolve_sandbox
from benchmark.sandbox.writable import check_declared, own_folder
from benchmark.training.settings import check_train_settings
from benchmark.utils.atomic import write_atomic

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


def _mounts(cfg: DictConfig, own: Path, harness: list[Path]) -> Mounts:
    """What a ``bwrap`` sandbox of this run shows: views and the model's own folder, no tables."""
    data_root = cfg.data.get("root")
    return Mounts.for_run(
        cache_dir=Path(cfg.paths.cache_dir),
        data_root=Path(data_root) if data_root else None,
        views=Path(cfg.paths.cache_dir) / "views",
        submission_cache=own,
        harness_caches=harness,
        project_root=PROJECT_ROOT,
        runs=[Path(cfg.paths.runs), Path(cfg.paths.sweeps)],
    )


def sandbox_for(cfg: DictConfig, submission: dict[str, Any]) -> tuple[list[LesionCache], Mounts]:
    """What a run of ``cfg`` builds before any submission code: the harness's extractors that
    the model (``submission``, its resolved config node) takes in, and the mounts of its
    sandbox. Refuses a declared folder outside the model's own
    (``benchmark/sandbox/writable.py``)."""
    nodes = harness_nodes(cfg, submission)
    own = own_folder(
        Path(cfg.paths.cache_dir), str(cfg.model.name), Path(cfg.paths.submission_cache)
    )
    check_declared(submission, own, nodes)
    extractors = harness_caches(nodes)
    return extractors, _mounts(cfg, own, folders(extractors))


def _check_unchanged(watch: FileWatch) -> None:
    """Fail the run (no record) when a file of the data or its views changed while it ran."""
    changed = watch.changed()
    if changed:
        more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
        shown = ", ".join(changed[:3]) + more
        raise DataChangedError(
            f"the data changed during the run ({shown}), so the fingerprint it started on no "
            "longer describes them; no record is written. A submission wrote to its input: "
            "delete the cached dataset and its views before the next run"
        )


class DataChangedError(RuntimeError):
    """The dataset's content changed while the run read it."""


def run(cfg: DictConfig, out_dir: Path) -> RunOutcome:
    """Run ``cfg`` through the protocol; write predictions.csv and result.json into ``out_dir``.

    A complete record of the same model, seed, config and data already in ``out_dir`` is
    reused (``benchmark.runner.run_folder.existing_record``): re-running a sweep skips finished
    jobs.
    """
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    out_dir = Path(out_dir)
    protocol = OmegaConf.to_container(cfg.protocol, resolve=True)
    names = [protocol["development"], *protocol["external"]]
    unknown = [n for n in names if n not in COHORTS]
    if unknown:
        raise ValueError(f"protocol names unknown cohorts {unknown}; known: {COHORTS}")

    # The mode that runs goes into the record (bwrap falls back to process where it cannot run).
    cfg.sandbox = resolve_sandbox(str(cfg.sandbox))
    check_train_settings(cfg)  # a refused setting fails here, before any data are built
    submission = OmegaConf.to_container(cfg.model.submission, resolve=True)
    extractors, mounts = sandbox_for(cfg, submission)
    # Entered first: the sandbox's server imports the model's modules while the data are scanned.
    with isolated_models(
        str(cfg.model.name),
        submission,
        int(cfg.seed),
        cfg.sandbox,
        Limits(**OmegaConf.to_container(cfg.limits, resolve=True)),
        mounts,
    ) as make_model:
        dataset = open_dataset(
            OmegaConf.to_container(cfg.data, resolve=True),
            names,
            Path(cfg.paths.cache_dir),
            workers=cfg.hardware.workers,
        )
        previous = existing_record(out_dir, cfg, dataset.fingerprint)
        if previous is not None:
            return RunOutcome(previous, reused=True)
        # The development cohort's outcomes train the fits; an external cohort's outcomes are
        # read only once its predictions are back.
        development = dataset.load([protocol["development"]])[protocol["development"]]
        external = dataset.views(protocol["external"])
        log.info("data %s (%s)", dataset.root, dataset.fingerprint)
        # The shared features, computed here and read-only in every worker.
        fill(extractors, [development.cohort, *external.values()])
        watch = FileWatch.start([*(dataset.root / n for n in names), dataset.view_dir])
        predictions, folds = run_protocol(
            make_model,
            cfg.model.name,
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
    _check_unchanged(watch)
    check_artefacts(out_dir / ARTEFACTS)

    model_name = cfg.model.name

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
