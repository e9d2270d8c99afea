"""The web board (``python -m benchmark.leaderboard site OUT``), tested in a real browser.

One site is built per module from the committed board plus a hostile submission (a model card
and README full of HTML, ``|`` and newlines, a record whose hardware string is an ``<img
onerror>``, and predictions copied from rf_radiomics so that it ties with it everywhere). One
headless Chromium (Debian's, driven by Playwright) visits every page of it. Screenshots of the
index and a model page go to ``outputs/tests/web_board/`` (``$NSCLC_IO_BENCH_TEST_OUTPUT``).
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from benchmark.leaderboard.board import Board, Paths, assemble, load_board
from benchmark.leaderboard.cells import ci, mean_sd, rank_interval, signed
from benchmark.leaderboard.checks import INCOMPLETE, Check
from benchmark.leaderboard.figure_data import roc
from benchmark.leaderboard.oracle import ORACLE
from benchmark.leaderboard.store import Entry
from benchmark.leaderboard.web.build import (
    GENERATOR,
    MANIFEST,
    PLOTLY,
    PLOTLY_SHA256,
    build_info,
    site_files,
    write_site,
)
from benchmark.leaderboard.web.model_plots import ORACLE_NAME, roc_plot
from benchmark.leaderboard.web.pages import BuildInfo
from benchmark.leaderboard.web.plot import rounded
from benchmark.leaderboard.web.render import json_script
from benchmark.leaderboard.web.verification import (
    UNVERIFIED,
    model_verification,
    verification_status,
)
from benchmark.records.catalog import ModelEntry
from benchmark.records.reading import Reference
from benchmark.records.record_format import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# As root in a closed network: no sandbox (root), no GPU, nothing that phones home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = "hostile_card"
ATTACK = (
    '<script>window.__pwned = "script"</script>'
    "<img src=x onerror=\"window.__pwned = 'img'\"> | a | b |\n"
    "## injected heading\n[link](javascript:window.__pwned='link')"
)
INFO = BuildInfo("0123456789abcdef0123456789abcdef01234567", "2026-01-01T00:00:00Z")
SCREENSHOTS = Path(os.environ.get("NSCLC_IO_BENCH_TEST_OUTPUT", PROJECT_ROOT / "outputs" / "tests"))


def _hostile_folder(root: Path) -> Path:
    folder = root / HOSTILE
    (folder / "conf" / "model").mkdir(parents=True)
    (folder / "conf" / "model" / f"{HOSTILE}.yaml").write_text(f"name: {HOSTILE}\n")
    card = {
        "schema": "nsclc-io-bench/model-card/v1",
        "name": HOSTILE,
        "version": "1.0",
        "authors": [{"name": ATTACK, "affiliation": "a | b\nc"}],
        "description": ATTACK,
        "tasks": ["lesion_pd"],
        "inputs": ["radiomics"],
        "license": "MIT",
        "citation": ATTACK,
        "references": ["javascript:window.__pwned='ref'"],
        "unexpected": "<svg onload=\"window.__pwned='svg'\"></svg>",
    }
    import yaml

    (folder / "model_card.yaml").write_text(yaml.safe_dump(card, sort_keys=False))
    (folder / "README.md").write_text(f"# {HOSTILE}\n\n</pre>{ATTACK}\n<pre>\n")
    return folder


def _copies(entries: list[Entry], source: str, name: str, folder: Path) -> list[Entry]:
    """``source``'s records and predictions under another model name."""
    out = []
    for entry in entries:
        if entry.model != source:
            continue
        record = copy.deepcopy(entry.record)
        record["model"] = name
        record["provenance"]["hardware"]["cpu"] = "<img src=x onerror=\"window.__pwned='hw'\">"
        out.append(Entry(folder / f"{name}__seed{entry.seed}.json", record, entry.predictions))
    return out


def with_models(base: Board, extra: list[Entry], models: dict[str, ModelEntry]) -> Board:
    """``base`` with more models, ranked again on the same resamples."""
    return assemble(
        base.entries + extra,
        base.reference,
        base.throughput,
        {**base.models, **models},
        base.fresh,
        base.sites,
        base.marks,
        base.oracle,
    )


