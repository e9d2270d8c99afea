"""``python -m benchmark.leaderboard.rerun RECORD OUT_DIR CACHE_DIR``: one board record run again.

``verify`` starts this in a fresh process per record, so that nothing a previous run imported,
seeded or cached in memory can make a record pass. The run is the record's own: its resolved
config (``provenance.config``: model, seed, data, protocol, hardware settings) rebuilt as a
DictConfig, with only the cache location moved to this machine's, progress bars off, and the
settings that change no number (``benchmark.records.VOLATILE_KEYS``: sandbox, limits) taken from
``conf/config.yaml`` where a record predates them.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.records import CACHE_PLACEHOLDER, CONF_DIR, VOLATILE_KEYS, load_record


def _moved(text: str, old: str, new: str) -> str | None:
    if old and (text == old or text.startswith(old + "/")):
        return new + text[len(old) :]
    return None


def rerun_config(record: Mapping[str, Any], cache_dir: str | Path) -> dict[str, Any]:
    """The record's resolved config with its cache paths under ``cache_dir``.

    A path under the record's ``paths.cache_dir`` (or written as ``${paths.cache_dir}/...``) is
    moved; ``progress`` keys are switched off.
    """
    config = copy.deepcopy(dict(record["provenance"]["config"]))
    new = str(cache_dir).rstrip("/")
    old = str((config.get("paths") or {}).get("cache_dir") or "").rstrip("/")

    def rebase(node: Any) -> Any:
        if isinstance(node, Mapping):
            return {k: False if k == "progress" else rebase(v) for k, v in node.items()}
        if isinstance(node, list):
            return [rebase(v) for v in node]
        if isinstance(node, str):
            moved = _moved(node, CACHE_PLACEHOLDER, new) or _moved(node, old, new)
            return node if moved is None else moved
        return node

    config = rebase(config)
    config["paths"] = {**(config.get("paths") or {}), "cache_dir": new}
    return {**_volatile_defaults(), **config}


def _volatile_defaults() -> dict[str, Any]:
    """The top-level settings of ``conf/config.yaml`` that change no number (sandbox, limits)."""
    from omegaconf import OmegaConf

    root = OmegaConf.load(CONF_DIR / "config.yaml")
    values = {k: root[k] for k in VOLATILE_KEYS if k in root}
    return {
        k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
        for k, v in values.items()
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print(__doc__.split("\n", 1)[0], file=sys.stderr)
        return 2
    record_path, out_dir, cache_dir = args
    from omegaconf import OmegaConf

    from benchmark.run import run

    cfg = OmegaConf.create(rerun_config(load_record(Path(record_path)), cache_dir))
    run(cfg, Path(out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
