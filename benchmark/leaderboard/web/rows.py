"""The index's tables: one per (cohort, task), the Markdown board's columns plus how each row was
verified and the model's best throughput.

Every cell carries the text the Markdown board writes (``benchmark.leaderboard.cells``) and the
raw number it sorts by, taken straight from the ranking (:class:`~..ranking.Standing`), so
sorting on the page never parses text and the numbers shown are the ranking's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from benchmark.api.cohort import SURVIVAL_TASKS
from benchmark.leaderboard.board import Board, Section
from benchmark.leaderboard.cells import (
    METRIC_TITLE,
    TASK_TITLE,
    ci,
    cohort_title,
    mean_sd,
    num,
    rank_interval,
    signed,
)
from benchmark.leaderboard.fresh_aggregate import Fresh, flagged, upper_bound
from benchmark.leaderboard.predictions import PRIMARY_METRIC
from benchmark.leaderboard.ranking import Standing
from benchmark.leaderboard.throughput_table import (
    ThroughputRecord,
    gated_model_only,
    rate_text,
    warm_end_to_end,
)
from benchmark.leaderboard.web.verification import STRENGTH, model_verification
from benchmark.records.catalog import ModelEntry

# Beside a public figure above its fresh draws' prediction interval (as in the README).
FLAG = "▲"
TRACKS = ("classical", "deep", "survival")
UP = "ascending"


@dataclass(frozen=True)
class Cell:
    text: str
    sort: float | str | None = None  # None: missing, always listed last
    title: str = ""  # shown on hover: what the text leaves out


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    numeric: bool = True
    note: str = ""  # the column's meaning, on hover
    first: str = "descending"  # the first click's order: best first (ranks and names ascend)


@dataclass(frozen=True)
class Row:
    model: str
    tracks: tuple[str, ...]
    cells: dict[str, Cell]


@dataclass(frozen=True)
class Table:
    cohort: str
    task: str
    title: str
    caption: str
    columns: list[Column]
    rows: list[Row]  # the ranking's order
    oracle: dict[str, Cell] = field(default_factory=dict)  # pinned below the rows

    @property
    def anchor(self) -> str:
        """The URL fragment that opens this table: ``#nivorad/lesion_pd``."""
        return f"{self.cohort}/{self.task}"


def model_tasks(board: Board) -> dict[str, set[str]]:
    """model -> the tasks its records score."""
    out: dict[str, set[str]] = defaultdict(set)
    for entry in board.entries:
        out[entry.model] |= {t for per in entry.record["metrics"].values() for t in per}
    return dict(out)


def tracks(entry: ModelEntry, tasks: set[str]) -> tuple[str, ...]:
    """The filter tracks of a model: deep (the catalog says so) or classical, and survival when
    it predicts OS or PFS."""
    found = ["deep" if entry.deep else "classical"]
    if tasks & set(SURVIVAL_TASKS):
        found.append("survival")
    return tuple(found)


def best_throughput(records: list[ThroughputRecord]) -> Cell:
    """The fastest gated model-only row of any of the model's records; without a network, the
    fastest end-to-end pass with a warm cache. Missing without a record."""
    model_only = [(r, item) for item in records for r in gated_model_only(item.record["rows"])]
    if model_only:
        row, item = max(model_only, key=lambda pair: pair[0]["samples_per_s"])
        mode = f"{row.get('precision')}, {row.get('layout')}, batch {row.get('batch')}"
        return Cell(
            f"{rate_text(row)}, model-only",
            float(row["samples_per_s"]),
            f"model-only, {mode}, on {item.machine}; inputs on the device",
        )
    warm = [(r, item) for item in records if (r := warm_end_to_end(item.record["rows"]))]
    warm = [(r, item) for r, item in warm if r.get("samples_per_s")]
    if warm:
        row, item = max(warm, key=lambda pair: pair[0]["samples_per_s"])
        return Cell(
            f"{rate_text(row)}, end to end",
            float(row["samples_per_s"]),
            f"{row['scope']}, on {item.machine}; no network to time alone",
        )
    return Cell("—", None, "no throughput record")


def fresh_cell(value: float | None, found: Fresh | None, cohort: str, task: str) -> Cell:
    """The fresh draws' mean ± sd (n), flagged when the public figure lies above their 95%
    prediction interval."""
    metric = None if found is None else found.metric(cohort, task, PRIMARY_METRIC[task])
    if metric is None or metric.get("mean") is None:
        return Cell("—", None, "no fresh draws")
    text = f"{mean_sd(metric['mean'], metric['sd'])} ({metric['n']})"
    title = f"mean ± sd over {metric['n']} fresh draws of the profile"
    if flagged(value, metric):
        bound = upper_bound(metric["mean"], metric["sd"], metric["n"])
        text += f" {FLAG}"
        title += (
            f"; {FLAG}: the public figure lies above their 95% prediction interval ({bound:.3f})"
        )
    return Cell(text, float(metric["mean"]), title)