@pytest.fixture(scope="module")
def committed() -> Board:
    """The committed records, not ranked: each test board ranks once, with its extra models."""
    return load_board(Paths.under(), Reference.from_conf("default"), ranked=False)


@pytest.fixture(scope="module")
def board(committed: Board, tmp_path_factory: pytest.TempPathFactory) -> Board:
    folder = _hostile_folder(tmp_path_factory.mktemp("submissions"))
    entry = ModelEntry(HOSTILE, "submission", folder / "conf" / "model" / f"{HOSTILE}.yaml", folder)
    extra = _copies(committed.entries, "rf_radiomics", HOSTILE, folder)
    return with_models(committed, extra, {HOSTILE: entry})


def _calibration() -> tuple[dict | None, dict | None]:
    import json

    folder = Paths.under().calibration
    return (
        json.loads((folder / "calibration.json").read_text()),
        json.loads((folder / "coverage.json").read_text()),
    )


@pytest.fixture(scope="module")
def site(board: Board, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("web") / "site"
    write_site(site_files(board, INFO, *_calibration()), out)
    return out


def pages_of(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))


# --- without a browser -----------------------------------------------------------------------


def test_json_in_a_script_tag_cannot_close_it():
    text = str(json_script({"a": "</script><!-- & -->"}))
    assert "<" not in text and ">" not in text and "&" not in text
    import json

    assert json.loads(text) == {"a": "</script><!-- & -->"}


def test_each_record_says_how_ci_checks_it(committed):
    """The board's answer (benchmark/leaderboard/checks.py): classical re-run, deep re-trained,
    a marked or GPU record unverified, with the mark's reason."""
    by_model = {e.model: e for e in committed.entries}
    assert verification_status(by_model["rsf"], {}).label == "re-run by CI"
    assert verification_status(by_model["cnn3d"], {}).label == "re-trained by CI"
    entry = by_model["rsf"]
    marked = verification_status(entry, {entry.path.stem: "our <GPU> run"})
    assert (marked.status, marked.detail) == (UNVERIFIED, "our <GPU> run")


def test_a_models_row_is_as_verified_as_its_weakest_seed(committed):
    seeds = sorted((e for e in committed.entries if e.model == "rsf"), key=lambda e: e.seed)
    assert model_verification(seeds, {}).label == "re-run by CI"
    one = model_verification(seeds, {seeds[2].path.stem: "not re-run"})
    assert one.status == UNVERIFIED
    assert (
        "seeds 0, 1: re-run by CI" in one.detail and "seed 2: unverified (not re-run)" in one.detail
    )
    reason = "seeds 0, 1 of the board's 0, 1, 2; submit seed(s) 2 to rank it"
    short = model_verification(seeds[:2], {}, Check(INCOMPLETE, reason))
    assert (short.status, short.label) == (INCOMPLETE, "incomplete seeds")
    assert short.detail.startswith(reason + "; seeds 0, 1: re-run by CI")


def test_the_vendored_plotly_is_the_pinned_file():
    import hashlib

    path = PROJECT_ROOT / "benchmark" / "leaderboard" / "web" / "assets" / PLOTLY
    assert hashlib.sha256(path.read_bytes()).hexdigest() == PLOTLY_SHA256


def test_weight(site: Path, board: Board):
    sizes = {p: p.stat().st_size for p in site.rglob("*") if p.is_file()}
    index = sizes[site / "index.html"] + sum(
        size for p, size in sizes.items() if p.suffix in (".css",) or p.name == "board.js"
    )
    assert index < 2_000_000
    assert sum(sizes.values()) < 20_000_000
    assert len(pages_of(site)) == 4 + len(board.models) + len(board.sites)


def test_same_inputs_give_the_same_bytes_in_another_process(board, site, tmp_path: Path):
    """Another interpreter (another hash seed: set order differs) writes the same files."""
    pickled = tmp_path / "board.pickle"
    pickled.write_bytes(pickle.dumps(board))
    out = tmp_path / "again"
    script = (
        "import pickle, sys; from pathlib import Path\n"
        "from benchmark.leaderboard.web.build import site_files, write_site\n"
        "from test_web_board import INFO, _calibration\n"
        "board = pickle.loads(Path(sys.argv[1]).read_bytes())\n"
        "write_site(site_files(board, INFO, *_calibration()), Path(sys.argv[2]))\n"
    )
    here = Path(__file__).parent  # this file's helpers, and tests/ (cohort_factory, ...)
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": f"{here}:{here.parent}"}
    subprocess.run(
        [sys.executable, "-c", script, str(pickled), str(out)], env=env, check=True, timeout=300
    )
    mine = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    theirs = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert mine.keys() == theirs.keys()
    assert [p for p in mine if mine[p] != theirs[p]] == []


