"""The plots of a model's page: ROC with the oracle, calibration, Kaplan-Meier by predicted risk
group, the paired difference to every other model, and the seed-to-seed spread.

Curves come from :mod:`benchmark.leaderboard.figure_data` (the README's figures' numbers) and
differences from the ranking's seed-means (:mod:`.matrix`), so the page and the board agree.
A function returns None when the model has nothing to draw (no ``lesion_pd``, no survival task).
"""

from __future__ import annotations

from typing import Any

from benchmark.api.cohort import SURVIVAL_TASKS
from benchmark.leaderboard.board import Board, Section
from benchmark.leaderboard.cells import METRIC_TITLE, mean_sd
from benchmark.leaderboard.figure_data import Roc, calibration_bins, km_by_risk, roc
from benchmark.leaderboard.oracle import ORACLE
from benchmark.leaderboard.predictions import PRIMARY_METRIC
from benchmark.leaderboard.web.matrix import paired
from benchmark.leaderboard.web.plot import (
    CHANCE_COLOUR,
    ORACLE_COLOUR,
    DataTable,
    Plot,
    axis_name,
    axis_ref,
    f3,
    grid_layout,
    rounded,
    seed_colour,
)

LOW_RISK, HIGH_RISK = "#2166ac", "#b2182b"
ORACLE_NAME = "oracle (simulator truth)"


def p_text(p: float | None) -> str:
    """A p-value as ``0.044`` or ``< 0.001`` (three decimals would print 0.000)."""
    if p is None:
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _sections(board: Board, model: str, tasks: tuple[str, ...]) -> list[Section]:
    return [s for s in board.sections if s.task in tasks and model in s.means]


def _axes(i: int) -> dict[str, str]:
    return {"xaxis": axis_ref("x", i), "yaxis": axis_ref("y", i)}


def _diagonal(i: int, name: str, show: bool) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "lines",
        "x": [0, 1],
        "y": [0, 1],
        "name": name,
        "legendgroup": name,
        "showlegend": show,
        "line": {"color": CHANCE_COLOUR, "dash": "dot", "width": 1},
        "hoverinfo": "skip",
        **_axes(i),
    }


def _curve_points(cohort: str, name: str, curve: Roc) -> list[list[str]]:
    return [
        [cohort, name, "+inf" if t == float("inf") else f"{t:.4g}", f3(x), f3(y)]
        for t, x, y in zip(curve.thresholds, curve.fpr, curve.tpr, strict=True)
    ]


def _oracle_caption(board: Board, sections: list[Section]) -> str:
    """What the ROC plot says of the oracle: its real curve, or why none is drawn (never a
    stand-in curve)."""
    if board.oracle is not None:
        return (
            "The oracle's curve is the simulator's true p(PD) of each lesion, the predictions "
            "its AUC on the board is scored from."
        )
    if any(s.oracle for s in sections):
        return (
            f"No oracle curve: this board holds no oracle predictions (results/{ORACLE}; "
            "python -m benchmark.leaderboard oracle writes them). The oracle's AUC, from the "
            "records, is in the table."
        )
    return "No oracle: the data have no simulator truth."


