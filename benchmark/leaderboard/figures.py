"""Leaderboard figures (matplotlib, Agg): ROC curves, Kaplan-Meier curves by risk group, forest.

Curves use each model's lowest seed (a curve of seed-averaged predictions would be an ensemble
no record scored); the forest plot shows the seed-mean with its pooled CI, as the tables do.
PNGs are written without a timestamp, so unchanged inputs give unchanged files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.leaderboard.figure_data import SURVIVAL_TASKS, km_by_risk, roc
from benchmark.utils.atomic import write_atomic

if TYPE_CHECKING:
    from benchmark.leaderboard.board import Board

ROC = "roc.png"
FOREST = "forest.png"
DPI = 110


def _km_name(model: str) -> str:
    return f"km_{model}.png"


def planned_figures(board: Board) -> list[tuple[str, str]]:
    """(file name, caption) of every figure the board gets, in README order."""
    tasks = {s.task for s in board.sections}
    out = []
    if "lesion_pd" in tasks:
        out.append((ROC, "ROC curves, per-lesion PD, per cohort (each model's lowest seed)"))
    if board.sections:
        out.append(
            (FOREST, "AUC and Harrell's C: seed mean with pooled 95% CI; red diamond: oracle")
        )
    survival_models = sorted(
        {s.model for sec in board.sections if sec.task in SURVIVAL_TASKS for s in sec.standings}
    )
    for model in survival_models:
        out.append(
            (
                _km_name(model),
                f"Kaplan-Meier curves of {model}: predicted high vs low risk (split at the median "
                "risk within each cohort; lowest seed), log-rank p",
            )
        )
    return out


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    fmt = path.suffix.lstrip(".")
    write_atomic(path, lambda fh: fig.savefig(fh, format=fmt, dpi=DPI, metadata={"Software": None}))


def _cohorts(board: Board, tasks: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(s.cohort for s in board.sections if s.task in tasks))


def draw_roc(board: Board, path: Path) -> None:
    plt = _pyplot()
    cohorts = _cohorts(board, ("lesion_pd",))
    fig, axes = plt.subplots(1, len(cohorts), figsize=(4.4 * len(cohorts), 4.6), squeeze=False)
    for ax, cohort in zip(axes[0], cohorts, strict=True):
        for model, runs in sorted(board.runs(cohort, "lesion_pd").items()):
            curve = roc(runs[0][1])
            if curve is None:
                continue
            ax.plot(curve.fpr, curve.tpr, lw=1.4, label=f"{model} ({curve.auc:.2f})")
        ax.plot([0, 1], [0, 1], ls="--", lw=0.8, color="grey")
        ax.set(title=cohort, xlabel="1 - specificity", ylabel="sensitivity", aspect="equal")
        ax.legend(fontsize=7, loc="lower right", title="model (AUC)", title_fontsize=7)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def draw_km(board: Board, model: str, path: Path) -> None:
    plt = _pyplot()
    tasks = [t for t in SURVIVAL_TASKS if any(s.task == t for s in board.sections)]
    cohorts = _cohorts(board, SURVIVAL_TASKS)
    fig, axes = plt.subplots(
        len(tasks), len(cohorts), figsize=(4.2 * len(cohorts), 3.4 * len(tasks)), squeeze=False
    )
    for row, task in enumerate(tasks):
        for col, cohort in enumerate(cohorts):
            ax = axes[row][col]
            runs = board.runs(cohort, task).get(model)
            ax.set(title=f"{cohort}: {task.upper()}", xlabel="months", ylim=(0, 1.02))
            if not runs:
                ax.text(0.5, 0.5, "not predicted", ha="center", transform=ax.transAxes)
                continue
            groups = km_by_risk(runs[0][1])
            colours = {"low risk": "tab:blue", "high risk": "tab:red"}
            for curve in groups.curves:
                ax.step(
                    curve.time,
                    curve.survival,
                    where="post",
                    color=colours[curve.name],
                    label=f"{curve.name} ({curve.n})",
                )
            if groups.p is not None:
                ax.set_title(f"{cohort}: {task.upper()} (log-rank p={groups.p:.3f})")
            ax.legend(fontsize=7)
        axes[row][0].set_ylabel("survival probability")
    fig.suptitle(model)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def draw_forest(board: Board, path: Path) -> None:
    plt = _pyplot()
    tasks = list(dict.fromkeys(s.task for s in board.sections))
    height = max(
        3.0,
        0.22 * max(sum(len(s.standings) + 2 for s in board.sections if s.task == t) for t in tasks),
    )
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.0 * len(tasks), height), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        y, ticks, labels = 0.0, [], []
        for section in (s for s in board.sections if s.task == task):
            ticks.append(y)
            labels.append(f"{section.cohort}")
            top = section.oracle.get(section.primary, {}).get("value")
            block_top = y
            y -= 1
            for s in section.standings:
                if s.value is not None:
                    lo, hi = s.ci95 if s.ci95 else (s.value, s.value)
                    ax.errorbar(
                        s.value,
                        y,
                        xerr=[[s.value - lo], [hi - s.value]],
                        fmt="o",
                        ms=3,
                        color="black",
                        lw=1,
                    )
                ticks.append(y)
                labels.append(f"  {s.model}")
                y -= 1
            if top is not None:
                ax.plot([top], [block_top], marker="D", color="tab:red", ms=5)
            y -= 0.6
        ax.axvline(0.5, ls="--", lw=0.8, color="grey")
        ax.set_yticks(ticks, labels, fontsize=7)
        title = "AUC (per-lesion PD)" if task == "lesion_pd" else f"Harrell's C ({task.upper()})"
        ax.set(title=title, xlim=(0.0, 1.0))
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def draw_figures(board: Board, folder: Path) -> list[Path]:
    """Draw every planned figure into ``folder`` and delete the PNGs no longer planned."""
    folder = Path(folder)
    planned = [name for name, _ in planned_figures(board)]
    for stale in sorted(folder.glob("*.png")) if folder.is_dir() else []:
        if stale.name not in planned:
            stale.unlink()
    written = []
    for name in planned:
        path = folder / name
        if name == ROC:
            draw_roc(board, path)
        elif name == FOREST:
            draw_forest(board, path)
        else:
            draw_km(board, name.removeprefix("km_").removesuffix(".png"), path)
        written.append(path)
    return written