def test_the_command_builds_a_site_and_refuses_a_folder_it_did_not_build(tmp_path: Path):
    """The CLI on a small board (two models copied from the committed one)."""
    root = tmp_path / "leaderboard"
    for part in ("results", "throughput", "fresh"):
        (root / part).mkdir(parents=True)
        for model in ("cox_clinical", "lr_volume"):
            for path in getattr(Paths.under(), part).glob(f"{model}*"):
                (root / part / path.name).write_bytes(path.read_bytes())
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1767225600"}

    def site(out: Path) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "benchmark.leaderboard", "--root", str(root), "site"]
        return subprocess.run(
            [*command, str(out)], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
        )

    out = tmp_path / "site"
    first = site(out)
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        "cox_clinical.html",
        "lr_volume.html",
    ]
    assert "2026-01-01T00:00:00Z" in (out / "index.html").read_text()
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused = site(other)
    assert refused.returncode == 2 and "holds no site" in refused.stderr
    assert (other / "keep.txt").read_text() == "mine"


def test_a_new_build_replaces_the_old_site_whole(tmp_path: Path):
    import json

    out = tmp_path / "site"
    manifest = {MANIFEST: json.dumps({"generator": GENERATOR}).encode()}
    write_site({"index.html": b"one", "models/a.html": b"a", **manifest}, out)
    write_site({"index.html": b"two", **manifest}, out)
    assert (out / "index.html").read_bytes() == b"two"
    assert not (out / "models").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no staging folder left


