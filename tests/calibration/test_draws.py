"""The model-based targets over random draws: new random seeds each time (never the public one),
an interrupted set resumed with its runs reused, differences taken within a draw, the targets
judged on the mean, and draws.json refused when made on another generator or profile."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from benchmark.calibration import calibrate
from benchmark.calibration import draws as draws_module
from benchmark.calibration.__main__ import main
from benchmark.calibration.draws import (
    DRAWS_FILE,
    MIN_DRAWS,
    PENDING_FILE,
    SEED_RANGE,
    Draws,
    DrawsFailed,
    choose_seeds,
    generator,
    pick_seeds,
    read_draws,
    run_draws,
)
from benchmark.calibration.report import DRAWN, Report, Target, draw_targets, with_draws, write

PUBLIC = 0  # data.seed of conf/data/tiny.yaml (inherited from default.yaml)
MODEL = "cox_clinical"  # the cheapest model on the tiny cohorts


def _figures(
    rf: tuple[float | None, float | None, float | None] = (0.58, 0.54, 0.55),
    rsf: tuple[float | None, float | None] = (0.63, 0.59),
    clinical: tuple[float | None, float | None] = (0.68, 0.64),
    cnn3d: float | None = 0.80,
) -> dict:
    """One draw's figures of the four models (PEMBRO-RT CV; rf externally too)."""
    dev = "pembro_rt_cv"
    return {
        "rf_radiomics": {
            dev: {"lesion_pd": rf[0]},
            "nivorad": {"lesion_pd": rf[1]},
            "mdacc": {"lesion_pd": rf[2]},
        },
        "rsf": {dev: {"os": rsf[0], "pfs": rsf[1]}},
        "rsf_clinical": {dev: {"os": clinical[0], "pfs": clinical[1]}},
        "cnn3d": {dev: {"lesion_pd": cnn3d}},
    }


def _draws(figures: list[dict], profile: str = "tiny") -> Draws:
    models = ("cnn3d", "rf_radiomics", "rsf", "rsf_clinical")
    seeds = tuple(range(10**10, 10**10 + len(figures)))
    return Draws(generator(), profile, models, seeds, tuple(figures))


def test_seeds_are_random_distinct_and_never_the_public_seed():
    class Scripted(random.Random):
        """Draws the public seed, then a repeat, then new ones."""

        def __init__(self, values):
            super().__init__()
            self.values = iter(values)

        def randrange(self, *args):
            return next(self.values)

    taken = 2**40
    got = pick_seeds(3, 2**33, [taken], Scripted([2**33, 2**34, 2**34, taken, 2**35, 2**36]))
    assert got == [2**34, 2**35, 2**36]
    one, two = pick_seeds(MIN_DRAWS, PUBLIC), pick_seeds(MIN_DRAWS, PUBLIC)
    assert len(set(one)) == MIN_DRAWS and set(one).isdisjoint(two)  # a clash: p ~ 1e-14
    assert all(SEED_RANGE[0] <= s < SEED_RANGE[1] for s in one + two)


def test_only_an_unfinished_set_is_resumed(tmp_path):
    pending = tmp_path / PENDING_FILE
    first = choose_seeds(3, None, pending, PUBLIC)
    assert first != choose_seeds(3, None, pending, PUBLIC)  # nothing pending: new seeds
    pending.write_text(json.dumps({"generator": generator(), "seeds": first}))
    assert choose_seeds(3, None, pending, PUBLIC) == first
    grown = choose_seeds(5, None, pending, PUBLIC)
    assert grown[:3] == first and len(set(grown)) == 5
    pending.write_text(json.dumps({"generator": "another 9.9.9", "seeds": first}))
    assert set(choose_seeds(3, None, pending, PUBLIC)).isdisjoint(first)
    with pytest.raises(ValueError, match="public seed"):
        choose_seeds(2, [7, PUBLIC], pending, PUBLIC)


def test_a_difference_is_taken_within_each_draw():
    """The gain of rsf_clinical over rsf is the mean of each draw's gain: a draw without
    rsf_clinical's figure leaves the gain (not rsf's C), and the sd is that of the paired
    differences, not of either model."""
    rsf_os, gain = [0.60, 0.70, 0.65], [0.04, 0.05, 0.03]
    pairs = zip(rsf_os, gain, strict=True)
    figures = [_figures(rsf=(r, 0.59), clinical=(r + g, 0.64)) for r, g in pairs]
    figures.append(_figures(rsf=(0.90, 0.59), clinical=(None, 0.64)))
    drawn = _draws(figures)
    found = drawn.summary("rsf_clinical_minus_rsf_c_os")
    assert found.n == 3 and found.mean == pytest.approx(0.04)
    assert found.sd == pytest.approx(statistics.stdev(gain)) and found.sd < 0.02
    assert drawn.summary("rsf_c_os").n == 4
    clinical = [r + g for r, g in zip(rsf_os, gain, strict=True)]
    # the difference of the two means would fail the target
    assert statistics.fmean(clinical) - statistics.fmean([*rsf_os, 0.90]) < 0
    # the external drop: PEMBRO-RT minus the mean of NIVORAD and MDACC, draw by draw
    drop = _draws([_figures(rf=(0.60, 0.50, 0.56)), _figures(rf=(0.58, 0.57, 0.55))])
    assert drop.values("rf_radiomics_external_drop") == pytest.approx([0.07, 0.02])


