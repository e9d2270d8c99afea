"""The model card of a submission (``submissions/<folder>/model_card.yaml``) and its checks.

A card says who made the model, what it predicts from which inputs, under which license and
how to cite it (the MONAI model zoo's ``metadata.json``, matbench-discovery's per-model YAML).
The schema is :data:`benchmark.records.schemas.MODEL_CARD_V1`; the rules here tie the card to its
folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from benchmark.records.catalog import MODEL_CARD, ModelEntry, model_stem, naming_problems
from benchmark.records.schemas import MODEL_CARD_V1, schema_errors

REQUIRED_FILES = (MODEL_CARD, "README.md", "__init__.py")


def load_model_card(folder: Path) -> dict[str, Any]:
    """The parsed card; ``ValueError`` naming the file if it is missing or not a YAML mapping."""
    path = Path(folder) / MODEL_CARD
    if not path.is_file():
        raise ValueError(f"{path}: missing (every submission folder has a model card)")
    try:
        card = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(card, dict):
        raise ValueError(f"{path}: must be a YAML mapping, got {type(card).__name__}")
    return card


def folder_problems(folder: Path, entries: Iterable[ModelEntry]) -> list[str]:
    """Everything wrong with one submission folder, each message naming the file.

    ``entries`` are the catalog entries of this folder (its ``conf/model/*.yaml``).
    """
    folder = Path(folder)
    problems = [
        f"{folder / name}: missing" for name in REQUIRED_FILES if not (folder / name).is_file()
    ]
    if not folder.name.isidentifier():
        problems.append(
            f"{folder}: the folder name must be a Python identifier (it is imported as "
            f"submissions.{folder.name})"
        )
    entries = list(entries)
    stem = model_stem(folder)
    if not entries:
        problems.append(f"{folder / 'conf' / 'model'}: no {stem}.yaml model config")
    for entry in entries:
        problems += naming_problems(entry)
    try:
        card = load_model_card(folder)
    except ValueError as err:
        return [*problems, str(err)]
    where = folder / MODEL_CARD
    problems += [f"{where}: {message}" for message in schema_errors(card, MODEL_CARD_V1)]
    if card.get("name") not in (stem, None):
        problems.append(
            f"{where}: name {card.get('name')!r} differs from the folder's {stem!r}: drop the "
            "card's name (the folder names the model) or set it to the folder's"
        )
    return problems


def card_task_problems(folder: Path, card: dict[str, Any], tasks: Iterable[str]) -> list[str]:
    """The card's ``tasks`` must be the tasks the model class declares."""
    declared, listed = sorted(tasks), sorted(card.get("tasks") or [])
    if declared != listed:
        return [
            f"{Path(folder) / MODEL_CARD}: tasks {listed} differ from the model's declared "
            f"tasks {declared}"
        ]
    return []
