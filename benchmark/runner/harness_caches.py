"""The harness's own per-lesion caches (the ``radiomics`` and ``crops`` config groups), filled by
the harness before any submission code runs and shown read-only to every worker.

Models share them (four read the radiomics), so a model able to write them could hand the others
wrong features, in this run and every later one. A model that takes one in (``features:
${radiomics}``, ``crops: ${crops}``) gets entries the harness computed here, in its own process,
from the blinded views of every cohort of the run; the sandbox shows their folders
(``<cache_dir>/<extractor key>/``) read-only on top of the model's writable cache folder, where
an extractor a submission configures itself (other settings, so another key) keeps its entries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from benchmark.api.cohort import Cohort
from benchmark.api.submission import LesionCache

GROUPS = ("radiomics", "crops")


def harness_nodes(cfg: DictConfig, submission: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The harness's extractor configs (resolved) that the model config ``submission`` takes in
    whole. They come from the harness's own config groups, never from a node the submission
    wrote: a submission's config sets only its own ``submission`` node
    (``benchmark/runner/config_rules.py``), and only these are ever instantiated here."""
    nodes = list(_dicts(submission))
    used = []
    for group in GROUPS:
        if group not in cfg:
            continue
        node = OmegaConf.to_container(cfg[group], resolve=True)
        if node.get("cache_dir") and node in nodes:
            used.append(node)
    return used


def harness_caches(nodes: Iterable[Mapping[str, Any]]) -> list[LesionCache]:
    """The extractors of :func:`harness_nodes`, built in the harness's process."""
    from hydra.utils import instantiate

    return [instantiate(dict(node), _convert_="all") for node in nodes]


def folders(caches: Iterable[LesionCache]) -> list[Path]:
    """Where each extractor keeps its entries: ``<cache_dir>/<key>``."""
    return [Path(cache.cache_dir) / cache.key for cache in caches if cache.cache_dir is not None]


def fill(caches: Iterable[LesionCache], cohorts: Iterable[Cohort]) -> None:
    """Compute every entry the run's cohorts need (a warm cache only reads)."""
    cohorts = list(cohorts)
    for cache in caches:
        for cohort in cohorts:
            cache(cohort)


def _dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dicts(value)


__all__ = ["GROUPS", "fill", "folders", "harness_caches", "harness_nodes"]
