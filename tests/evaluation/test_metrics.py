"""benchmark.evaluation.metrics: one convention, checked by hand and against scikit-learn /
scikit-survival."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import brier_score_loss, roc_auc_score
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
)
from sksurv.util import Surv

from benchmark.evaluation import metrics as M
from benchmark.evaluation.metrics import (
    Metric,
    format_metric,
    lesion_pd_metrics,
    paired_bootstrap_difference,
    survival_metrics,
)

# ------------------------------------------------------------------------------------------------
# data helpers
# ------------------------------------------------------------------------------------------------


def _lesions(seed: int, n_patients: int = 40, n_lesions: int = 160, signal: float = 0.2):
    rng = np.random.default_rng(seed)
    pid = np.array([f"P{i:03d}" for i in rng.integers(0, n_patients, n_lesions)], dtype=object)
    y = (rng.random(n_lesions) < 0.35).astype(int)
    p = np.clip(0.35 + signal * y + rng.normal(0, 0.2, n_lesions), 0, 1)
    return y, p, pid


def _survival(seed: int, n: int = 80, ties: bool = False, scale: float = 10.0):
    rng = np.random.default_rng(seed)
    t_true = rng.exponential(scale, n)
    cens = rng.exponential(2 * scale, n)
    t = np.minimum(t_true, cens)
    e = t_true <= cens
    risk = -t_true + rng.normal(0, scale / 2, n)
    if ties:
        t = np.ceil(t)  # many tied times
        risk = np.round(risk / 3)  # many tied risks
    return t, e, risk


# ------------------------------------------------------------------------------------------------
# hand-computed cases
# ------------------------------------------------------------------------------------------------


def test_auc_of_four_lesions_by_hand():
    # positives 0.35 and 0.8 against negatives 0.1 and 0.4: 0.35>0.1, 0.35<0.4, 0.8>both -> 3/4
    y = [0, 0, 1, 1]
    m = lesion_pd_metrics(y, [0.1, 0.4, 0.35, 0.8], ["a", "b", "c", "d"], n_boot=0)
    assert m["auc"].value == pytest.approx(0.75, abs=1e-15)
    # a tie between a positive and a negative counts 1/2: (1 + 0.5 + 1 + 1) / 4
    m = lesion_pd_metrics(y, [0.1, 0.4, 0.4, 0.8], ["a", "b", "c", "d"], n_boot=0)
    assert m["auc"].value == pytest.approx(0.875, abs=1e-15)
    assert (m["auc"].n, m["auc"].n_pos) == (4, 2)


def test_brier_of_three_lesions_by_hand():
    m = lesion_pd_metrics([1, 0, 1], [0.8, 0.3, 0.4], ["a", "a", "b"], n_boot=0)
    assert m["brier"].value == pytest.approx((0.2**2 + 0.3**2 + 0.6**2) / 3, abs=1e-15)


def test_harrell_with_tied_risks_and_censoring_by_hand():
    # patient:   0    1    2    3    4
    t = [1.0, 2.0, 3.0, 4.0, 5.0]
    e = [1, 0, 1, 1, 0]
    r = [3.0, 3.0, 2.0, 1.0, 2.0]
    # comparable pairs (earlier one an event): (0,1..4), (2,3), (2,4), (3,4) = 7
    # 0 vs 1 tie 0.5; 0 vs 2,3,4 concordant 3; 2 vs 3 concordant 1; 2 vs 4 tie 0.5;
    # 3 vs 4 discordant -> 5 / 7
    m = survival_metrics(t, e, r, train_time=t, train_event=e, horizons=(), n_boot=0)
    assert m["c_index"].value == pytest.approx(5.0 / 7.0, abs=1e-15)
    assert (m["c_index"].n, m["c_index"].n_events) == (5, 3)


def test_harrell_with_tied_times_by_hand():
    # an event is comparable with a censored subject at the same time;
    # two events at one time are not
    t = [1.0, 2.0, 2.0, 3.0, 3.0]
    e = [1, 1, 0, 1, 1]
    r = [4.0, 2.0, 3.0, 1.0, 5.0]
    # pairs: 0 vs 1,2,3,4 -> 4>2, 4>3, 4>1 concordant, 4<5 discordant (3 of 4)
    #        1 vs 2 (tied time, 2 censored) 2<3 discordant; 1 vs 3 concordant; 1 vs 4 discordant
    #        3 vs 4: both events at t=3, not comparable.  total 4 concordant of 7
    m = survival_metrics(t, e, r, train_time=t, train_event=e, horizons=(), n_boot=0)
    assert m["c_index"].value == pytest.approx(4.0 / 7.0, abs=1e-15)


# ------------------------------------------------------------------------------------------------
# sign convention
# ------------------------------------------------------------------------------------------------


def test_higher_risk_means_shorter_survival():
    t, e, _ = _survival(3, n=60)
    m = survival_metrics(t, e, -t, train_time=t, train_event=e, n_boot=50)
    assert m["c_index"].value == pytest.approx(1.0)
    assert m["c_index_uno"].value == pytest.approx(1.0)
    assert m["td_auc_6m"].value == pytest.approx(1.0)
    assert m["td_auc_12m"].value == pytest.approx(1.0)
    m = survival_metrics(t, e, t, train_time=t, train_event=e, n_boot=50)
    assert m["c_index"].value == pytest.approx(0.0)
    assert m["c_index_uno"].value == pytest.approx(0.0)
    assert m["td_auc_6m"].value == pytest.approx(0.0)
    # and for lesions: a higher prediction means PD
    y, _, pid = _lesions(0)
    assert lesion_pd_metrics(y, y * 0.5 + 0.25, pid, n_boot=0)["auc"].value == 1.0
    assert lesion_pd_metrics(y, 0.75 - y * 0.5, pid, n_boot=0)["auc"].value == 0.0


# ------------------------------------------------------------------------------------------------
# agreement with the libraries (point estimates and every bootstrap statistic)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lesion_point_estimates_agree_with_sklearn(seed):
    y, p, pid = _lesions(seed)
    p[:20] = np.round(p[:20], 1)  # some ties
    m = lesion_pd_metrics(y, p, pid, n_boot=0)
    assert m["auc"].value == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert m["brier"].value == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    # the vectorised bootstrap statistic with every patient once is the same number
    y_, p_, pidx, n_units = M._lesion_inputs(y, p, pid)
    ev = M._lesion_eval(y_, p_, pidx, np.ones((1, n_units)))
    assert ev["auc"].boot[0] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert ev["brier"].boot[0] == pytest.approx(brier_score_loss(y, p), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_lesion_bootstrap_equals_sklearn_on_the_same_resample(seed):
    y, p, pid = _lesions(seed)
    p[::3] = np.round(p[::3], 1)
    y_, p_, pidx, n_units = M._lesion_inputs(y, p, pid)
    counts = M._resample_counts(n_units, 25, seed)
    ev = M._lesion_eval(y_, p_, pidx, counts)
    for b in range(counts.shape[0]):
        rows = np.repeat(np.arange(len(y)), counts[b, pidx].astype(int))  # all lesions of a patient
        assert ev["auc"].boot[b] == pytest.approx(roc_auc_score(y[rows], p[rows]), abs=1e-12)
        assert ev["brier"].boot[b] == pytest.approx(brier_score_loss(y[rows], p[rows]), abs=1e-12)


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (1, False), (2, True), (3, True)])
def test_survival_point_estimates_agree_with_sksurv(seed, ties):
    t, e, r = _survival(seed, ties=ties)
    y = Surv.from_arrays(event=e, time=t)
    m = survival_metrics(t, e, r, train_time=t, train_event=e, tau=15.0, n_boot=0)
    assert m["c_index"].value == pytest.approx(concordance_index_censored(e, t, r)[0], abs=1e-12)
    assert m["c_index_uno"].extra["tau"] == 15.0
    assert m["c_index_uno"].value == pytest.approx(
        concordance_index_ipcw(y, y, r, tau=15.0)[0], abs=1e-12
    )
    auc, _ = cumulative_dynamic_auc(y, y, r, [6.0, 12.0])
    assert m["td_auc_6m"].value == pytest.approx(auc[0], abs=1e-12)
    assert m["td_auc_12m"].value == pytest.approx(auc[1], abs=1e-12)
    # the vectorised statistics with every patient once agree too
    ctx = M._survival_context(t, e, t, e, 15.0, (6.0, 12.0))
    ev = M._survival_eval(ctx, r, np.ones((1, len(t))))
    assert ev["c_index"].boot[0] == pytest.approx(m["c_index"].value, abs=1e-12)
    assert ev["c_index_uno"].boot[0] == pytest.approx(m["c_index_uno"].value, abs=1e-12)
    assert ev["td_auc_6m"].boot[0] == pytest.approx(auc[0], abs=1e-12)
    assert ev["td_auc_12m"].boot[0] == pytest.approx(auc[1], abs=1e-12)


@pytest.mark.parametrize(("seed", "ties"), [(0, False), (5, True)])
def test_survival_bootstrap_equals_sksurv_on_the_same_resample(seed, ties):
    t, e, r = _survival(seed, n=60, ties=ties)
    train_t, train_e, _ = _survival(seed + 100, n=90)
    train_t = np.r_[train_t, 200.0]  # the training cohort outlasts the test cohort
    train_e = np.r_[train_e, True]
    y_train = Surv.from_arrays(event=train_e, time=train_t)
    ctx = M._survival_context(t, e, train_t, train_e, None, (6.0, 12.0))
    counts = M._resample_counts(len(t), 25, seed)
    ev = M._survival_eval(ctx, r, counts)
    checked_td = 0
    for b in range(counts.shape[0]):
        rows = np.repeat(np.arange(len(t)), counts[b].astype(int))
        tb, eb, rb = t[rows], e[rows], r[rows]
        y_b = Surv.from_arrays(event=eb, time=tb)
        assert ev["c_index"].boot[b] == pytest.approx(
            concordance_index_censored(eb, tb, rb)[0], abs=1e-12
        )
        assert ev["c_index_uno"].boot[b] == pytest.approx(
            concordance_index_ipcw(y_train, y_b, rb, tau=ctx.tau)[0], abs=1e-12
        )
        for h, key in ((6.0, "td_auc_6m"), (12.0, "td_auc_12m")):
            inside = tb.min() < h < tb.max() and (eb & (tb <= h)).any()
            assert np.isfinite(ev[key].boot[b]) == inside
            if inside:
                expected = cumulative_dynamic_auc(y_train, y_b, rb, [h])[0][0]
                assert ev[key].boot[b] == pytest.approx(expected, abs=1e-12)
                checked_td += 1
    assert checked_td > 20


# ------------------------------------------------------------------------------------------------
# the cluster bootstrap and its determinism
# ------------------------------------------------------------------------------------------------


def test_cluster_bootstrap_resamples_patients_not_lesions():
    rng = np.random.default_rng(7)
    n_patients, per = 30, 10
    y_pat = rng.random(n_patients) < 0.4
    y_pat[:2] = [True, False]
    p_pat = np.clip(0.4 + 0.2 * y_pat + rng.normal(0, 0.25, n_patients), 0, 1)
    y, p = np.repeat(y_pat, per), np.repeat(p_pat, per)  # lesions of a patient share everything
    clustered = lesion_pd_metrics(y, p, np.repeat(np.arange(n_patients), per), seed=1)
    independent = lesion_pd_metrics(y, p, np.arange(n_patients * per), seed=1)
    for key in ("auc", "brier"):
        wc = clustered[key].ci95[1] - clustered[key].ci95[0]
        wi = independent[key].ci95[1] - independent[key].ci95[0]
        assert wc > 2.0 * wi, (key, wc, wi)  # about sqrt(10) wider
        assert clustered[key].value == independent[key].value
        lo, hi = clustered[key].ci95
        assert lo <= clustered[key].value <= hi


def test_ci_is_deterministic_per_seed_and_shared_across_row_order():
    y, p, pid = _lesions(11)
    a = lesion_pd_metrics(y, p, pid, seed=3)
    b = lesion_pd_metrics(y, p, pid, seed=3)
    c = lesion_pd_metrics(y, p, pid, seed=4)
    assert a == b
    assert a["auc"].ci95 != c["auc"].ci95
    perm = np.random.default_rng(0).permutation(len(y))
    d = lesion_pd_metrics(y[perm], p[perm], pid[perm], seed=3)
    assert d["auc"].ci95 == pytest.approx(a["auc"].ci95, abs=1e-12)
    assert a["auc"].extra["n_boot"] == 1000 and a["auc"].extra["n_boot_used"] == 1000

    t, e, r = _survival(11)
    s1 = survival_metrics(t, e, r, train_time=t, train_event=e, seed=3)
    s2 = survival_metrics(t, e, r, train_time=t, train_event=e, seed=3)
    s3 = survival_metrics(t, e, r, train_time=t, train_event=e, seed=4)
    assert s1 == s2
    assert s1["c_index"].ci95 != s3["c_index"].ci95
    for m in s1.values():
        assert m.ci95[0] <= m.value <= m.ci95[1]
    # with patient ids, resamples follow the sorted ids, not the row order
    ids = np.array([f"P{i:03d}" for i in range(len(t))], dtype=object)
    s4 = survival_metrics(t, e, r, train_time=t, train_event=e, seed=3, patient_id=ids)
    s5 = survival_metrics(
        t[::-1],
        e[::-1],
        r[::-1],
        train_time=t,
        train_event=e,
        seed=3,
        patient_id=ids[::-1],
    )
    assert s4["c_index"].ci95 == pytest.approx(s5["c_index"].ci95, abs=1e-12)


def test_bootstrap_ci_needs_half_of_the_resamples():
    boot = np.full(100, np.nan)
    boot[:49] = np.linspace(0.4, 0.6, 49)
    ci, extra = M._ci_from_boot(boot, 100, 0)
    assert ci is None and extra["n_boot_used"] == 49 and "49 of 100" in extra["ci_not_computable"]
    boot[:50] = np.linspace(0.4, 0.6, 50)
    ci, extra = M._ci_from_boot(boot, 100, 0)
    assert ci is not None and extra["n_boot_used"] == 50
    assert 0.4 <= ci[0] < ci[1] <= 0.6


def test_ci_dropped_when_most_resamples_have_no_case_or_no_control():
    # one case (patient 0) and one control (patient 1) at 6 months; the rest censored early:
    # a resample needs both -> about 41% of resamples are usable
    t = np.array([1.0, 20.0, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5])
    e = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0])
    train_t = np.arange(1.0, 41.0)
    train_e = np.arange(40) % 2 == 0
    m = survival_metrics(
        t, e, -t, train_time=train_t, train_event=train_e, horizons=(6.0,), n_boot=400
    )["td_auc_6m"]
    assert m.value == 1.0
    assert m.ci95 is None
    assert m.extra["n_boot_used"] < 200 and "ci_not_computable" in m.extra


# ------------------------------------------------------------------------------------------------
# not computable, never a silent 0.5
# ------------------------------------------------------------------------------------------------


def test_one_class_is_not_computable():
    m = lesion_pd_metrics([0] * 12, np.linspace(0, 1, 12), np.arange(12) // 3)
    assert m["auc"].value is None and m["auc"].ci95 is None
    assert m["auc"].not_computable == "only one class (0 positives of 12)"
    assert m["brier"].value is not None  # the Brier score is defined with one class
    assert format_metric(m["auc"]) == "n/c (only one class (0 positives of 12))"


def test_no_events_is_not_computable():
    t = np.arange(1.0, 11.0)
    e = np.zeros(10, bool)
    m = survival_metrics(t, e, -t, train_time=t, train_event=~e)
    for metric in m.values():
        assert metric.value is None and metric.ci95 is None
        assert metric.not_computable == "no events (0 of 10 patients)"
        assert metric.n_events == 0


def test_non_finite_predictions_are_rejected_with_a_count():
    y, p, pid = _lesions(0)
    p[[3, 7]] = np.nan
    m = lesion_pd_metrics(y, p, pid)
    for metric in m.values():
        assert metric.value is None
        assert metric.not_computable.startswith("2 of 160 predictions are not finite")
    t, e, r = _survival(0)
    r[5] = np.inf
    for metric in survival_metrics(t, e, r, train_time=t, train_event=e).values():
        assert metric.value is None
        assert metric.not_computable.startswith("1 of 80 predictions are not finite")


def test_horizon_outside_follow_up_is_not_computable():
    t, e, r = _survival(1)
    m = survival_metrics(
        t, e, r, train_time=t, train_event=e, horizons=(0.001, 6.0, 1000.0), n_boot=20
    )
    assert m["td_auc_0.001m"].value is None
    assert "outside the cohort's follow-up" in m["td_auc_0.001m"].not_computable
    assert m["td_auc_1000m"].value is None
    assert "outside the cohort's follow-up" in m["td_auc_1000m"].not_computable
    assert m["td_auc_6m"].value is not None
    # everyone censored before the horizon except events: no control left
    t2 = np.array([1.0, 2.0, 3.0, 4.0, 8.0])
    e2 = np.array([1, 1, 0, 1, 1])
    m2 = survival_metrics(t2, e2, -t2, train_time=t2, train_event=e2, horizons=(8.0, 2.5))
    assert "outside the cohort's follow-up" in m2["td_auc_8m"].not_computable
    assert m2["td_auc_2.5m"].value == 1.0


def test_horizon_beyond_training_censoring_support_is_not_computable():
    t, e, r = _survival(2, scale=20.0)
    train_t = np.array([1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    train_e = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 0])  # G(10) = 0
    m = survival_metrics(t, e, r, train_time=train_t, train_event=train_e, n_boot=20)
    assert m["td_auc_6m"].value is not None
    assert m["td_auc_12m"].value is None
    assert "censoring support" in m["td_auc_12m"].not_computable


def test_fewer_than_two_comparable_pairs():
    t = np.array([1.0, 2.0, 3.0])
    e = np.array([0, 1, 1])  # only (1, 2) is comparable
    m = survival_metrics(t, e, [0.0, 1.0, 0.0], train_time=t, train_event=e, horizons=())
    assert m["c_index"].value is None
    assert m["c_index"].not_computable == "fewer than 2 comparable pairs (1)"


def test_brier_needs_probabilities():
    y, p, pid = _lesions(0)
    m = lesion_pd_metrics(y, p * 10 - 3, pid, n_boot=10)
    assert m["brier"].value is None and "outside [0, 1]" in m["brier"].not_computable
    assert m["auc"].value == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_a_metric_without_value_must_say_why():
    with pytest.raises(ValueError, match="must say why"):
        Metric(value=None, ci95=None, n=3)
    with pytest.raises(ValueError, match="finite"):
        Metric(value=float("nan"), ci95=None, n=3)


def test_malformed_inputs_raise():
    with pytest.raises(ValueError, match="0/1"):
        lesion_pd_metrics([0, 2, 1], [0.1, 0.2, 0.3], [1, 2, 3])
    with pytest.raises(ValueError, match="length"):
        lesion_pd_metrics([0, 1, 1], [0.1, 0.2], [1, 2, 3])
    with pytest.raises(ValueError, match="finite"):
        survival_metrics([1.0, np.nan], [1, 0], [0, 1], train_time=[1, 2], train_event=[1, 0])


# ------------------------------------------------------------------------------------------------
# Uno: external cohorts with longer follow-up, tau, ties
# ------------------------------------------------------------------------------------------------


def test_uno_with_test_follow_up_longer_than_training():
    t, e, r = _survival(4, n=80, scale=15.0)
    t[:5] = [40.0, 45.0, 50.0, 55.0, 60.0]
    e[:5] = True  # events far beyond the training follow-up
    train_t, train_e, _ = _survival(5, n=60, scale=10.0)
    train_t, train_e = np.r_[np.minimum(train_t, 24.0), 25.0], np.r_[train_e, False]
    y_train, y_test = Surv.from_arrays(train_e, train_t), Surv.from_arrays(e, t)
    with pytest.raises(ValueError):  # what a bare library call does with these data
        concordance_index_ipcw(y_train, y_test, r)
    m = survival_metrics(t, e, r, train_time=train_t, train_event=train_e, n_boot=200)
    uno = m["c_index_uno"]
    assert uno.value is not None and uno.ci95 is not None
    assert 0 < uno.extra["tau"] < 25.0
    assert "tau_rule" in uno.extra and uno.extra["n_events_before_tau"] > 0
    assert uno.value == pytest.approx(
        concordance_index_ipcw(y_train, y_test, r, tau=uno.extra["tau"])[0], abs=1e-12
    )
    # the td AUC at 12 months is unaffected by events after 12 months, and does not crash
    assert m["td_auc_12m"].value is not None
    cases = e & (t <= 12.0)
    expected = cumulative_dynamic_auc(y_train, Surv.from_arrays(cases, t), r, [12.0])[0][0]
    assert m["td_auc_12m"].value == pytest.approx(expected, abs=1e-12)
    # a requested tau beyond the training support is clipped, and says so
    m = survival_metrics(t, e, r, train_time=train_t, train_event=train_e, tau=100.0, n_boot=0)
    assert m["c_index_uno"].extra["tau_requested"] == 100.0
    assert m["c_index_uno"].extra["tau"] < 25.0


def test_default_tau_rule():
    t = np.arange(1.0, 101.0)
    e = np.ones(100, bool)
    train_t = np.arange(1.0, 51.0)
    train_e = np.arange(50) % 3 != 0  # last training time (50) is an event: G(50) > 0
    m = survival_metrics(t, e, -t, train_time=train_t, train_event=train_e, n_boot=0)
    # min(training support 50, 90th percentile of 1..100 = 90.1) = 50
    assert m["c_index_uno"].extra["tau"] == 50.0
    m = survival_metrics(t, e, -t, train_time=t, train_event=e, n_boot=0)
    assert m["c_index_uno"].extra["tau"] == pytest.approx(np.percentile(t, 90))


def test_uno_and_harrell_with_heavy_ties():
    rng = np.random.default_rng(9)
    t = rng.integers(1, 6, 50).astype(float)  # five distinct times
    e = rng.random(50) < 0.6
    r = rng.integers(0, 3, 50).astype(float)  # three distinct risks
    y = Surv.from_arrays(e, t)
    m = survival_metrics(t, e, r, train_time=t, train_event=e, horizons=(3.0,), n_boot=100)
    assert m["c_index"].value == pytest.approx(concordance_index_censored(e, t, r)[0], abs=1e-12)
    tau = m["c_index_uno"].extra["tau"]
    assert m["c_index_uno"].value == pytest.approx(
        concordance_index_ipcw(y, y, r, tau=tau)[0], abs=1e-12
    )
    # (a bare library call crashes here: G = 0 at the last time, 5, which has events; events after
    # the horizon are controls whatever their status, so censoring them changes nothing)
    with pytest.raises(ValueError, match="censoring survival function is zero"):
        cumulative_dynamic_auc(y, y, r, [3.0])
    y_h = Surv.from_arrays(e & (t <= 3.0), t)
    assert m["td_auc_3m"].value == pytest.approx(
        cumulative_dynamic_auc(y, y_h, r, [3.0])[0][0], abs=1e-12
    )
    assert all(v.ci95 is not None for v in m.values())


# ------------------------------------------------------------------------------------------------
# paired comparison
# ------------------------------------------------------------------------------------------------


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    y, p, pid = _lesions(2)
    d = paired_bootstrap_difference("auc", p, p.copy(), label=y, patient_id=pid)
    assert d.value == 0.0 and d.ci95 == (0.0, 0.0)
    t, e, r = _survival(2)
    d = paired_bootstrap_difference("c_index", r, r.copy(), time=t, event=e)
    assert d.value == 0.0 and d.ci95 == (0.0, 0.0)


def test_paired_difference_detects_a_clearly_better_model():
    y, p, pid = _lesions(3, n_patients=60, n_lesions=250, signal=0.4)
    noise = np.random.default_rng(0).random(len(y))
    d = paired_bootstrap_difference("auc", p, noise, label=y, patient_id=pid, seed=1)
    single = lesion_pd_metrics(y, p, pid, seed=1)["auc"]
    assert d.value == pytest.approx(single.value - roc_auc_score(y, noise), abs=1e-12)
    assert d.extra["a"] == single.value
    assert d.ci95[0] > 0 and d.extra["p_boot"] < 0.01
    # the paired CI of the difference is narrower than the sum of the two marginal widths
    other = lesion_pd_metrics(y, noise, pid, seed=1)["auc"]
    width = d.ci95[1] - d.ci95[0]
    assert width < (single.ci95[1] - single.ci95[0]) + (other.ci95[1] - other.ci95[0])

    t, e, r = _survival(3, n=100)
    worse = np.random.default_rng(1).normal(size=len(t))
    for metric in ("c_index", "c_index_uno", "td_auc_6m"):
        d = paired_bootstrap_difference(
            metric, r, worse, time=t, event=e, train_time=t, train_event=e
        )
        assert d.value > 0 and d.ci95[0] > 0, metric
        d_rev = paired_bootstrap_difference(
            metric, worse, r, time=t, event=e, train_time=t, train_event=e
        )
        assert d_rev.value == pytest.approx(-d.value) and d_rev.ci95[1] < 0


def test_paired_difference_reports_a_side_that_is_not_computable():
    y, p, pid = _lesions(2)
    q = p.copy()
    q[0] = np.nan
    d = paired_bootstrap_difference("auc", p, q, label=y, patient_id=pid)
    assert d.value is None and d.not_computable.startswith("b: 1 of 160")
    with pytest.raises(ValueError, match="unknown metric"):
        paired_bootstrap_difference("accuracy", p, p, label=y, patient_id=pid)


# ------------------------------------------------------------------------------------------------
# record shape, formatting, speed
# ------------------------------------------------------------------------------------------------


def test_to_dict_is_json_ready_and_round_trips():
    y, p, pid = _lesions(0)
    auc = lesion_pd_metrics(y, p, pid, n_boot=100)["auc"]
    d = auc.to_dict()
    assert set(d) == {"value", "ci95", "n", "n_pos", "extra"}
    assert isinstance(d["ci95"], list) and len(d["ci95"]) == 2
    assert d["n"] == 160 and d["n_pos"] == int(y.sum())
    json.dumps(d)
    assert Metric.from_dict(json.loads(json.dumps(d))) == auc

    t, e, r = _survival(0)
    uno = survival_metrics(t, e, r, train_time=t, train_event=e, n_boot=50)["c_index_uno"]
    d = uno.to_dict()
    assert "n_pos" not in d and d["n_events"] == int(e.sum()) and "tau" in d["extra"]
    json.dumps(d)

    nc = lesion_pd_metrics([1, 1], [0.2, 0.3], ["a", "b"])["auc"].to_dict()
    assert nc["value"] is None and "ci95" not in nc and "only one class" in nc["not_computable"]


def test_format_metric():
    assert format_metric(Metric(0.7123, (0.6411, 0.78), n=10)) == "0.712 [0.641, 0.780]"
    assert format_metric(Metric(0.7123, None, n=10)) == "0.712"
    assert format_metric(Metric(None, None, n=3, not_computable="no events")) == "n/c (no events)"
