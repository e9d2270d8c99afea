"""``python -m benchmark.leaderboard.rerun RECORD OUT_DIR CACHE_DIR [DATA]``: one board record run
again (``DATA``: the board's ``conf/data`` option, ``default`` unless given).

``verify`` starts this in a fresh process per record, so that nothing a previous run imported,
seeded or cached in memory can make a record pass. The run is never built from the record's
stored config: a record is a file anyone can edit, and its config could name code for the
harness to instantiate, a sandbox mode, or the data. The harness composes the model's config
itself (``python -m benchmark model=M seed=K hardware=H data=D``, the submission's own file
checked by ``benchmark/runner/config_rules.py``), and the record's config must equal it in
everything that changes a number (:func:`config_drift`); only the cache location is this machine's,
and progress bars are off.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmark.records.reading import differing_keys, load_record, masked_config

HARDWARE = {"cpu": "cpu", "cuda": "gpu"}  # a record's hardware.device -> conf/hardware option
# What, besides the model node, the seed, the data and the protocol, a run passes its model.
CONTEXT_KEYS = (("hardware", "device"), ("hardware", "workers"))


class ConfigDrift(ValueError):
    """A record's stored config is not the one the harness composes for its model."""


def overrides(record: Mapping[str, Any], data: str, cache_dir: str | Path) -> list[str]:
    """The command line that makes the record's run: model, seed, hardware, data, cache."""
    config = record["provenance"]["config"]
    device = str((config.get("hardware") or {}).get("device", "cpu")).split(":")[0]
    if device not in HARDWARE:
        raise ConfigDrift(f"hardware.device {device!r} is none of {sorted(HARDWARE)}")
    return [
        f"model={record['model']}",
        f"seed={int(record['seed'])}",
        f"hardware={HARDWARE[device]}",
        f"data={data}",
        f"paths.cache_dir={Path(cache_dir).resolve()}",
        "radiomics.progress=false",
        "crops.progress=false",
    ]


def config_drift(stored: Mapping[str, Any], composed: Mapping[str, Any]) -> list[str]:
    """Where a record's config differs from the harness's composition, in what changes a number:
    the model node, seed, data, protocol and what a fit is told (device, workers); paths and
    volatile settings (progress, sandbox, limits) aside."""
    ours, theirs = masked_config(composed), masked_config(stored)
    keys = []
    for name in ("model", "seed", "data", "protocol"):
        keys += differing_keys(theirs.get(name), ours.get(name), name)
    for group, key in CONTEXT_KEYS:
        a, b = (theirs.get(group) or {}).get(key), (ours.get(group) or {}).get(key)
        keys += differing_keys(a, b, f"{group}.{key}")
    return keys


def rerun_config(record: Mapping[str, Any], cache_dir: str | Path, data: str = "default") -> Any:
    """The harness's config (a DictConfig) of the record's run; :class:`ConfigDrift` when the
    record's stored config differs from it (nothing is instantiated either way)."""
    from omegaconf import OmegaConf

    from benchmark.records.reading import compose_config

    cfg = compose_config(overrides(record, data, cache_dir))
    drift = config_drift(record["provenance"]["config"], OmegaConf.to_container(cfg, resolve=True))
    if drift:
        shown = "; ".join(drift[:5]) + (f" (+{len(drift) - 5} more)" if len(drift) > 5 else "")
        raise ConfigDrift(
            f"its config is not what the harness composes for model={record['model']} "
            f"seed={record['seed']}: {shown}. Re-run it from the committed config "
            "(docs/verification.md)"
        )
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) not in (3, 4):
        print(__doc__.split("\n\n", 1)[0], file=sys.stderr)
        return 2
    record_path, out_dir, cache_dir, *data = args
    from benchmark.runner.run import run

    try:
        cfg = rerun_config(load_record(Path(record_path)), cache_dir, *data)
    except ConfigDrift as err:
        print(f"{record_path}: {err}", file=sys.stderr)
        return 3
    run(cfg, Path(out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
