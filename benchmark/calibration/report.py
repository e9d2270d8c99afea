"""The calibration report: each target beside the study's figure and ours, as a table, JSON and
one figure (``python -m benchmark.calibration``)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from benchmark.calibration.board import DEEP, DEVELOPMENT, EXTERNAL, Board
from benchmark.calibration.coverage import Coverage
from benchmark.calibration.draws import MIN_DRAWS, Draws
from benchmark.calibration.margin_control import SHELL_MM, MarginControl
from benchmark.calibration.study import STUDY_FIGURES
from benchmark.calibration.truth import MarginLeak, SurvivalRoom
from benchmark.utils.atomic import write_atomic

COVERAGE_RANGE = (0.94, 0.96)


@dataclass(frozen=True)
class Target:
    """One calibration target: what it checks, the study's figure, ours, and whether it holds."""

    name: str
    study: str  # the study's figure or direction, as text
    rule: str  # what must be true, as text
    value: float | None
    ci95: tuple[float, float] | None = None
    holds: bool | None = None  # None: not evaluated (no records, or no coverage run)
    source: str = ""
    accept: tuple[float | None, float | None] = (None, None)  # the range `value` must lie in
    note: str = ""
    sd: float | None = None  # over draws: `value` is their mean
    n: int | None = None  # draws behind `value`

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    generator: str
    profile: str
    data_seeds: list[int]
    targets: list[Target] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> list[Target]:
        return [t for t in self.targets if t.holds is False]

    def to_json(self) -> str:
        payload = {
            "schema": "nsclc-io-bench/calibration/v1",
            "generator": self.generator,
            "profile": self.profile,
            "data_seeds": self.data_seeds,
            "targets": [t.to_dict() for t in self.targets],
            "details": self.details,
        }
        return json.dumps(payload, indent=2, default=_plain) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _mean_ci(values: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """Mean and its normal 95% interval over independent data seeds."""
    arr = np.asarray(values, float)
    half = 1.96 * arr.std(ddof=1) / math.sqrt(len(arr)) if len(arr) > 1 else 0.0
    return float(arr.mean()), (float(arr.mean() - half), float(arr.mean() + half))


def truth_targets(oracle, medians, room: list[SurvivalRoom], leak: MarginLeak) -> list[Target]:
    """Model-free targets from the simulator's truth (``oracle``: one row per seed and cohort)."""
    out = []
    dev = oracle[oracle["cohort"] == "pembro_rt"].set_index("seed")["lesion_pd"]
    seed0 = float(dev.loc[0]) if 0 in dev.index else float("nan")
    mean, ci = _mean_ci(dev)
    out.append(
        Target(
            "oracle AUC, PEMBRO-RT",
            ">= 0.92 (deep learning reached 0.92)",
            "in [0.92, 0.97], data seed 0 and mean over seeds",
            seed0,
            ci,
            0.92 <= seed0 <= 0.97 and 0.92 <= mean <= 0.97,
            f"truth, data seed 0; mean {mean:.3f} over {len(dev)} seeds (the CI is the mean's)",
            (0.92, 0.97),
        )
    )
    for cohort in EXTERNAL:
        ext = oracle[oracle["cohort"] == cohort].set_index("seed")["lesion_pd"]
        gap, gap_ci = _mean_ci(dev.loc[ext.index] - ext)
        out.append(
            Target(
                f"oracle AUC gap, PEMBRO-RT - {cohort}",
                "external lower",
                ">= 0.03, mean over data seeds",
                gap,
                gap_ci,
                gap >= 0.03,
                f"truth, {len(ext)} data seeds",
                (0.03, None),
            )
        )
    for published, values in medians:
        value = values[0]
        inside = float(np.mean([published.holds(v) for v in values]))
        hi = "NR" if published.hi is None else f"{published.hi:g}"
        out.append(
            Target(
                f"KM median {published.endpoint.upper()}, {published.cohort} {published.arm}",
                f"{published.median:g} ({published.lo:g}-{hi}) months",
                "inside the published 95% CI, data seed 0",
                value,
                None,
                published.holds(value),
                f"truth, seed 0; inside in {inside:.0%} of {len(values)} seeds",
                (published.lo, published.hi),
                published.source,
            )
        )
    for r in room:
        out.append(
            Target(
                f"room for covariates in the truth, {r.task.upper()}",
                "+0.04 OS / +0.06 PFS (RSF + PD-L1 + arm)",
                "full minus imaging-only true C >= the study's gain",
                r.room,
                None,
                r.room >= (0.04 if r.task == "os" else 0.06),
                f"truth, PEMBRO-RT: imaging part C {r.imaging_c:.3f}, full {r.full_c:.3f}",
                (0.04 if r.task == "os" else 0.06, None),
            )
        )
    out.append(
        Target(
            "margin leak into the mask",
            "(partial volume only)",
            "shift inside the mask < 1/3 of the shift next to it; uncorrelated with the width",
            leak.ratio,
            None,
            leak.ratio < 1 / 3 and abs(leak.width_correlation) < 0.3,
            f"render, PEMBRO-RT seed 0, {leak.n_lesions} lesions: inside {leak.inside_hu:.1f} HU, "
            f"0-3 mm outside {leak.shell_hu:.1f} HU, rho(width) {leak.width_correlation:+.2f}",
            (None, 1 / 3),
        )
    )
    return out


def _pooled(cells: Sequence[Coverage]) -> Coverage:
    """Cells as one: their trials and hits summed (rate and Wilson interval from Coverage)."""
    tasks = "+".join(dict.fromkeys(c.task for c in cells))
    return Coverage(
        "pooled",
        tasks,
        cells[0].method,
        float("nan"),
        sum(c.n_seeds for c in cells),
        sum(c.covered for c in cells),
    )


def control_targets(control: MarginControl | None) -> list[Target]:
    """The signal lives in the lesion and its margin: tissue beyond it does not beat volume."""
    if control is None:
        return []
    lo, hi = SHELL_MM
    return [
        Target(
            f"shell {lo:g}-{hi:g} mm model - volume-only AUC, PEMBRO-RT",
            "-",
            "not above 0 (its 95% CI reaches 0)",
            control.difference,
            control.ci95,
            control.holds,
            f"margin_control.json: shell {control.shell_auc:.3f}, log volume "
            f"{control.volume_auc:.3f}, {control.n_lesions} lesions, public draw",
            (None, 0.0),
        )
    ]


def coverage_targets(coverage: Sequence[Coverage]) -> list[Target]:
    """The target is per metric (the oracle's AUC; its C), pooled over cohorts and endpoints;
    each cell (cohort x endpoint) follows as a detail row, with its percentile twin in the note."""
    bca = [c for c in coverage if c.method == "bca"]
    if not bca:
        return []
    out = []
    for metric, tasks in (("AUC", ("lesion_pd",)), ("C", ("os", "pfs"))):
        cells = [c for c in bca if c.task in tasks]
        pct = [c for c in coverage if c.method == "percentile" and c.task in tasks]
        pooled = _pooled(cells)
        pooled_over = "cohorts" if metric == "AUC" else "cohorts, OS and PFS"
        out.append(
            Target(
                f"CI coverage, oracle {metric}",
                "95%",
                f"in [0.94, 0.96], pooled over {pooled_over}",
                pooled.rate,
                pooled.ci95,
                COVERAGE_RANGE[0] <= pooled.rate <= COVERAGE_RANGE[1],
                f"BCa, {cells[0].n_seeds} data seeds x {len(cells)} cells",
                COVERAGE_RANGE,
                f"percentile interval: {_pooled(pct).rate:.3f}" if pct else "",
            )
        )
    for c in bca:
        twin = next(
            (x for x in coverage if (x.cohort, x.task) == (c.cohort, c.task) and x is not c), None
        )
        metric = "AUC" if c.task == "lesion_pd" else f"C {c.task.upper()}"
        out.append(
            Target(
                f"cell: oracle {metric}, {c.cohort}",
                "95%",
                "(detail)",
                c.rate,
                c.ci95,
                None,
                f"BCa, {c.n_seeds} data seeds, population {c.population:.3f}",
                COVERAGE_RANGE,
                f"percentile interval: {twin.rate:.3f}" if twin else "",
            )
        )
    return out


@dataclass(frozen=True)
class _Rule:
    """A model-based target's rule, one for the records' seed-mean and the mean over draws."""

    name: str
    study: str
    rule: str
    accept: tuple[float | None, float | None]
    holds: Callable[[float], bool]


def _model_rules() -> dict[str, _Rule]:
    """draws.TARGETS key -> its rule, as the records (one draw) and the draws' mean judge it;
    on the records, a paired difference must also have its 95% CI above 0."""
    rf = STUDY_FIGURES["rf_radiomics_auc"]
    rules = {
        "rf_radiomics_auc": _Rule(
            "rf_radiomics AUC, PEMBRO-RT",
            f"{rf:.2f}",
            "in [0.53, 0.63]",
            (0.53, 0.63),
            lambda v: 0.53 <= v <= 0.63,
        ),
        "rf_radiomics_external_drop": _Rule(
            "rf_radiomics external drop",
            "external lower",
            "PEMBRO-RT minus mean external >= 0.03",
            (0.03, None),
            lambda v: v >= 0.03,
        ),
        "cnn3d_minus_rf_radiomics_auc": _Rule(
            "cnn3d - rf_radiomics AUC, PEMBRO-RT",
            f"{STUDY_FIGURES['deep_learning_auc'] - rf:+.2f}",
            "> 0",
            (0.0, None),
            lambda v: v > 0,
        ),
    }
    for task in ("os", "pfs"):
        study = STUDY_FIGURES[f"rsf_c_{task}"]
        rules[f"rsf_c_{task}"] = _Rule(
            f"rsf C {task.upper()}, PEMBRO-RT",
            f"{study:.2f}",
            f"within 0.04 of {study:.2f}",
            (study - 0.04, study + 0.04),
            lambda v, study=study: abs(v - study) <= 0.04,
        )
        rules[f"rsf_clinical_minus_rsf_c_{task}"] = _Rule(
            f"rsf_clinical - rsf C {task.upper()}, PEMBRO-RT",
            f"{STUDY_FIGURES[f'rsf_clinical_c_{task}'] - study:+.2f}",
            ">= +0.03",
            (0.03, None),
            lambda v: v >= 0.03,
        )
    return rules


def board_targets(board: Board | None, refused: Sequence[str]) -> list[Target]:
    """Targets from the committed records (mean over model seeds)."""
    if board is None:
        why = f"records refused ({len(refused)} problems): re-run and submit them"
        return [Target("records", "", "", None, None, None, why)]
    out = []

    def mean(model, cohort=DEVELOPMENT, task="lesion_pd"):
        return board.mean(model, cohort, task)

    rules = _model_rules()

    def judged(key: str, value: float | None, source: str) -> Target:
        rule = rules[key]
        holds = None if value is None else rule.holds(value)
        return Target(rule.name, rule.study, rule.rule, value, None, holds, source, rule.accept)

    def paired(key: str, diff: tuple | None, source: str) -> Target:
        """A difference of seed-means, which must also have its paired 95% CI above 0."""
        rule = rules[key]
        value, ci = (None, None) if diff is None else diff
        holds = None if value is None or ci is None else rule.holds(value) and ci[0] > 0
        text = f"{rule.rule} with the paired 95% CI above 0"
        return Target(rule.name, rule.study, text, value, ci, holds, source, rule.accept)

    rf = mean("rf_radiomics")
    out.append(judged("rf_radiomics_auc", rf, _seeds(board, "rf_radiomics")))
    ext = [mean("rf_radiomics", c) for c in EXTERNAL]
    if rf is not None and None not in ext:
        source = f"{_seeds(board, 'rf_radiomics')}; NIVORAD {ext[0]:.3f}, MDACC {ext[1]:.3f}"
        out.append(judged("rf_radiomics_external_drop", rf - float(np.mean(ext)), source))
    diff = board.difference("cnn3d", "rf_radiomics", DEVELOPMENT, "lesion_pd")
    source = f"paired bootstrap of seed-means; {_seeds(board, 'cnn3d')}"
    out.append(paired("cnn3d_minus_rf_radiomics_auc", diff, source))
    floor = mean("lr_volume")
    for model in DEEP:
        value = mean(model)
        out.append(
            Target(
                f"{model} - lr_volume AUC, PEMBRO-RT",
                "(a ruler is the floor)",
                ">= 0",
                None if value is None or floor is None else value - floor,
                None,
                None if value is None or floor is None else value >= floor,
                f"{model} {_fmt(value)}, lr_volume {_fmt(floor)}",
                (0.0, None),
            )
        )
    for task in ("os", "pfs"):
        out.append(judged(f"rsf_c_{task}", mean("rsf", task=task), _seeds(board, "rsf")))
        gain = board.difference("rsf_clinical", "rsf", DEVELOPMENT, task)
        source = f"paired bootstrap of seed-means; {_seeds(board, 'rsf_clinical')}"
        out.append(paired(f"rsf_clinical_minus_rsf_c_{task}", gain, source))
    peri, oracle = mean("peritumoral_radiomics"), board.oracle(DEVELOPMENT, "lesion_pd")
    out.append(
        Target(
            "peritumoral_radiomics AUC, PEMBRO-RT",
            "(between radiomics and the oracle)",
            "rf_radiomics < it < oracle",
            peri,
            None,
            None if peri is None or rf is None or oracle is None else rf < peri < oracle,
            f"{_seeds(board, 'peritumoral_radiomics')}; rf {_fmt(rf)}, oracle {_fmt(oracle)}",
            (rf, oracle),
        )
    )
    return out


DRAWN = " (mean over draws)"


def draw_targets(draws: Draws | None) -> list[Target]:
    """The model-based targets on the mean over random draws (differences taken within each
    draw); judged only from MIN_DRAWS draws on."""
    if draws is None:
        return []
    out = []
    for key, rule in _model_rules().items():
        where = f"{len(draws.seeds)} random draws, model seed 0"
        if not draws.covers(key):
            note = "not drawn: its models were not among the draws' models"
            out.append(
                Target(
                    rule.name + DRAWN, rule.study, rule.rule, None, None, None, f"{where}; {note}"
                )
            )
            continue
        found = draws.summary(key)
        judged = found.mean is not None and found.n >= MIN_DRAWS
        note = "" if judged else f"not judged: {found.n} draws with a value, {MIN_DRAWS} needed"
        missing = len(draws.seeds) - found.n
        source = where + (f"; {missing} without a figure" if missing else "")
        out.append(
            Target(
                rule.name + DRAWN,
                rule.study,
                f"{rule.rule}, on the mean over >= {MIN_DRAWS} draws",
                found.mean,
                None,
                rule.holds(found.mean) if judged else None,
                f"{source}; {note}" if note else source,
                rule.accept,
                note,
                found.sd,
                found.n,
            )
        )
    return out


def with_draws(records: Sequence[Target], drawn: Sequence[Target]) -> list[Target]:
    """Each target judged over draws goes just above its one-draw row, which is then shown
    for reference only; a target the draws do not judge keeps its one-draw verdict."""
    by_name = {t.name.removesuffix(DRAWN): t for t in drawn}
    out = []
    for row in records:
        over = by_name.pop(row.name, None)
        if over is not None:
            out.append(over)
            if over.holds is not None:
                note = "for reference: one draw (the public data seed)"
                row = replace(
                    row,
                    holds=None,
                    source=f"{note}; {row.source}",
                    note=f"{note}; {row.note}" if row.note else note,
                )
        out.append(row)
    return out + list(by_name.values())


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _seeds(board: Board, model: str) -> str:
    n = len(board.entries.get(model, []))
    return f"records, {n} seed{'s' if n != 1 else ''}" if n else "no records"


def render(report: Report) -> str:
    rows = []
    for t in report.targets:
        ci = "" if t.ci95 is None else f" [{t.ci95[0]:.3f}, {t.ci95[1]:.3f}]"
        if t.n is not None and t.value is not None:
            ci = f" ± {_fmt(t.sd)} (n={t.n})"
        holds = {True: "yes", False: "NO", None: "-"}[t.holds]
        rows.append([t.name, t.study, _fmt(t.value) + ci, t.rule, holds, t.source])
    table = tabulate(
        rows,
        headers=["target", "study", "ours [95% CI | ± sd (n)]", "must be", "holds", "from"],
        tablefmt="github",
    )
    failing = report.failing
    summary = (
        f"{len(failing)} of {sum(t.holds is not None for t in report.targets)} evaluated "
        f"targets fail"
        if failing
        else "every evaluated target holds"
    )
    drawn = report.details.get("draws")
    over = f"; model targets on the mean over {drawn['n_draws']} draws" if drawn else ""
    return f"{table}\n\n{summary} ({report.generator}, profile {report.profile}{over})"


def draw(report: Report, path: Path) -> None:
    """One panel per target: the accepted range (band), ours (dot) with its CI, or ± sd where
    it is a mean over draws (line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in report.targets if t.value is not None]
    cols = 3
    rows = max(1, math.ceil(len(targets) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 1.15 * rows), squeeze=False)
    for ax in axes.ravel()[len(targets) :]:
        ax.axis("off")
    for ax, t in zip(axes.ravel(), targets, strict=False):
        lo, hi = t.accept
        line = t.ci95 if t.sd is None else (t.value - t.sd, t.value + t.sd)
        points = [t.value, *(line or ())] + [v for v in (lo, hi) if v is not None]
        span = max(points) - min(points) or abs(t.value) or 1.0
        left, right = min(points) - 0.25 * span, max(points) + 0.25 * span
        ax.axvspan(left if lo is None else lo, right if hi is None else hi, color="#d8ecd8")
        color = {True: "#1b7837", False: "#b2182b", None: "#555555"}[t.holds]
        if line is not None:
            ax.plot(line, [0, 0], color=color, lw=2)
        ax.plot([t.value], [0], "o", color=color)
        ax.set_xlim(left, right)
        ax.set_yticks([])
        ax.set_title(t.name, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.suptitle(
        f"Simulator calibration ({report.generator}, profile {report.profile}): "
        "green band = accepted; line = 95% CI, or ± sd over draws",
        fontsize=9,
    )
    fig.tight_layout()
    from io import BytesIO

    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def write(report: Report, folder: Path, figure: bool = True) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "calibration.json"]
    write_atomic(written[0], report.to_json())
    if figure:
        written.append(folder / "calibration.png")
        draw(report, written[1])
    return written


def coverage_json(coverage: Sequence[Coverage], meta: Mapping[str, Any]) -> str:
    payload = {**meta, "coverage": [c.to_dict() for c in coverage]}
    return json.dumps(payload, indent=2) + "\n"
