"""A run folder: the files a run writes, and whether it already holds this run's record.

``run.py`` writes the record, its predictions and the fits' artefacts, the job wrapper
(``job.py``) a status beside them, the sweep summary (``sweep.py``) and the leaderboard
(``leaderboard/store.py``) read them; the names live here so that none of them imports another
for a file name.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmark.records.reading import config_key
from benchmark.records.record_format import SCHEMA

log = logging.getLogger(__name__)

RECORD = "result.json"  # written last: its presence marks a complete run
PREDICTIONS = "predictions.csv"
STATUS = "status.json"  # a job's state (benchmark/runner/job.py)
SWEEP_STAMP = ".sweep.json"  # in a sweep folder: the sweep's id, so its jobs claim their status
ARTEFACTS = "artefacts"  # <fit>/...: what each fit keeps (Submission.save_artefacts)


def check_artefacts(folder: Path) -> None:
    """Refuse what a fit left in ``artefacts/`` that is not a plain file or folder (the
    submission wrote there itself, in ``sandbox=none``; isolated workers send theirs as a tar
    that ``benchmark.sandbox.isolation.unpack_artefacts`` checks the same way)."""
    from benchmark.api.submission import refused_artefact

    if not folder.exists():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise refused_artefact(str(path))


def existing_record(out_dir: Path, cfg: DictConfig, data_fingerprint: str) -> dict[str, Any] | None:
    """The complete record in ``out_dir`` of this model, seed, config and data, or None.

    Called by ``benchmark.runner.run.run`` once the data fingerprint is known: re-running a finished
    sweep (same ``hydra.sweep.dir``, same overrides, so the same job folders) then costs a data
    scan per job, not a protocol. A record of another seed, config or dataset is recomputed (and
    replaced when the new run finishes). The git commit is deliberately not compared: start a new
    sweep folder to re-run after a code change.
    """
    path = Path(out_dir) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        prov = record["provenance"]
        found = {
            "schema": record["schema"],
            "model": record["model"],
            "seed": record["seed"],
            "config": config_key(prov["config"]),
            "data": prov["data_fingerprint"],
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("record %s unreadable (%s); running again", path, exc)
        return None
    wanted = {
        "schema": SCHEMA,
        "model": str(cfg.model.name),
        "seed": int(cfg.seed),
        "config": config_key(OmegaConf.to_container(cfg, resolve=True)),
        "data": data_fingerprint,
    }
    differs = [k for k in wanted if found[k] != wanted[k]]
    if differs:
        log.info(
            "record %s is of another %s (%s); running again",
            path,
            "/".join(differs),
            ", ".join(f"{k}: {found[k]} -> {wanted[k]}" for k in differs),
        )
        return None
    if not (path.parent / PREDICTIONS).is_file():
        log.info("record %s has no %s beside it; running again", path, PREDICTIONS)
        return None
    log.info(
        "skip: %s seed %s already has a record %s (config %s, data %s)",
        wanted["model"],
        wanted["seed"],
        path,
        wanted["config"],
        data_fingerprint[:19],
    )
    return record