def test_build_date_comes_from_the_commit_or_source_date_epoch(committed, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert build_info(committed).date == "1970-01-01T00:00:00Z"
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    first, second = build_info(committed), build_info(committed)
    assert first == second and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", first.date)


# --- in the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium (.ci/run does)", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield found
        found.close()


class Visit:
    """One browser page that records what every visit logged and requested."""

    def __init__(self, browser, site: Path) -> None:
        self.site = site
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.problems.append(f"page error: {err}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def _console(self, message) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"console {message.type}: {message.text}")

    def open(self, page: str, fragment: str = "") -> None:
        """Load ``page`` afresh (a URL that differs only by its fragment would not reload)."""
        self.page.goto("about:blank")
        self.page.goto((self.site / page).as_uri() + fragment)
        self.page.wait_for_load_state("load")
        if self.page.locator(".plot-area").count():
            self.page.wait_for_function(
                "() => [...document.querySelectorAll('.plot-area')]"
                ".every(e => e.hasAttribute('data-rendered'))",
                timeout=30_000,
            )


@pytest.fixture(scope="module")
def visit(browser, site: Path) -> Iterator[Visit]:
    found = Visit(browser, site)
    yield found
    found.page.close()


@pytest.fixture(scope="module")
def visited(visit: Visit, site: Path) -> Visit:
    """Every page opened once (the log of that tour is what the first test checks)."""
    for page in pages_of(site):
        visit.open(page)
    return visit


def test_every_page_loads_without_error_and_asks_only_for_files_of_the_site(visited, site):
    assert visited.problems == []
    root = site.resolve().as_uri() + "/"
    assert visited.requests, "no request recorded"
    outside = [url for url in visited.requests if not url.startswith(root)]
    assert outside == []


def test_the_site_works_the_same_from_a_static_server(browser, site: Path, board: Board):
    """Served over HTTP from the loopback address, as any static host would."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    root = f"http://127.0.0.1:{server.server_address[1]}/"
    page = Visit(browser, site)
    try:
        page.page.goto(root + "index.html#mdacc/os")
        shown = page.page.locator("[id='mdacc/os'] tbody tr").count()
        visible = page.page.locator("[id='mdacc/os']").is_visible()
        traces = []
        for path in ("models/cnn3d.html", "compare.html"):
            page.page.goto(root + path)
            page.page.wait_for_function(
                "() => [...document.querySelectorAll('.plot-area')]"
                ".every(e => e.hasAttribute('data-rendered'))"
            )
            traces.append(
                page.page.evaluate("() => document.querySelector('.plot-area').data.length")
            )
    finally:
        page.page.close()
        server.shutdown()
        server.server_close()
    assert page.problems == []
    assert page.requests and all(url.startswith(root) for url in page.requests)
    os_table = next(s for s in board.sections if (s.cohort, s.task) == ("mdacc", "os"))
    assert visible and shown == len(os_table.standings)
    assert traces[0] > 0 and traces[1] == 1


def test_every_model_has_a_page_linked_from_the_index(visit: Visit, board: Board, site: Path):
    visit.open("index.html")
    links = visit.page.eval_on_selector_all(
        "a[href^='models/']", "els => els.map(e => e.getAttribute('href'))"
    )
    assert {Path(link).stem for link in links} == set(board.models)
    assert all((site / link).is_file() for link in links)


def _table(visit: Visit, anchor: str) -> list[dict]:
    """The rows of one index table: model, and each cell's text and sort value."""
    return visit.page.evaluate(
        """anchor => [...document.getElementById(anchor).querySelectorAll('tbody tr')].map(tr => ({
            model: tr.dataset.model, hidden: tr.hidden, order: Number(tr.dataset.order),
            cells: Object.fromEntries([...tr.cells].map(td =>
                [td.dataset.key, [td.textContent.trim(), td.dataset.sort]]))}))""",
        anchor,
    )


def test_numbers_shown_are_the_rankings(visit: Visit, board: Board):
    visit.open("index.html")
    for section in board.sections:
        rows = _table(visit, f"{section.cohort}/{section.task}")
        assert [r["model"] for r in rows] == [s.model for s in section.standings]
        for row, s in zip(rows, section.standings, strict=True):
            cells = row["cells"]
            assert cells["value"][0] == mean_sd(s.value, s.sd)
            assert float(cells["value"][1]) == s.value  # the sort key is the exact value
            shown = [float(x) for x in re.findall(r"-?\d+\.\d+", cells["value"][0])]
            assert abs(shown[0] - s.value) <= 5e-4
            assert cells["ci"][0] == ci(s.ci95)
            assert cells["rank_interval"][0] == rank_interval(s.rank_median, s.rank_ci95)
            assert cells["p_best"][0] == ("" if s.p_best is None else f"{s.p_best:.2f}")
            assert cells["diff"][0] == signed(s.diff_to_top, s.diff_ci95)
            assert cells["seeds"][0] == ", ".join(map(str, s.seeds))
            secondary = section.secondary.get(s.model)
            if secondary is not None:
                assert cells["secondary"][0] == mean_sd(secondary.mean, secondary.sd)
        oracle = visit.page.locator(f"[id='{section.cohort}/{section.task}'] tfoot tr.oracle")
        value = section.oracle[section.primary]["value"]
        assert f"{value:.3f}" in oracle.text_content()


def _order(rows: list[dict], key: str, descending: bool) -> list[str]:
    """The order the page must show: by the key's value, missing last, ties in board order."""

    def sort_key(row):
        raw = row["cells"][key][1]
        if raw in (None, ""):
            return (1, 0.0, row["order"])
        value = float(raw)
        return (0, -value if descending else value, row["order"])

    return [row["model"] for row in sorted(rows, key=sort_key)]


def test_sorting_is_numeric_keeps_ties_in_board_order_and_missing_values_last(visit: Visit):
    visit.open("index.html", "#pembro_rt_cv/lesion_pd")
    anchor = "pembro_rt_cv/lesion_pd"
    header = visit.page.locator(f"[id='{anchor}'] th[data-key='fresh'] button")
    before = _table(visit, anchor)
    assert any(r["cells"]["fresh"][1] == "" for r in before), "the hostile row has no draws"
    header.click()
    after = _table(visit, anchor)
    assert [r["model"] for r in after] == _order(before, "fresh", descending=True)
    assert after[-1]["model"] == HOSTILE  # missing: last
    header.click()
    again = _table(visit, anchor)
    assert [r["model"] for r in again] == _order(before, "fresh", descending=False)
    assert again[-1]["model"] == HOSTILE  # still last the other way round

    # P(best) is 0.00 for most rows: ties keep the board's order, both ways.
    visit.page.locator(f"[id='{anchor}'] th[data-key='p_best'] button").click()
    by_p = _table(visit, anchor)
    assert [r["model"] for r in by_p] == _order(before, "p_best", descending=True)
    ties = [r["order"] for r in by_p if r["cells"]["p_best"][1] == "0.0"]
    assert len(ties) > 2 and ties == sorted(ties)
    # Numeric, not text: 10 values of the rank interval's median sort as numbers.
    visit.page.focus(f"[id='{anchor}'] th[data-key='value'] button")
    visit.page.keyboard.press("Enter")  # the keyboard sorts too
    by_value = _table(visit, anchor)
    values = [float(r["cells"]["value"][1]) for r in by_value]
    assert values == sorted(values, reverse=True)
    sort_state = visit.page.get_attribute(f"[id='{anchor}'] th[data-key='value']", "aria-sort")
    assert sort_state == "descending"


def test_track_and_text_filters(visit: Visit, board: Board):
    visit.open("index.html", "#pembro_rt_cv/lesion_pd")
    anchor = "pembro_rt_cv/lesion_pd"
    visit.page.select_option("#track-filter", "deep")
    shown = {r["model"] for r in _table(visit, anchor) if not r["hidden"]}
    section = next(s for s in board.sections if (s.cohort, s.task) == ("pembro_rt_cv", "lesion_pd"))
    deep = {s.model for s in section.standings if board.models[s.model].deep}
    assert shown == deep and deep
    visit.page.select_option("#track-filter", "")
    visit.page.fill("#text-filter", "radiomics")
    shown = {r["model"] for r in _table(visit, anchor) if not r["hidden"]}
    assert shown == {s.model for s in section.standings if "radiomics" in s.model}
    status = visit.page.text_content("#filter-status")
    assert status == f"{len(shown)} of {len(section.standings)} rows shown"
    visit.page.fill("#text-filter", "")
    visit.page.select_option("#track-filter", "survival")
    visit.page.goto(visit.page.url.split("#")[0] + "#mdacc/pfs")
    survival = {r["model"] for r in _table(visit, "mdacc/pfs") if not r["hidden"]}
    pfs = next(s for s in board.sections if (s.cohort, s.task) == ("mdacc", "pfs"))
    assert survival == {s.model for s in pfs.standings}


def test_the_url_picks_the_cohort_and_task(visit: Visit, board: Board):
    visit.open("index.html", "#nivorad/os")
    visible = visit.page.evaluate(
        "() => [...document.querySelectorAll('section.board-table')]"
        ".filter(s => s.offsetParent !== null).map(s => s.id)"
    )
    assert visible == ["nivorad/os"]
    current = visit.page.get_attribute(".switch-link[aria-current='true']", "data-target")
    assert current == "nivorad/os"
    visit.page.click(".switch-link[data-target='mdacc/lesion_pd']")
    visit.page.wait_for_function("() => location.hash === '#mdacc/lesion_pd'")
    assert visit.page.locator("[id='mdacc/lesion_pd']").is_visible()
    assert not visit.page.locator("[id='nivorad/os']").is_visible()
    visit.open("index.html", "#no/such")  # an unknown fragment shows the first table
    first = board.sections[0]
    assert visit.page.locator(f"[id='{first.cohort}/{first.task}']").is_visible()


def _expected_traces(board: Board, model: str) -> dict[str, int]:
    """How many traces each plot of a model page draws, counted from the board."""
    seeds = len({e.seed for e in board.entries if e.model == model})
    mine = [s for s in board.sections if any(st.model == model for st in s.standings)]
    lesion = [s for s in mine if s.task == "lesion_pd"]
    survival = [s for s in mine if s.task != "lesion_pd"]
    expected = {}
    if lesion:
        expected["roc"] = sum(
            seeds + 1 + (board.oracle_rows(s.cohort, s.task) is not None) for s in lesion
        )
        expected["calibration"] = len(lesion) * (seeds + 1)
    if survival:
        expected["km"] = 2 * len(survival)
    expected["forest"] = sum(1 for s in mine if len(s.standings) > 1)
    expected["spread"] = seeds + 1
    return expected


@pytest.mark.parametrize("model", ["cnn3d", "rsf"])
def test_each_plot_renders_with_its_traces(visit: Visit, board: Board, model: str):
    visit.open(f"models/{model}.html")
    found = visit.page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.plot-area')].map(e => {
            const box = e.getBoundingClientRect();
            return [e.id.replace('plot-', ''), {traces: e.data.length, width: box.width,
                    height: box.height, svg: !!e.querySelector('svg.main-svg')}];
        }))"""
    )
    assert {k: v["traces"] for k, v in found.items()} == _expected_traces(board, model)
    assert all(v["width"] > 100 and v["height"] > 100 and v["svg"] for v in found.values())
    tables = visit.page.locator("details.numbers table").count()
    assert tables >= len(found)  # every plot has its numbers as a table


def test_the_roc_plot_draws_the_oracles_own_curve(visit: Visit, board: Board):
    """The oracle's trace is the ROC curve of the truth's p(PD) (the committed oracle file), the
    same code as the models' curves, and its AUC is the one the records state."""
    assert board.oracle is not None, "the committed board holds leaderboard/results/" + ORACLE
    visit.open("models/rf_radiomics.html")
    drawn = visit.page.evaluate(
        """() => document.getElementById('plot-roc').data
            .filter(t => t.name.startsWith('oracle'))
            .map(t => ({name: t.name, axis: t.xaxis, x: t.x, y: t.y}))"""
    )
    lesion = [s for s in board.sections if s.task == "lesion_pd" and "rf_radiomics" in s.means]
    assert len(drawn) == len(lesion) == 3
    for i, (trace, section) in enumerate(zip(drawn, lesion, strict=True)):
        curve = roc(board.oracle_rows(section.cohort, "lesion_pd"))
        assert trace["name"] == ORACLE_NAME and trace["axis"] == ("x" if i == 0 else f"x{i + 1}")
        assert (trace["x"], trace["y"]) == (rounded(curve.fpr), rounded(curve.tpr))
        assert len(trace["x"]) > 10  # corners of a real curve, not a straight line
        assert curve.auc == pytest.approx(section.oracle["auc"]["value"], abs=1e-9)
    caption = visit.page.locator("#figure-roc figcaption").text_content()
    assert "the simulator's true p(PD) of each lesion" in caption
    assert "binormal" not in visit.page.content()


