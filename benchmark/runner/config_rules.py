"""A submission's config is data: the rules it obeys before Hydra composes it.

A contributed ``submissions/<name>/conf/model/<name>.yaml`` reaches the harness's own process,
where Hydra composes it with the harness's config. Without rules it could write any node of that
config (a ``# @package _global_`` header, a defaults list, a ``hydra`` key): a Hydra callback, or
a ``_target_`` in a node the harness instantiates, runs its code in the parent, before any
sandbox exists; an interpolation such as ``${data.seed}`` or ``${oc.env:...}`` resolves there and
carries the draw into the worker. So a submission's config may only set its ``name`` and its
``submission`` node, and may only interpolate what the harness offers models (:data:`OFFERED`).
Everything is checked on the file's text, before Hydra reads it, with file, key and rule named.

This module imports nothing from the harness (the Hydra search-path plugin uses it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ALLOWED_KEYS = ("name", "submission")
# The values the harness offers models, the only ones a submission config may interpolate:
# the shared extractors (their entries are computed by the harness and read-only to models),
# machine sizes, and the model's own cache folder. Never the data (its seed identifies the
# draw), the environment, or the harness's paths.
OFFERED = (
    "radiomics",
    "radiomics.settings",
    "radiomics.image_types",
    "radiomics.feature_classes",
    "radiomics.workers",
    "radiomics.progress",
    "crops",
    "crops.spacing_mm",
    "crops.size_mm",
    "crops.hu_window",
    "crops.label_channel",
    "crops.workers",
    "crops.progress",
    "hardware.device",
    "hardware.workers",
    "hardware.deep.*",  # the deep preset: widths, epochs, batch size, image size, ...
    "paths.submission_cache",  # <cache>/submissions/<name>: the model's own, writable folder
)
CONFIG_DIR = Path("conf") / "model"
_PACKAGE = re.compile(r"^\s*#\s*@package\b", re.MULTILINE)
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")


class SubmissionConfigError(ValueError):
    """A submission's config broke a rule; the message names every file, key and rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            'submission config refused (submissions/README.md, "The config"):\n  - '
            + "\n  - ".join(problems)
            + f"\nvalues a submission config may interpolate: {', '.join(OFFERED)}"
        )


def offered(reference: str) -> bool:
    """Whether ``${reference}`` is a value the harness offers models."""
    for name in OFFERED:
        if name.endswith(".*"):
            prefix = name[:-1]
            if reference.startswith(prefix) and "." not in reference[len(prefix) :]:
                return True
        elif reference == name:
            return True
    return False


def interpolation_problems(text: str) -> list[str]:
    """Why the interpolations in one string value break the rules (empty: they don't)."""
    if "${" not in text:
        return []
    if "\\${" in text:
        return ["an escaped interpolation (\\${) is not allowed"]
    rest = _REFERENCE.sub("", text)
    if "${" in rest:
        return [
            f"{text!r}: only plain references to offered values are allowed, no resolver "
            "(oc.env, now, hydra, ...), nesting or relative key"
        ]
    refused = [ref for ref in _REFERENCE.findall(text) if not offered(ref)]
    return [f"${{{ref}}} is not a value the harness offers models" for ref in refused]


def _walk(node: Any, where: str) -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every key and scalar under ``node``."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            child = f"{where}.{key}" if where else str(key)
            yield child, key
            yield from _walk(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{where}[{i}]")
    else:
        yield where, node


def config_problems(path: Path) -> list[str]:
    """Every rule ``path`` (a submission's model config) breaks, as ``file: key: rule``."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return [f"{path}: cannot be read ({err})"]
    problems = []
    if _PACKAGE.search(text):
        problems.append(f"{path}: @package: a submission's config may not move its package")
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as err:
        return [*problems, f"{path}: not valid YAML ({err})"]
    if not isinstance(config, dict):
        return [*problems, f"{path}: must be a mapping with keys {list(ALLOWED_KEYS)}"]
    for key in config:
        if key not in ALLOWED_KEYS:
            what = {"defaults": "a defaults list", "hydra": "Hydra's own settings"}.get(str(key))
            rule = f"{what} may not be set" if what else "not a key a submission may set"
            problems.append(f"{path}: {key}: {rule} (only {', '.join(ALLOWED_KEYS)})")
    if config.get("name") != path.stem:
        problems.append(
            f"{path}: name: must be {path.stem!r} (the file's name), got {config.get('name')!r}"
        )
    submission = config.get("submission")
    if not isinstance(submission, dict) or not isinstance(submission.get("_target_"), str):
        problems.append(f"{path}: submission: must be a mapping with a _target_ (the model class)")
    for key, value in _walk({k: v for k, v in config.items() if k in ALLOWED_KEYS}, ""):
        if isinstance(value, str):
            problems += [f"{path}: {key}: {p}" for p in interpolation_problems(value)]
    return problems


def folder_config_problems(folder: Path) -> list[str]:
    """The rules of every file in a submission's ``conf/``: model configs only, each valid."""
    conf = Path(folder) / "conf"
    problems = []
    for path in sorted(p for p in conf.rglob("*") if p.is_file() or p.is_symlink()):
        relative = path.relative_to(conf)
        if path.is_symlink():
            problems.append(f"{path}: a link; a submission's configs are plain files")
        elif relative.parent != Path("model") or path.suffix != ".yaml":
            problems.append(
                f"{path}: a submission's conf/ holds model/<name>.yaml only (other config "
                "groups would reach the harness's config)"
            )
        else:
            problems += config_problems(path)
    return problems


def check_folders(folders: list[Path]) -> None:
    """:class:`SubmissionConfigError` listing every rule the folders' configs break."""
    problems = [p for folder in folders for p in folder_config_problems(folder)]
    if problems:
        raise SubmissionConfigError(problems)


__all__ = [
    "ALLOWED_KEYS",
    "OFFERED",
    "SubmissionConfigError",
    "check_folders",
    "config_problems",
    "folder_config_problems",
    "interpolation_problems",
    "offered",
]