def columns(section: Section) -> list[Column]:
    primary, secondary = METRIC_TITLE[section.primary], METRIC_TITLE[section.secondary_metric]
    return [
        Column("rank", "#", note="order by value (1 = best; ties share the lowest rank)", first=UP),
        Column("model", "model", numeric=False, first=UP),
        Column("value", primary, note="mean over seeds ± their sd"),
        Column("fresh", "fresh draws (n)", note=f"mean ± sd over new draws; {FLAG}: tuned?"),
        Column(
            "ci", "95% CI (pooled)", note="BCa interval of the seed-mean; sorts by its lower end"
        ),
        Column(
            "rank_interval", "rank [95% interval]", note="median rank over the resamples", first=UP
        ),
        Column("p_best", "P(best)", note="share of resamples where the model alone ranks first"),
        Column("diff", "Δ vs #1 [95% CI]", note="paired difference to the first row"),
        Column("secondary", secondary, note="mean over seeds ± their sd"),
        Column("seeds", "seeds", note="model seeds pooled; sorts by their number"),
        Column("verified", "verified", note="how the row was checked; strongest first"),
        Column(
            "throughput",
            "best throughput",
            note="fastest gated model-only figure of any machine; end to end without a network "
            "(the two do not compare)",
        ),
    ]


@dataclass(frozen=True)
class ModelFacts:
    """What every table row of a model shares: its tracks, how it was verified, its speed."""

    tracks: tuple[str, ...]
    verified: Cell
    throughput: Cell


def model_facts(board: Board) -> dict[str, ModelFacts]:
    tasks = model_tasks(board)
    entries: dict[str, list] = defaultdict(list)
    for entry in board.entries:
        entries[entry.model].append(entry)
    throughput: dict[str, list[ThroughputRecord]] = defaultdict(list)
    for item in board.throughput:
        throughput[item.record["model"]].append(item)
    out = {}
    for model, entry in board.models.items():
        verified = model_verification(entries[model], board.marks, board.checks.get(model))
        out[model] = ModelFacts(
            tracks(entry, tasks.get(model, set())),
            Cell(verified.label, STRENGTH[verified.status], verified.detail),
            best_throughput(throughput.get(model, [])),
        )
    return out


def _row(standing: Standing, section: Section, board: Board, facts: ModelFacts) -> Row:
    s = standing
    value = Cell(mean_sd(s.value, s.sd), s.value, s.not_computable or "")
    secondary = section.secondary.get(s.model)
    cells = {
        "rank": Cell(str(s.rank or ""), s.rank),
        "model": Cell(s.model, s.model),
        "value": value,
        "fresh": fresh_cell(s.value, board.fresh.get(s.model), section.cohort, section.task),
        "ci": Cell(ci(s.ci95), None if s.ci95 is None else s.ci95[0]),
        "rank_interval": Cell(rank_interval(s.rank_median, s.rank_ci95), s.rank_median),
        "p_best": Cell("" if s.p_best is None else f"{s.p_best:.2f}", s.p_best),
        # The first row's difference to itself is zero: it sorts as such, and reads "—".
        "diff": Cell(
            signed(s.diff_to_top, s.diff_ci95),
            s.diff_to_top if s.diff_to_top is not None else (0.0 if s.rank == 1 else None),
        ),
        "secondary": Cell(
            "" if secondary is None else mean_sd(secondary.mean, secondary.sd),
            None if secondary is None else secondary.mean,
        ),
        "seeds": Cell(", ".join(map(str, s.seeds)), len(s.seeds)),
        "verified": facts.verified,
        "throughput": facts.throughput,
    }
    return Row(s.model, facts.tracks, cells)


def section_table(section: Section, board: Board, facts: Mapping[str, ModelFacts]) -> Table:
    """One index table, rows in the ranking's order."""
    unit = "lesions" if section.task == "lesion_pd" else "patients"
    positive = "with PD" if section.task == "lesion_pd" else "events"
    rows = [_row(s, section, board, facts[s.model]) for s in section.standings]
    oracle: dict[str, Cell] = {}
    if section.oracle:
        top = section.oracle.get(section.primary, {})
        other = section.oracle.get(section.secondary_metric, {})
        oracle = {
            "model": Cell("oracle (simulator truth)"),
            "value": Cell(num(top.get("value"))),
            "ci": Cell(ci(top.get("ci95"))),
            "secondary": Cell(num(other.get("value")) if other else ""),
        }
    return Table(
        section.cohort,
        section.task,
        f"{TASK_TITLE[section.task]} — {METRIC_TITLE[section.primary]}",
        f"n = {section.n} {unit}, {section.n_positive} {positive}.",
        columns(section),
        rows,
        oracle,
    )


def cohort_heading(cohort: str, board: Board) -> str:
    """``NIVORAD, external validation (`nivorad`)`` without the Markdown backticks."""
    return cohort_title(cohort, board.reference.protocol).replace("`", "")


def board_tables(board: Board) -> list[Table]:
    facts = model_facts(board)
    return [section_table(section, board, facts) for section in board.sections]