def roc_plot(board: Board, model: str) -> Plot | None:
    """Per-lesion ROC per cohort: one curve per seed, and the oracle's own curve (the truth's
    p(PD), :mod:`benchmark.leaderboard.oracle`) where the board has it."""
    sections = _sections(board, model, ("lesion_pd",))
    if not sections:
        return None
    traces: list[dict[str, Any]] = []
    summary, points = [], []
    for i, section in enumerate(sections):
        runs = board.model_runs(model, section.cohort, section.task)
        for k, (seed, frame) in enumerate(runs):
            curve = roc(frame)
            if curve is None:
                summary.append([section.cohort, f"seed {seed}", "n/c (one class)"])
                continue
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": rounded(curve.fpr),
                    "y": rounded(curve.tpr),
                    "name": f"seed {seed}",
                    "legendgroup": f"seed {seed}",
                    "showlegend": i == 0,
                    "line": {"color": seed_colour(k), "width": 1.6},
                    "hovertemplate": f"seed {seed}, AUC {curve.auc:.3f}<br>"
                    "1 − specificity %{x:.3f}, sensitivity %{y:.3f}<extra></extra>",
                    **_axes(i),
                }
            )
            summary.append([section.cohort, f"seed {seed}", f3(curve.auc)])
            points += _curve_points(section.cohort, f"seed {seed}", curve)
        rows = board.oracle_rows(section.cohort, section.task)
        oracle = None if rows is None else roc(rows)
        if oracle is not None:
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": rounded(oracle.fpr),
                    "y": rounded(oracle.tpr),
                    "name": ORACLE_NAME,
                    "legendgroup": "oracle",
                    "showlegend": i == 0,
                    "line": {"color": ORACLE_COLOUR, "dash": "dash", "width": 1.4},
                    "hovertemplate": f"oracle, AUC {oracle.auc:.3f}<br>"
                    "1 − specificity %{x:.3f}, sensitivity %{y:.3f}<extra></extra>",
                    **_axes(i),
                }
            )
            points += _curve_points(section.cohort, "oracle", oracle)
        stated = section.oracle.get("auc", {}).get("value")
        if stated is not None:  # the records' figure, equal to the curve's where there is one
            summary.append([section.cohort, ORACLE_NAME, f3(stated)])
        traces.append(_diagonal(i, "chance", i == 0))
    titles = [s.cohort for s in sections]
    layout = grid_layout(
        1, len(sections), titles, x_title="1 − specificity", y_title="sensitivity", height=400
    )
    caption = "Per-lesion ROC curve of each seed, per cohort. " + _oracle_caption(board, sections)
    tables = [
        DataTable("AUC per cohort and curve", ["cohort", "curve", "AUC"], summary),
        DataTable(
            "The points of each curve (scikit-learn's roc_curve, corners only)",
            ["cohort", "curve", "threshold", "1 − specificity", "sensitivity"],
            points,
        ),
    ]
    return Plot("roc", "ROC curves, per-lesion PD", caption, traces, layout, tables)


def calibration_plot(board: Board, model: str) -> Plot | None:
    """Reliability diagram per cohort: observed PD share against the mean prediction, by
    decile of the prediction, one line per seed."""
    sections = _sections(board, model, ("lesion_pd",))
    if not sections:
        return None
    traces: list[dict[str, Any]] = []
    rows = []
    for i, section in enumerate(sections):
        runs = board.model_runs(model, section.cohort, section.task)
        for k, (seed, frame) in enumerate(runs):
            bins = calibration_bins(frame)
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "x": rounded(b.predicted for b in bins),
                    "y": rounded(b.observed for b in bins),
                    "text": [str(b.n) for b in bins],
                    "name": f"seed {seed}",
                    "legendgroup": f"seed {seed}",
                    "showlegend": i == 0,
                    "line": {"color": seed_colour(k), "width": 1.4},
                    "marker": {"size": 5},
                    "hovertemplate": f"seed {seed}: predicted %{{x:.3f}}, observed %{{y:.3f}} "
                    "(n %{text})<extra></extra>",
                    **_axes(i),
                }
            )
            rows += [
                [section.cohort, str(seed), str(j + 1), str(b.n), f3(b.predicted), f3(b.observed)]
                for j, b in enumerate(bins)
            ]
        traces.append(_diagonal(i, "perfect calibration", i == 0))
    layout = grid_layout(
        1,
        len(sections),
        [s.cohort for s in sections],
        x_title="mean predicted p(PD)",
        y_title="observed share with PD",
        height=400,
    )
    caption = (
        "Lesions sorted by predicted probability and cut into ten groups of equal size; each "
        "point is a group's mean prediction and the share of its lesions that progressed. On "
        "the diagonal, predictions are calibrated."
    )
    table = DataTable(
        "Calibration by decile of the prediction",
        ["cohort", "seed", "decile", "lesions", "mean predicted", "observed share with PD"],
        rows,
    )
    return Plot("calibration", "Calibration, per-lesion PD", caption, traces, layout, [table])