def test_a_board_without_the_oracle_file_draws_no_oracle_curve(board: Board):
    """An older board: the plot says why no oracle curve is drawn, and draws no stand-in."""
    plot = roc_plot(replace(board, oracle=None), "rf_radiomics")
    assert not [t for t in plot.traces if t["name"].startswith("oracle")]
    assert "No oracle curve: this board holds no oracle predictions" in plot.caption
    with_file = roc_plot(board, "rf_radiomics")
    assert sum(t["name"] == ORACLE_NAME for t in with_file.traces) == 3
    # the records' oracle AUC stays in the table either way
    assert [r for r in plot.tables[0].rows if r[1] == ORACLE_NAME] == [
        r for r in with_file.tables[0].rows if r[1] == ORACLE_NAME
    ]


def test_the_comparison_page_has_one_heatmap_per_table(visit: Visit, board: Board):
    visit.open("compare.html")
    found = visit.page.evaluate(
        "() => [...document.querySelectorAll('.plot-area')].map(e => "
        "[e.data.length, e.data[0].type, e.data[0].z.length, e.getBoundingClientRect().height])"
    )
    assert len(found) == len(board.sections)
    for (traces, kind, rows, height), section in zip(found, board.sections, strict=True):
        assert (traces, kind, rows) == (1, "heatmap", len(section.standings))
        assert height > 100


