"""What a model may write: one folder of its own, ``<cache>/submissions/<name>/``.

Every folder a model's config names (its ``*_dir`` keys: ``cache_dir``, a submission's
``ring_dir``) must lie in that folder, checked on resolved paths (links included), before any
submission code runs: a declared folder is mounted writable for the worker that prepares the
cohorts, and one pointing at the harness's code, the virtual environment or the shared feature
cache would let a submission change what other models and later runs read. The harness's own
extractors (``features: ${radiomics}``, ``crops: ${crops}``) are the exception: their folders are
filled by the harness and shown read-only (``benchmark/runner/harness_caches.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


class WritableFolderError(ValueError):
    """A model's config names a folder outside its own; the message names the key."""


def own_folder(cache_dir: Path, name: str, configured: Path) -> Path:
    """The model's own folder (``paths.submission_cache``), created; refused unless it is
    ``<cache>/submissions/<name>`` once links are resolved."""
    expected = Path(cache_dir).expanduser().resolve() / "submissions" / name
    folder = Path(configured).expanduser()
    if folder.resolve() != expected:
        raise WritableFolderError(
            f"paths.submission_cache {folder} resolves to {folder.resolve()}, not the model's "
            f"own folder {expected}"
        )
    expected.mkdir(parents=True, exist_ok=True)
    if expected.resolve() != expected:  # a link made between the check and the mkdir
        raise WritableFolderError(f"{expected} is a link; the model's folder must be a folder")
    return expected


def declared_folders(node: Any, where: str = "model.submission") -> Iterator[tuple[str, str]]:
    """(dotted key, value) of every ``*_dir`` string in a resolved config node."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            child = f"{where}.{key}"
            if str(key).endswith("_dir") and isinstance(value, str):
                yield child, value
            else:
                yield from declared_folders(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from declared_folders(value, f"{where}[{i}]")


def check_declared(
    submission: Mapping[str, Any], own: Path, harness_nodes: Sequence[Mapping[str, Any]] = ()
) -> None:
    """:class:`WritableFolderError` unless every declared folder lies in ``own`` (resolved);
    nodes equal to one of ``harness_nodes`` (the harness's extractors) are the harness's."""
    own = Path(own).resolve()
    problems = []
    for key, value in declared_folders(_without(submission, harness_nodes)):
        path = Path(value).expanduser().resolve()
        if path != own and own not in path.parents:
            problems.append(f"{key}={value} (resolves to {path})")
    if problems:
        raise WritableFolderError(
            "the model's config names folders outside its own folder "
            f"{own} (paths.submission_cache; docs/isolation.md): " + "; ".join(problems)
        )


def _without(node: Any, harness_nodes: Sequence[Mapping[str, Any]]) -> Any:
    if isinstance(node, Mapping):
        if any(node == harness for harness in harness_nodes):
            return {}
        return {k: _without(v, harness_nodes) for k, v in node.items()}
    if isinstance(node, list):
        return [_without(v, harness_nodes) for v in node]
    return node


__all__ = ["WritableFolderError", "check_declared", "declared_folders", "own_folder"]