def km_plot(board: Board, model: str) -> Plot | None:
    """Kaplan-Meier curves of OS and PFS for predicted low and high risk (split at the median),
    per cohort, with the log-rank p; the lowest seed, as in the README's figures."""
    sections = _sections(board, model, SURVIVAL_TASKS)
    if not sections:
        return None
    tasks = [t for t in SURVIVAL_TASKS if any(s.task == t for s in sections)]
    cohorts = list(dict.fromkeys(s.cohort for s in sections))
    traces: list[dict[str, Any]] = []
    titles, summary, points = [], [], []
    for r, task in enumerate(tasks):
        for c, cohort in enumerate(cohorts):
            i = r * len(cohorts) + c
            runs = board.model_runs(model, cohort, task)
            if not runs:
                titles.append(f"{cohort}: {task.upper()} (not predicted)")
                continue
            seed, frame = runs[0]
            groups = km_by_risk(frame)
            p = p_text(groups.p)
            p = "" if not p else f" (log-rank p {p if p.startswith('<') else '= ' + p})"
            titles.append(f"{cohort}: {task.upper()}{p}")
            for curve in groups.curves:
                colour = HIGH_RISK if curve.name == "high risk" else LOW_RISK
                traces.append(
                    {
                        "type": "scatter",
                        "mode": "lines",
                        "x": rounded(curve.time),
                        "y": rounded(curve.survival),
                        "name": curve.name,
                        "legendgroup": curve.name,
                        "showlegend": i == 0,
                        "line": {"color": colour, "shape": "hv", "width": 1.6},
                        "hovertemplate": f"{curve.name} ({curve.n}): %{{y:.3f}} at "
                        "%{x:.1f} months<extra></extra>",
                        **_axes(i),
                    }
                )
                summary.append(
                    [task.upper(), cohort, str(seed), curve.name, str(curve.n), p_text(groups.p)]
                )
                points += [
                    [task.upper(), cohort, curve.name, f"{t:.2f}", f3(s)]
                    for t, s in zip(curve.time, curve.survival, strict=True)
                ]
    layout = grid_layout(
        len(tasks),
        len(cohorts),
        titles,
        x_title="months",
        y_title="survival probability",
        height=330 * len(tasks) + 60,
        unit_range=False,
    )
    for i in range(len(tasks) * len(cohorts)):
        layout[axis_name("y", i)]["range"] = [0, 1.02]
    caption = (
        "Patients split at the median predicted risk within each cohort (above it: high risk); "
        "Kaplan-Meier curves of each group and the log-rank test of the split. Lowest seed, as "
        "in the README's figures."
    )
    tables = [
        DataTable(
            "Risk groups and log-rank p",
            ["endpoint", "cohort", "seed", "group", "patients", "log-rank p"],
            summary,
        ),
        DataTable(
            "Kaplan-Meier steps", ["endpoint", "cohort", "group", "months", "survival"], points
        ),
    ]
    return Plot("km", "Kaplan-Meier by predicted risk", caption, traces, layout, tables)


def forest_plot(board: Board, model: str) -> Plot | None:
    """This model minus every other model, per (cohort, task), with the paired 95% CI: one
    panel (one trace) per (cohort, task), the others in ranking order."""
    blocks = []
    for section in board.sections:
        others = [s.model for s in section.standings if s.model != model]
        found = [(o, paired(section, model, o)) for o in others]
        found = [(o, d) for o, d in found if d is not None]
        if found:
            blocks.append((section, found))
    if not blocks:
        return None
    traces: list[dict[str, Any]] = []
    rows = []
    total = sum(len(found) for _, found in blocks)
    gap = 2.0  # in rows: room for a panel's title
    unit = 1.0 / (total + gap * len(blocks))
    top = 1.0
    layout: dict[str, Any] = {
        "height": int(24 * total + 48 * len(blocks) + 90),
        "margin": {"l": 170, "r": 20, "t": 10, "b": 50},
        "showlegend": False,
        "annotations": [],
        "shapes": [],
        "hovermode": "closest",
    }
    for i, (section, found) in enumerate(blocks):
        metric = METRIC_TITLE[PRIMARY_METRIC[section.task]]
        low = top - gap * unit - len(found) * unit
        lo_err = [d - ci[0] if ci else 0 for _, (d, ci) in found]
        hi_err = [ci[1] - d if ci else 0 for _, (d, ci) in found]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": rounded(d for _, (d, _) in found),
                "y": [o for o, _ in found],
                "name": f"{section.cohort} · {section.task}",
                "marker": {"color": "#222222", "size": 7},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": rounded(hi_err),
                    "arrayminus": rounded(lo_err),
                    "color": "#555555",
                    "thickness": 1.2,
                },
                "hovertemplate": f"{model} − %{{y}}: %{{x:+.3f}}<extra>{section.cohort}</extra>",
                **_axes(i),
            }
        )
        layout[axis_name("x", i)] = {
            "anchor": axis_ref("y", i),
            "zeroline": True,
            "zerolinecolor": "#888888",
            "title": {"text": f"Δ, {model} − other" if i == len(blocks) - 1 else ""},
            "showticklabels": i == len(blocks) - 1,
            **({"matches": "x"} if i else {}),
        }
        layout[axis_name("y", i)] = {
            "domain": [max(low, 0.0), top - gap * unit],
            "anchor": axis_ref("x", i),
            "autorange": "reversed",
            "automargin": True,
        }
        layout["annotations"].append(
            {
                "text": f"{section.cohort} · {section.task}: {model} − other ({metric})",
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": top - 0.2 * unit,
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "font": {"size": 12},
            }
        )
        top = low
        rows += [
            [
                section.cohort,
                section.task,
                other,
                f"{d:+.3f}",
                "" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]",
            ]
            for other, (d, ci) in found
        ]
    caption = (
        f"{model}'s value minus each other model's, per cohort and task, as the index's "
        "Δ column computes it (seed-means on the same patient resamples, BCa 95% CI). Right of "
        "zero: this model is better."
    )
    table = DataTable(
        "Paired differences to every other model",
        ["cohort", "task", "other model", "Δ", "95% CI"],
        rows,
    )
    return Plot(
        "forest", "Paired difference to every other model", caption, traces, layout, [table]
    )