def test_a_hostile_card_renders_as_text_and_runs_nothing(visit: Visit):
    visit.problems.clear()
    visit.requests.clear()
    visit.open(f"models/{HOSTILE}.html")
    assert visit.page.evaluate("() => window.__pwned === undefined")
    assert visit.page.locator("img").count() == 0 and visit.page.locator("svg[onload]").count() == 0
    card = visit.page.text_content("dl.card")
    assert '<script>window.__pwned = "script"</script>' in card
    assert "| a | b |\n## injected heading" in card  # newlines and pipes kept as text
    readme = visit.page.text_content("pre.readme")
    assert readme.startswith(f"# {HOSTILE}\n\n</pre><script>")
    assert visit.page.locator("dl.card dt").count() == 11  # the card's keys, nothing injected
    assert visit.page.locator("a[href^='javascript:']").count() == 0
    assert "<img src=x" in visit.page.text_content("table.provenance")
    assert visit.problems == []
    assert all(url.startswith(visit.site.resolve().as_uri()) for url in visit.requests)


def test_screenshots_of_the_index_and_a_model_page(visit: Visit):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    visit.open("index.html")
    index = SCREENSHOTS / "web_board_index.png"
    visit.page.screenshot(path=str(index))
    visit.open("models/cnn3d.html")
    model = SCREENSHOTS / "web_board_model_cnn3d.png"
    visit.page.screenshot(path=str(model), full_page=True)
    assert index.stat().st_size > 10_000 and model.stat().st_size > 10_000


