"""``python -m benchmark.check NAME``: every rule a model must keep, in one command.

For a baseline or a submission, tabular or deep alike: the folder and its model card, the
config rules (benchmark/runner/config_rules.py, then the composed config and its training settings),
what the model declares (tasks, ``network()`` against its card, the network at its crop size:
benchmark/runner/probes.py), the contract (benchmark/runner/contract.py, same seed same output
included), and a run on the tiny cohorts at the quick preset (conf/preset/quick.yaml) whose record
must be valid. Model code runs in the bubblewrap sandbox only, as in a run. Each check prints as it
starts; a broken rule ends the command with its message and fix (no traceback) and exit 1;
the table at the end says what ran and how long it took.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf
from tabulate import tabulate

from benchmark.records.catalog import MODEL_CARD, ModelEntry, by_name
from benchmark.records.record_format import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"
TINY = ("data=tiny", "preset=quick")
# A baseline whose composition shows what the nodes outside ``model`` hold when no submission
# is selected.
REFERENCE_MODEL = "cox_clinical"


class CheckFailed(Exception):
    """A check found a broken rule; the message names it and the fix."""


def _compose(name: str, overrides: Sequence[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=[f"model={name}", *overrides])


def _outside_model(cfg: DictConfig) -> dict[str, Any]:
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    return {str(k): v for k, v in container.items() if k != "model"}


def compose_model(name: str, *overrides: str) -> DictConfig:
    """The composed config of ``model=name`` with ``overrides`` (submissions included).

    A submission's config may write its ``model`` node only: the rest must be what composing a
    baseline gives, because the harness builds its own extractors (``radiomics``, ``crops``)
    from it in this process, and a node a submission wrote there could name its own code.
    """
    cfg = _compose(name, overrides)
    if not (CONF / "model" / f"{name}.yaml").is_file():
        ours, theirs = (_outside_model(c) for c in (_compose(REFERENCE_MODEL, overrides), cfg))
        written = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        if written:
            raise CheckFailed(f"{name}: its config writes outside its model node: {written}")
    return cfg


@dataclass
class Step:
    name: str
    run: Callable[[], str]  # returns what it found, one line; raises CheckFailed
    seconds: float | None = None
    result: str = "not run"


class Checks:
    """The checks of one model, in order; later ones use what earlier ones found."""

    def __init__(self, entry: ModelEntry, work: Path, overrides: Sequence[str]) -> None:
        self.entry, self.work = entry, work
        self.overrides = [*TINY, *overrides]
        self.cfg: DictConfig | None = None
        self.tasks: tuple[str, ...] = ()

    def steps(self) -> list[Step]:
        return [
            Step("folder and model card", self.folder),
            Step("config rules", self.config),
            Step("declarations (sandbox)", self.declarations),
            Step("contract (sandbox)", self.contract),
            Step("tiny run (data=tiny preset=quick)", self.tiny_run),
        ]

    def folder(self) -> str:
        from benchmark.records.model_card import folder_problems

        if self.entry.folder is None:
            return "a baseline: no folder, no card"
        entries = [e for e in by_name().values() if e.folder == self.entry.folder]
        problems = folder_problems(self.entry.folder, entries)
        if problems:
            raise CheckFailed("\n".join(problems))
        return f"{self.entry.folder.relative_to(PROJECT_ROOT)}: files, names, card schema"

    def config(self) -> str:
        from benchmark.runner.config_rules import SubmissionConfigError, folder_config_problems
        from benchmark.training.settings import TrainSettingsError, check_train_settings

        if self.entry.folder is not None:
            problems = folder_config_problems(self.entry.folder)
            if problems:
                raise CheckFailed(str(SubmissionConfigError(problems)))
        self.cfg = compose_model(self.entry.name, *self.overrides)
        try:
            check_train_settings(self.cfg)
        except TrainSettingsError as err:
            raise CheckFailed(str(err)) from None
        return f"composed with {' '.join(TINY)}; training settings valid"

    def declarations(self) -> str:
        from benchmark.records.model_card import card_task_problems, load_model_card
        from benchmark.runner.contract import sandboxed
        from benchmark.runner.probes import PROBE, REPORT

        assert self.cfg is not None
        submission = OmegaConf.to_container(self.cfg.model.submission, resolve=True)
        probe = {"_target_": PROBE, "_recursive_": False, "submission": submission}
        with sandboxed(self.cfg, probe, int(self.cfg.seed)) as make_model:
            handle = make_model()
            handle.save_artefacts(self.work)
            self.tasks = tuple(handle.tasks)
            handle.close()
        report = json.loads((self.work / REPORT).read_text())
        name, deep = self.entry.name, self.entry.deep
        if report["tasks_type"] != "tuple":
            raise CheckFailed(f"{name}: `tasks` must be a tuple, got a {report['tasks_type']}")
        if self.entry.folder is not None:
            card = load_model_card(self.entry.folder)
            problems = card_task_problems(self.entry.folder, card, self.tasks)
            if problems:
                raise CheckFailed("\n".join(problems))
        if report["network"] != deep:
            where = (
                f"{self.entry.folder / MODEL_CARD}: set `network: {str(report['network']).lower()}`"
                if self.entry.folder is not None
                else "baselines/__init__.py: NETWORK_MODELS"
            )
            said = "returns a Network" if report["network"] else "returns None"
            raise CheckFailed(
                f"{name}: declared {'deep' if deep else 'not deep'}, but its network() {said}; "
                f"fix the declaration: {where}"
            )
        size = report["network_size"]
        if size is not None and size["error"] is not None:
            raise CheckFailed(network_size_message(name, self.cfg, size))
        found = f"tasks {list(self.tasks)}"
        return found + (f"; network takes {size['size']}^3 crops" if size else "; no network")

    def contract(self) -> str:
        from benchmark.data.simulator import load_profile
        from benchmark.data.source import resolve_root
        from benchmark.runner.contract import ContractViolation, check_contract

        assert self.cfg is not None
        data = {"source": "simulated", "seed": 0, "profile": load_profile("tiny")}
        root = resolve_root(data, Path(self.cfg.paths.cache_dir), workers=1)
        try:
            check_contract(self.entry.name, self.cfg, root, self.work / "contract")
        except ContractViolation as err:
            raise CheckFailed(str(err)) from None
        return "every rule kept, seed 7 twice gave the same predictions"

    def tiny_run(self) -> str:
        from benchmark.records.reading import record_problems
        from benchmark.runner.run import run

        assert self.cfg is not None
        # A fresh folder each time (a folder with this run's record would be reused, not run).
        stamp = time.strftime("%Y-%m-%d_%H-%M-%S")
        out = Path(str(self.cfg.paths.runs)) / "check" / self.entry.name / stamp
        record = run(self.cfg, out).record
        problems = record_problems(record)
        if problems:
            raise CheckFailed(f"{self.entry.name}: its record breaks the result schema: {problems}")
        return f"a valid record in {out}"


def network_size_message(name: str, cfg: DictConfig, size: dict[str, Any]) -> str:
    """A network refused at its crop size: the size it needs and the settings that set it."""
    from benchmark.training.network_size import size_message

    spacing, size_mm = float(cfg.crops.spacing_mm), float(cfg.crops.size_mm)
    where = f" (crops.size_mm {size_mm:g} / crops.spacing_mm {spacing:g})"
    message = f"{name}: " + size_message(int(size["size"]), size["error"], size["smallest"], where)
    if size["smallest"] is not None:
        need = int(size["smallest"])
        message += (
            f": here hardware.deep.size_mm >= {need * spacing:g} or hardware.deep.spacing_mm <= "
            f"{size_mm / need:.3g}"
        )
    return message


def _short(err: BaseException) -> str:
    lines = str(err).strip().splitlines() or [""]
    return f"{type(err).__name__}: {lines[0]}" + (" [...]" if len(lines) > 1 else "")


def check(name: str, overrides: Sequence[str] = ()) -> int:
    """Run every check of ``model=name``; print progress and the table; the exit status."""
    entries = by_name()
    if name not in entries:
        print(f"unknown model {name!r}; known: {', '.join(sorted(entries))}", file=sys.stderr)
        return 2
    entry = entries[name]
    kind = f"{entry.kind}, {'deep' if entry.deep else 'tabular'}"
    print(f"checking {name} ({kind})", flush=True)
    failed: str | None = None
    with tempfile.TemporaryDirectory(prefix=f"check-{name}-") as work:
        steps = Checks(entry, Path(work), overrides).steps()
        for i, step in enumerate(steps, 1):
            print(f"[{i}/{len(steps)}] {step.name} ...", flush=True)
            clock = time.perf_counter()
            try:
                step.result = "ok: " + step.run()
            except CheckFailed as err:
                failed, step.result = str(err), "FAILED"
            except Exception as err:  # not a rule: the model or the harness broke
                failed = (
                    f"{name}: {step.name} raised {_short(err)}\n"
                    f"the whole traceback: python -m benchmark model={name} " + " ".join(TINY)
                )
                step.result = "FAILED"
            step.seconds = time.perf_counter() - clock
            if failed:
                break
    rows = [[s.name, s.result, "" if s.seconds is None else f"{s.seconds:.1f}"] for s in steps]
    print()
    print(tabulate(rows, headers=["check", "result", "s"], disable_numparse=True))
    if failed:
        print(f"\n{name}: check failed\n{failed}", file=sys.stderr)
        return 1
    total = sum(s.seconds or 0.0 for s in steps)
    print(f"\n{name}: every check passed ({total:.0f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.check",
        description="Check one model (baseline or submission) against every rule: folder, "
        "card, config, declarations, the contract in the sandbox, a tiny run.",
    )
    parser.add_argument("name", help="the model's name (conf/model/<name>.yaml)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides after data=tiny preset=quick")
    args = parser.parse_args(argv)
    from benchmark.runner.config_rules import SubmissionConfigError, check_folders
    from hydra_plugins.nsclc_io_bench_submissions.submissions_searchpath import (
        submission_conf_dirs,
    )

    try:  # as benchmark/__main__.py: a refused config is a message, not a traceback
        check_folders([folder.parent for folder in submission_conf_dirs()])
    except SubmissionConfigError as err:
        print(err, file=sys.stderr)
        return 2
    # The cache as a run finds it (conf/paths/default.yaml); composed here without Hydra's app.
    cache = os.environ.get("NSCLC_IO_BENCH_CACHE") or str(PROJECT_ROOT / ".cache")
    return check(args.name, [f"paths.cache_dir={cache}", *args.overrides])


if __name__ == "__main__":
    sys.exit(main())