def spread_plot(board: Board, model: str) -> Plot | None:
    """Each seed's primary metric per (cohort, task), beside the seed-mean ± sd the board shows."""
    entries = sorted((e for e in board.entries if e.model == model), key=lambda e: e.seed)
    sections = [s for s in board.sections if model in s.means]
    if not entries or not sections:
        return None
    labels = [f"{s.cohort} · {s.task}" for s in sections]
    traces: list[dict[str, Any]] = []
    values: dict[int, list[float | None]] = {}
    for k, entry in enumerate(entries):
        found = []
        for s in sections:
            metric = entry.record["metrics"].get(s.cohort, {}).get(s.task, {}).get(s.primary)
            found.append(None if not metric else metric.get("value"))
        values[entry.seed] = found
        traces.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": labels,
                "y": rounded(found),
                "name": f"seed {entry.seed}",
                "marker": {"color": seed_colour(k), "size": 8, "symbol": "circle-open"},
                "hovertemplate": f"seed {entry.seed}: %{{y:.3f}}<extra>%{{x}}</extra>",
            }
        )
    standings = [next(st for st in s.standings if st.model == model) for s in sections]
    traces.append(
        {
            "type": "scatter",
            "mode": "markers",
            "x": labels,
            "y": rounded(st.value for st in standings),
            "name": "mean ± sd",
            "marker": {"color": "#222222", "size": 9, "symbol": "line-ew-open"},
            "error_y": {
                "type": "data",
                "array": rounded(st.sd or 0.0 for st in standings),
                "color": "#222222",
            },
            "hovertemplate": "mean %{y:.3f}<extra>%{x}</extra>",
        }
    )
    layout = {
        "height": 380,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 110},
        "xaxis": {"tickangle": -30},
        "yaxis": {"title": {"text": "AUC (lesion_pd) / Harrell's C (os, pfs)"}},
        "legend": {"orientation": "h", "y": -0.4},
    }
    seeds = [e.seed for e in entries]
    rows = [
        [
            label,
            METRIC_TITLE[s.primary],
            *(f3(values[seed][j]) for seed in seeds),
            mean_sd(st.value, st.sd),
        ]
        for j, (label, s, st) in enumerate(zip(labels, sections, standings, strict=True))
    ]
    table = DataTable(
        "Each seed's value and the seed-mean ± sd",
        ["cohort · task", "metric", *(f"seed {seed}" for seed in seeds), "mean ± sd"],
        rows,
    )
    caption = (
        "The primary metric of each seed's record, and their mean ± sd (the value the index "
        "shows). Model seeds change the model's randomness only: the data and folds are fixed."
    )
    return Plot("spread", "Seed-to-seed spread", caption, traces, layout, [table])


def model_plots(board: Board, model: str) -> list[Plot]:
    """Every plot the model's page shows, in page order."""
    found = [
        roc_plot(board, model),
        calibration_plot(board, model),
        km_plot(board, model),
        forest_plot(board, model),
        spread_plot(board, model),
    ]
    return [plot for plot in found if plot is not None]