# --- at scale (slow) -------------------------------------------------------------------------


@pytest.mark.slow
def test_weight_and_build_time_at_100_models(committed: Board, tmp_path: Path, capsys):
    """89 more models, each a noisy copy of a committed one (3 seeds), through the same build."""
    rng = np.random.default_rng(0)
    extra: list[Entry] = []
    models: dict[str, ModelEntry] = {}
    names = sorted(committed.models)
    for k in range(100 - len(names)):
        source = names[k % len(names)]
        name = f"sim{k:03d}_{source}"[:60]
        noise = rng.normal(0, 0.05)
        for entry in (e for e in committed.entries if e.model == source):
            record = copy.deepcopy(entry.record)
            record["model"] = name
            frame = entry.predictions.copy()
            jitter = rng.normal(0, abs(noise) + 0.02, len(frame))
            lesion = frame["task"] == "lesion_pd"
            frame.loc[lesion, "prediction"] = (
                frame.loc[lesion, "prediction"] + jitter[lesion]
            ).clip(0, 1)
            frame.loc[~lesion, "prediction"] = frame.loc[~lesion, "prediction"] + jitter[~lesion]
            extra.append(Entry(tmp_path / f"{name}__seed{entry.seed}.json", record, frame))
        models[name] = ModelEntry(name, "baseline", committed.models[source].config)
    start = time.perf_counter()
    board = with_models(committed, extra, models)
    ranked = time.perf_counter() - start
    files = site_files(board, INFO, *_calibration())
    out = tmp_path / "site"
    write_site(files, out)
    built = time.perf_counter() - start
    index = len(files["index.html"])
    total = sum(len(data) for data in files.values())
    pages = {path: len(data) for path, data in files.items() if path.endswith(".html")}
    largest = max(pages, key=pages.__getitem__)
    model_pages = [size for path, size in pages.items() if path.startswith("models/")]
    with capsys.disabled():
        print(
            f"\n100 models: ranking {ranked:.0f} s, ranking + site {built:.0f} s; "
            f"index {index / 1e6:.2f} MB, site {total / 1e6:.1f} MB in {len(files)} files, "
            f"largest page {largest} {pages[largest] / 1e6:.2f} MB, model pages "
            f"{min(model_pages) / 1e3:.0f}-{max(model_pages) / 1e3:.0f} kB"
        )
    assert len(board.models) == 100
    assert index < 2_000_000


def test_the_calibration_page_shows_a_mean_over_draws_with_its_spread() -> None:
    from benchmark.leaderboard.web.pages import calibration_page

    report = {
        "targets": [
            {
                "name": "rf drop (mean over draws)",
                "value": 0.012,
                "sd": 0.05,
                "n": 10,
                "holds": False,
                "ci95": None,
            },
            {"name": "rf drop", "value": 0.041, "ci95": [0.0, 0.08], "holds": None},
        ]
    }
    rows = calibration_page(report, None)["targets"].rows
    assert rows[0][2] == "0.012 ± 0.050 (n=10 draws)" and rows[0][4] == "NO"
    assert rows[1][2] == "0.041 [0.000, 0.080]" and rows[1][4] == "-"