def _row(name: str, value: float, holds: bool) -> Target:
    return Target(name, "", "", value, None, holds, "records, 3 seeds")


def test_the_targets_are_judged_on_the_mean_over_draws(tmp_path):
    """Every draw of rf_radiomics lies outside [0.53, 0.63], their mean inside: the target
    holds, and the one-draw record (failing) is shown for reference only."""
    aucs = [0.50, 0.66] * (MIN_DRAWS // 2)
    drops = [0.01, 0.06] * (MIN_DRAWS // 2)  # mean 0.035: holds though half the draws fail
    drawn = _draws([_figures(rf=(a, a - d, a - d)) for a, d in zip(aucs, drops, strict=True)])
    records = [
        _row("rf_radiomics AUC, PEMBRO-RT", 0.66, False),
        _row("rf_radiomics external drop", 0.01, False),
        _row("cnn3d - lr_volume AUC, PEMBRO-RT", 0.2, True),
    ]
    targets = with_draws(records, draw_targets(drawn))
    by_name = {t.name: t for t in targets}
    auc = by_name["rf_radiomics AUC, PEMBRO-RT" + DRAWN]
    assert auc.value == pytest.approx(0.58) and auc.holds is True and auc.n == MIN_DRAWS
    assert auc.sd == pytest.approx(statistics.stdev(aucs))
    assert by_name["rf_radiomics external drop" + DRAWN].holds is True
    assert by_name["rf_radiomics external drop" + DRAWN].value == pytest.approx(0.035)
    reference = by_name["rf_radiomics AUC, PEMBRO-RT"]
    assert reference.holds is None and reference.value == 0.66 and "reference" in reference.note
    assert by_name["cnn3d - lr_volume AUC, PEMBRO-RT"].holds is True  # not a drawn target
    names = [t.name for t in targets]
    assert names.index(auc.name) + 1 == names.index(reference.name)  # side by side
    report = Report("g", "tiny", [0], targets)
    assert report.failing == []
    write(report, tmp_path)  # the figure draws a mean ± sd
    assert (tmp_path / "calibration.png").stat().st_size > 10_000

    # a mean outside fails, however good the one draw
    high = draw_targets(_draws([_figures(rf=(0.64, 0.5, 0.5))] * MIN_DRAWS))
    judged = with_draws([_row("rf_radiomics AUC, PEMBRO-RT", 0.58, True)], high)
    assert [t.holds for t in judged[:2]] == [False, None]
    # fewer than MIN_DRAWS judge nothing: the one-draw record keeps its verdict
    few = draw_targets(_draws([_figures()] * (MIN_DRAWS - 1)))
    kept = with_draws([_row("rf_radiomics AUC, PEMBRO-RT", 0.66, False)], few)
    assert [t.holds for t in kept[:2]] == [None, False] and "not judged" in kept[0].source


def test_draws_json_is_refused_for_another_generator_or_profile(tmp_path):
    drawn = _draws([_figures(), _figures(rsf=(0.61, 0.60))])
    (tmp_path / DRAWS_FILE).write_text(drawn.to_json())
    back = read_draws(tmp_path, "tiny")
    assert back is not None and back.seeds == drawn.seeds and back.figures == drawn.figures
    payload = json.loads(drawn.to_json())
    assert payload["targets"]["rsf_c_os"] == {
        "mean": 0.62,
        "sd": pytest.approx(0.01414, abs=1e-4),
        "n": 2,
    }
    assert payload["draws"][1]["targets"]["rsf_c_os"] == 0.61
    assert read_draws(tmp_path, "default") is None
    (tmp_path / DRAWS_FILE).write_text(json.dumps({**payload, "generator": "simulator 1.0.0"}))
    assert read_draws(tmp_path, "tiny") is None
    # calibrate reads draws.json of its own generator and profile only
    (tmp_path / DRAWS_FILE).write_text(drawn.to_json())
    kw = {"seeds": range(2), "results": tmp_path / "none", "figure": False, "progress": False}
    report = calibrate(profile="tiny", out=tmp_path, **kw)
    assert any(t.name.endswith(DRAWN) for t in report.targets)
    assert report.details["draws"]["data_seeds"] == list(drawn.seeds)
    (tmp_path / DRAWS_FILE).write_text(json.dumps({**payload, "generator": "simulator 1.0.0"}))
    report = calibrate(profile="tiny", out=tmp_path, **kw)
    assert not any(t.name.endswith(DRAWN) for t in report.targets)


@pytest.mark.slow  # ~15 s: a real run on a tiny draw (the default suite stays near 10 minutes)
def test_an_interrupted_set_resumes_and_reuses_its_runs(cache_dir, tmp_path, monkeypatch):
    runs, real, seen = tmp_path / "runs", draws_module.run_one, []

    def killed_on_the_second_draw(model, profile, seed, out, cache):
        seen.append((seed, out))
        if len(seen) == 2:
            raise RuntimeError("killed")
        return real(model, profile, seed, out, cache)

    monkeypatch.setattr(draws_module, "run_one", killed_on_the_second_draw)
    kw = {"models": [MODEL], "runs": runs, "cache_dir": cache_dir, "progress": False}
    with pytest.raises(DrawsFailed, match="killed"):
        run_draws("tiny", 2, **kw)
    pending = json.loads((runs / "tiny" / PENDING_FILE).read_text())["seeds"]
    assert [s for s, _ in seen] == pending and len(set(pending)) == 2 and PUBLIC not in pending
    assert seen[0][1] == runs.resolve() / "tiny" / f"data-seed{pending[0]}" / MODEL

    monkeypatch.setattr(draws_module, "run_one", real)
    drawn = run_draws("tiny", 2, **kw)
    assert list(drawn.seeds) == pending and drawn.reused == 1
    assert not (runs / "tiny" / PENDING_FILE).exists()  # the next call draws new seeds
    prints = set()
    for seed, figures in zip(drawn.seeds, drawn.figures, strict=True):
        path = runs / "tiny" / f"data-seed{seed}" / MODEL / "result.json"
        record = json.loads(path.read_text())
        assert record["provenance"]["config"]["data"]["seed"] == seed and record["seed"] == 0
        c = record["metrics"]["pembro_rt_cv"]["os"]["c_index"]["value"]
        assert figures[MODEL]["pembro_rt_cv"]["os"] == c
        prints.add(record["provenance"]["data_fingerprint"])
    # the draws' datasets and image views left the cache
    left = [p.name for p in (cache_dir / "data").iterdir()]
    assert not [n for n in left for s in drawn.seeds if f"-seed{s}-" in n]
    views = {p.name for p in (cache_dir / "views").iterdir()}
    assert len(prints) == 2 and not views & {p.removeprefix("sha256:")[:16] for p in prints}


def test_the_command_wants_two_draws_at_least(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--draws", "1"])
    assert exit_.value.code == 2 and "at least 2 draws" in capsys.readouterr().err


@pytest.mark.slow  # ~1 min: rsf and rsf_clinical on two tiny draws, then the report
def test_the_command_runs_draws_and_reports_them(cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("NSCLC_IO_BENCH_CACHE", str(cache_dir))
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = ["--profile", "tiny", "--seeds", "2", "--draws", "2"]
    argv += ["--draw-models", "rsf", "rsf_clinical", "--draw-runs", str(runs)]
    argv += ["--results", str(tmp_path / "none"), "--out", str(out), "--no-figure"]
    assert main(argv) in (0, 1)  # the tiny cohorts need not meet the targets
    payload = json.loads((out / DRAWS_FILE).read_text())
    assert payload["profile"] == "tiny" and payload["n_draws"] == 2
    assert payload["models"] == ["rsf", "rsf_clinical"]
    assert set(payload["targets"]) == {
        "rsf_c_os",
        "rsf_c_pfs",
        "rsf_clinical_minus_rsf_c_os",
        "rsf_clinical_minus_rsf_c_pfs",
    }
    for draw in payload["draws"]:
        folder = runs / "tiny" / f"data-seed{draw['data_seed']}"
        c = {
            m: json.loads((folder / m / "result.json").read_text())["metrics"]["pembro_rt_cv"]
            for m in ("rsf", "rsf_clinical")
        }
        gain = c["rsf_clinical"]["pfs"]["c_index"]["value"] - c["rsf"]["pfs"]["c_index"]["value"]
        assert draw["targets"]["rsf_clinical_minus_rsf_c_pfs"] == pytest.approx(gain)
    report = json.loads((out / "calibration.json").read_text())
    rows = {t["name"]: t for t in report["targets"]}
    over = rows["rsf C OS, PEMBRO-RT" + DRAWN]
    assert over["n"] == 2 and over["holds"] is None and "not judged" in over["note"]
    assert "not drawn" in rows["cnn3d - rf_radiomics AUC, PEMBRO-RT" + DRAWN]["source"]
