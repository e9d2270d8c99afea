"""Adds ``submissions/*/conf`` (sorted) after the harness's own ``conf/`` folder, once every
config in them obeys the rules of a submission's config (``benchmark/runner/config_rules.py``)."""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin

PROVIDER = "nsclc-io-bench-submissions"
# hydra_plugins/nsclc_io_bench_submissions/<this file>: the project root is three levels up.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def submission_conf_dirs(root: Path = PROJECT_ROOT) -> list[Path]:
    """``submissions/<name>/conf`` folders, sorted by name (the template ``_template`` included)."""
    return sorted(p for p in (root / "submissions").glob("*/conf") if p.is_dir())


def _is_ours(search_path: ConfigSearchPath, root: Path) -> bool:
    """True when the primary config folder is this project's ``conf/``.

    The plugin is visible to every Hydra app in the environment; it must only touch ours.
    """
    conf = (root / "conf").resolve()
    for element in search_path.get_path():
        path = element.path or ""
        if path.startswith("file://"):
            path = path.removeprefix("file://")
        elif "://" in path:
            continue
        try:
            if Path(path).resolve() == conf:
                return True
        except OSError:
            continue
    return False


class SubmissionsSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        if not _is_ours(search_path, PROJECT_ROOT):
            return
        from benchmark.runner.config_rules import check_folders

        folders = submission_conf_dirs()
        # Before Hydra reads any of them: a config that could write the harness's nodes, or
        # interpolate the draw, never reaches the composed config.
        check_folders([folder.parent for folder in folders])
        for folder in folders:
            search_path.append(provider=PROVIDER, path=f"file://{folder}")
