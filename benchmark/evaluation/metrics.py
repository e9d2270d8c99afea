"""Metrics with one tested convention (README, "Metrics"), for model rows and the oracle row alike.

Conventions
-----------
- ``lesion_pd``: one prediction per lesion, higher = more likely progressive disease. AUC
  (scikit-learn ``roc_auc_score``: ties count 1/2) and Brier score (``brier_score_loss``).
- ``os`` / ``pfs``: one risk score per patient, **higher risk = worse = shorter survival**.
  Harrell's C (scikit-survival ``concordance_index_censored``: ties in risk within 1e-8 count
  1/2; a pair is comparable when the earlier time is an event, or the times tie and the other
  subject is censored), Uno's C (``concordance_index_ipcw``, censoring distribution estimated on
  the TRAINING / development cohort, truncation time ``tau`` stated in ``extra``) and the
  cumulative/dynamic time-dependent AUC at fixed horizons (``cumulative_dynamic_auc``, same
  training censoring distribution).
- Point estimates are the library calls above. Confidence intervals are 95% bootstrap intervals
  over **patients** (for lesions: a cluster bootstrap, a resampled patient brings all of their
  lesions), bias-corrected and accelerated (BCa, Efron 1987): the percentiles are shifted by the
  resamples' median bias and by an acceleration from the leave-one-patient-out jackknife. With a
  few hundred lesions from under 100 patients and AUCs near 0.9, the plain percentile interval
  covers the population value too rarely (93% over 1,000 simulated trials); BCa keeps it at 95%
  (``python -m benchmark.calibration --coverage N``). ``extra["ci_method"]`` says which.
  The bootstrap statistics are computed in vectorised numpy from per-patient resample counts
  (the jackknife's leave-one-out values too, from counts with one patient left out);
  ``tests/evaluation/test_metrics.py`` checks that they equal the library on the same resample. The
  censoring distribution (Uno, td AUC) and ``tau`` are fixed from the full data, not
  re-estimated per resample.
- Resamples are drawn with ``numpy.random.default_rng(seed)`` over the patients in sorted
  patient-id order (row order for ``survival_metrics`` without ``patient_id``), once per call, and
  shared by every metric of the call. Two calls on the same cohort with the same seed and
  ``n_boot`` therefore use the same resamples, and :func:`paired_bootstrap_difference` scores
  two prediction sets on literally the same resamples.
- A metric that cannot be computed has ``value=None`` and the reason in ``not_computable``
  (never a silent 0.5). Resamples where a metric is not computable are skipped; when more than
  half are skipped the CI is ``None`` and ``extra["ci_not_computable"]`` says why.
  ``extra["n_boot_used"]`` always reports how many resamples entered the CI.
- Non-finite predictions are rejected: every metric of that call is not computable, with the
  count in the reason. Malformed labels / times / events raise ``ValueError`` (a harness bug,
  not a model property).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import special
from sklearn.metrics import brier_score_loss, roc_auc_score
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
)
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import Surv

__all__ = [
    "CI_LEVEL",
    "CI_METHOD",
    "TAU_QUANTILE",
    "TIED_TOL",
    "Metric",
    "Replicates",
    "bootstrap_interval",
    "bootstrap_replicates",
    "format_metric",
    "lesion_pd_metrics",
    "paired_bootstrap_difference",
    "survival_metrics",
    "td_auc_key",
]

CI_LEVEL = 0.95
CI_METHOD = "bca"  # written into every CI's extra; "percentile" where no jackknife is available
TIED_TOL = 1e-8  # scikit-survival's default tolerance for tied risk scores
TAU_QUANTILE = 90.0  # percentile of the evaluated cohort's observed times in the default tau rule
_LESION_METRICS = ("auc", "brier")
_TD_AUC_RE = re.compile(r"^td_auc_(.+)m$")


# --------------------------------------------------------------------------------------------
# The record of one number
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """One metric value with its 95% CI, its sample size and, if it failed, the reason."""

    value: float | None
    ci95: tuple[float, float] | None
    n: int
    n_pos: int | None = None
    n_events: int | None = None
    not_computable: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.value is None and not self.not_computable:
            raise ValueError("a Metric without a value must say why (not_computable)")
        if self.value is not None:
            value = float(self.value)
            if not math.isfinite(value):
                raise ValueError(f"metric value must be finite or None, got {self.value!r}")
            object.__setattr__(self, "value", value)
        if self.ci95 is not None:
            lo, hi = (float(x) for x in self.ci95)
            object.__setattr__(self, "ci95", (lo, hi))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"value", "ci95": [lo, hi], "n", "n_pos" | "n_events",
        "not_computable", "extra"}``. ``value`` is always present (``null`` when not
        computable); the other fields are omitted when None / empty."""
        out: dict[str, Any] = {"value": self.value}
        if self.ci95 is not None:
            out["ci95"] = [self.ci95[0], self.ci95[1]]
        out["n"] = int(self.n)
        if self.n_pos is not None:
            out["n_pos"] = int(self.n_pos)
        if self.n_events is not None:
            out["n_events"] = int(self.n_events)
        if self.not_computable is not None:
            out["not_computable"] = self.not_computable
        if self.extra:
            out["extra"] = _jsonable(self.extra)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        """Inverse of :meth:`to_dict`."""
        ci = d.get("ci95")
        return cls(
            value=d.get("value"),
            ci95=None if ci is None else (float(ci[0]), float(ci[1])),
            n=int(d["n"]),
            n_pos=d.get("n_pos"),
            n_events=d.get("n_events"),
            not_computable=d.get("not_computable"),
            extra=dict(d.get("extra", {})),
        )


def format_metric(m: Metric, digits: int = 3) -> str:
    """``"0.712 [0.641, 0.780]"``; ``"0.712"`` without a CI; ``"n/c (<reason>)"``."""
    if m.value is None:
        return f"n/c ({m.not_computable})"
    text = f"{m.value:.{digits}f}"
    if m.ci95 is not None:
        text += f" [{m.ci95[0]:.{digits}f}, {m.ci95[1]:.{digits}f}]"
    return text


def td_auc_key(horizon: float) -> str:
    """Metric key of the time-dependent AUC at ``horizon`` months: 12.0 -> ``"td_auc_12m"``."""
    return f"td_auc_{float(horizon):g}m"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    return x


# --------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------


def _vector(x: Any, name: str, dtype: type = float) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if dtype is object:
        return arr
    try:
        return arr.astype(dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc


def _binary(x: Any, name: str) -> np.ndarray:
    arr = _vector(x, name, float)
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"{name} must be 0/1 (or bool); {int(bad.sum())} of {arr.size} values are not, "
            f"e.g. {arr[bad][0]!r}"
        )
    return arr.astype(bool)


def _times(x: Any, name: str) -> np.ndarray:
    arr = _vector(x, name, float)
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        raise ValueError(f"{name} must be finite and >= 0; {int(bad.sum())} values are not")
    return arr


def _same_length(**arrays: np.ndarray) -> int:
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inputs differ in length: {lengths}")
    return next(iter(lengths.values()))


def _nonfinite_reason(pred: np.ndarray) -> str | None:
    bad = int((~np.isfinite(pred)).sum())
    if bad == 0:
        return None
    return (
        f"{bad} of {pred.size} predictions are not finite (NaN/inf); "
        "missing predictions are rejected, not scored"
    )


# --------------------------------------------------------------------------------------------
# Bootstrap machinery
# --------------------------------------------------------------------------------------------


def _resample_counts(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_units) float matrix: how often each unit appears in each resample."""
    rng = np.random.default_rng(seed)
    if n_boot <= 0 or n_units == 0:
        return np.zeros((0, n_units))
    draws = rng.integers(0, n_units, size=(n_boot, n_units))
    flat = draws + (np.arange(n_boot) * n_units)[:, None]
    return np.bincount(flat.ravel(), minlength=n_boot * n_units).reshape(n_boot, n_units) * 1.0


def _units(patient_id: Any, n: int) -> tuple[np.ndarray, int]:
    """Index of each row's unit (patient) in sorted unique order, and the number of units."""
    if patient_id is None:
        return np.arange(n), n
    ids = _vector(patient_id, "patient_id", object)
    if len(ids) != n:
        raise ValueError(f"patient_id has length {len(ids)}, expected {n}")
    if pd.isna(ids).any():
        raise ValueError("patient_id contains missing values")
    try:
        uniq, inverse = np.unique(
            ids.astype(str) if ids.dtype == object else ids, return_inverse=True
        )
    except TypeError as exc:  # pragma: no cover - unorderable mixed ids
        raise ValueError(f"patient_id values cannot be ordered: {exc}") from exc
    return inverse.ravel(), len(uniq)


def _jackknife_counts(n_units: int) -> np.ndarray:
    """(n_units, n_units) weights whose row i leaves unit i out: the leave-one-patient-out
    jackknife, through the same vectorised code as the bootstrap resamples."""
    return 1.0 - np.eye(n_units)


def _bca_levels(boot: np.ndarray, value: float, jackknife: np.ndarray) -> np.ndarray | None:
    """The two percentile levels (0-1) of the BCa interval; None when the bias correction is
    undefined (every resample on one side of the estimate)."""
    below = (np.sum(boot < value) + 0.5 * np.sum(boot == value)) / boot.size
    if not 0.0 < below < 1.0:
        return None
    z0 = special.ndtri(below)
    jack = jackknife[np.isfinite(jackknife)]
    spread = jack.mean() - jack if jack.size else np.zeros(1)
    scale = 6.0 * float((spread**2).sum()) ** 1.5
    acceleration = float((spread**3).sum()) / scale if scale > 0 else 0.0
    alpha = (1.0 - CI_LEVEL) / 2.0
    z = special.ndtri(np.array([alpha, 1.0 - alpha]))
    return special.ndtr(z0 + (z0 + z) / (1.0 - acceleration * (z0 + z)))


def bootstrap_interval(
    boot: np.ndarray, value: float | None = None, jackknife: np.ndarray | None = None
) -> tuple[tuple[float, float], str]:
    """95% interval from finite bootstrap replicates ``boot``: BCa given the point estimate and
    the jackknife values, else the percentile interval. Returns ``(interval, method)``."""
    levels = None
    if value is not None and jackknife is not None:
        levels = _bca_levels(boot, value, jackknife)
    method = CI_METHOD if levels is not None else "percentile"
    if levels is None:
        alpha = (1.0 - CI_LEVEL) / 2.0
        levels = np.array([alpha, 1.0 - alpha])
    lo, hi = np.percentile(boot, 100.0 * levels)
    return (float(lo), float(hi)), method


def _ci_from_boot(
    boot: np.ndarray | None,
    n_boot: int,
    seed: int,
    value: float | None = None,
    jackknife: np.ndarray | None = None,
) -> tuple[Any, dict[str, Any]]:
    extra: dict[str, Any] = {"n_boot": int(n_boot), "seed": int(seed)}
    if boot is None or n_boot <= 0:
        extra["n_boot_used"] = 0
        extra["ci_not_computable"] = "no bootstrap (n_boot=0)" if n_boot <= 0 else "no value"
        return None, extra
    ok = np.isfinite(boot)
    used = int(ok.sum())
    extra["n_boot_used"] = used
    if 2 * (n_boot - used) > n_boot:
        extra["ci_not_computable"] = (
            f"the metric was computable in only {used} of {n_boot} bootstrap resamples "
            "(need at least half)"
        )
        return None, extra
    ci, extra["ci_method"] = bootstrap_interval(boot[ok], value, jackknife)
    return ci, extra


def _grouped_auc(
    score: np.ndarray, pos_w: np.ndarray, neg_w: np.ndarray, tol: float | None
) -> np.ndarray:
    """Weighted Mann-Whitney AUC per row of the (B, n) weight matrices.

    AUC_b = sum_{i,j} pos_w[b,i] neg_w[b,j] (1[s_i > s_j] + 1/2 1[s_i ~ s_j]) / (sum pos_w)(sum
    neg_w). Ties: exact equality (``tol=None``, scikit-learn) or consecutive sorted scores within
    ``tol`` (scikit-survival's ``cumulative_dynamic_auc``). NaN where a class has no weight.
    """
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    gaps = np.diff(s)
    new_group = gaps != 0 if tol is None else np.abs(gaps) > tol
    starts = np.r_[0, np.flatnonzero(new_group) + 1]
    p = np.add.reduceat(pos_w[:, order], starts, axis=1)
    q = np.add.reduceat(neg_w[:, order], starts, axis=1)
    q_below = np.cumsum(q, axis=1) - q
    num = (p * (q_below + 0.5 * q)).sum(axis=1)
    den = p.sum(axis=1) * q.sum(axis=1)
    out = np.full(len(den), np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


# --------------------------------------------------------------------------------------------
# lesion_pd
# --------------------------------------------------------------------------------------------


@dataclass
class _Eval:
    """Point estimate (or reason) and the bootstrap vector of one metric, before the CI."""

    value: float | None
    reason: str | None
    boot: np.ndarray | None
    n: int
    n_pos: int | None = None
    n_events: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    jack: np.ndarray | None = None  # leave-one-patient-out values (BCa's acceleration)


def _with_jackknife(evals: dict[str, _Eval], jackknife: dict[str, _Eval]) -> dict[str, _Eval]:
    for key, ev in evals.items():
        ev.jack = jackknife[key].boot
    return evals


def _lesion_inputs(label: Any, prediction: Any, patient_id: Any) -> tuple:
    y = _binary(label, "label")
    p = _vector(prediction, "prediction", float)
    n = _same_length(label=y, prediction=p)
    if patient_id is None:
        raise ValueError("patient_id is required (the CI is a patient-level cluster bootstrap)")
    pidx, n_units = _units(patient_id, n)
    return y, p, pidx, n_units


def _lesion_eval(
    y: np.ndarray, p: np.ndarray, pidx: np.ndarray, counts: np.ndarray
) -> dict[str, _Eval]:
    n, n_pos = int(y.size), int(y.sum())
    base = {"n": n, "n_pos": n_pos}
    reason = _nonfinite_reason(p) if n else "no lesions"
    if reason is not None:
        return {k: _Eval(None, reason, None, **base) for k in _LESION_METRICS}

    w = counts[:, pidx]  # (B, n) lesion weights: count of the lesion's patient in each resample
    out: dict[str, _Eval] = {}

    if n_pos in (0, n):
        out["auc"] = _Eval(None, f"only one class ({n_pos} positives of {n})", None, **base)
    else:
        boot = _grouped_auc(p, w * y, w * ~y, tol=None)
        out["auc"] = _Eval(float(roc_auc_score(y, p)), None, boot, **base)

    outside = int(((p < 0) | (p > 1)).sum())
    if outside:
        out["brier"] = _Eval(
            None,
            f"{outside} of {n} predictions outside [0, 1]; the Brier score needs probabilities",
            None,
            **base,
        )
    else:
        sq = (p - y) ** 2
        tot = w.sum(axis=1)
        boot = np.full(len(tot), np.nan)
        np.divide(w @ sq, tot, out=boot, where=tot > 0)
        value = float(brier_score_loss(y.astype(int), p, pos_label=1))
        out["brier"] = _Eval(value, None, boot, **base)
    return out


def _finish(ev: _Eval, n_boot: int, seed: int) -> Metric:
    if ev.value is None:
        extra = dict(ev.extra)
        return Metric(None, None, ev.n, ev.n_pos, ev.n_events, ev.reason, extra)
    ci, boot_extra = _ci_from_boot(ev.boot, n_boot, seed, ev.value, ev.jack)
    return Metric(ev.value, ci, ev.n, ev.n_pos, ev.n_events, None, {**ev.extra, **boot_extra})


def lesion_pd_metrics(
    label: Any, prediction: Any, patient_id: Any, *, n_boot: int = 1000, seed: int = 0
) -> dict[str, Metric]:
    """Per-lesion progressive-disease metrics: ``{"auc": Metric, "brier": Metric}``.

    ``label`` 0/1 per lesion, ``prediction`` a score per lesion (higher = more likely PD; the
    Brier score additionally needs probabilities in [0, 1]), ``patient_id`` the lesion's patient.
    95% CIs by patient-level cluster bootstrap (``n_boot`` resamples of the patients with
    replacement, each bringing all of their lesions; ``seed`` for ``default_rng``).
    ``n`` = lesions, ``n_pos`` = PD lesions. AUC with one class only is not computable; a
    Brier score with one class is reported (it is defined).
    """
    y, p, pidx, n_units = _lesion_inputs(label, prediction, patient_id)
    counts = _resample_counts(n_units, n_boot, seed)
    evals = _with_jackknife(
        _lesion_eval(y, p, pidx, counts), _lesion_eval(y, p, pidx, _jackknife_counts(n_units))
    )
    return {k: _finish(ev, n_boot, seed) for k, ev in evals.items()}


# --------------------------------------------------------------------------------------------
# os / pfs
# --------------------------------------------------------------------------------------------


@dataclass
class _SurvivalContext:
    """Everything about one cohort's outcomes that does not depend on the predictions."""

    time: np.ndarray
    event: np.ndarray
    train: np.ndarray  # structured survival array of the training (development) cohort
    censoring: CensoringDistributionEstimator | None
    train_reason: str | None  # why IPCW metrics cannot be computed from the training cohort
    t_support: float | None  # largest training time with censoring survival G > 0
    tau: float | None
    tau_extra: dict[str, Any]
    horizons: tuple[float, ...]
    comparable: np.ndarray  # (n, n) Harrell comparability A[i, j]: i event, earlier than j


def _survival_context(
    time: Any,
    event: Any,
    train_time: Any,
    train_event: Any,
    tau: float | None,
    horizons: Sequence[float],
) -> _SurvivalContext:
    t = _times(time, "time")
    e = _binary(event, "event")
    _same_length(time=t, event=e)
    tt = _times(train_time, "train_time")
    te = _binary(train_event, "train_event")
    _same_length(train_time=tt, train_event=te)

    hs = tuple(float(h) for h in horizons)
    if any(not math.isfinite(h) or h <= 0 for h in hs):
        raise ValueError(f"horizons must be positive and finite, got {horizons!r}")
    keys = [td_auc_key(h) for h in hs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"horizons give duplicate metric keys: {keys}")

    train = Surv.from_arrays(event=te, time=tt)
    censoring, train_reason, t_support = None, None, None
    if tt.size < 2:
        train_reason = f"training cohort too small to estimate censoring ({tt.size} patients)"
    elif not te.any():
        train_reason = "training cohort has no events (its censoring distribution is not usable)"
    else:
        censoring = CensoringDistributionEstimator().fit(train)
        grid = censoring.unique_time_[np.isfinite(censoring.unique_time_)]
        positive = grid[censoring.prob_[np.isfinite(censoring.unique_time_)] > 0]
        if positive.size == 0:  # pragma: no cover - G(t) > 0 before the first training time
            train_reason = "censoring survival of the training cohort is zero everywhere"
            censoring = None
        else:
            t_support = float(positive.max())

    tau_used: float | None = None
    tau_extra: dict[str, Any] = {}
    if t_support is not None and t.size:
        q = float(np.percentile(t, TAU_QUANTILE))
        if tau is None:
            tau_used = min(t_support, q)
            tau_extra["tau_rule"] = (
                f"min(largest training time with censoring survival > 0 = {t_support:g}, "
                f"{TAU_QUANTILE:g}th percentile of this cohort's observed times = {q:g})"
            )
        else:
            tau = float(tau)
            if not math.isfinite(tau) or tau <= 0:
                raise ValueError(f"tau must be positive and finite, got {tau!r}")
            tau_used = min(tau, t_support)
            if tau_used < tau:
                tau_extra["tau_requested"] = tau
                tau_extra["tau_rule"] = (
                    f"requested tau clipped to the largest training time with censoring "
                    f"survival > 0 ({t_support:g})"
                )
            else:
                tau_extra["tau_rule"] = "given"

    # Harrell comparability (scikit-survival): i is an event and t_i < t_j, or t_i == t_j and j
    # is censored. Pairs between two copies of one patient are never comparable.
    ti, tj = t[:, None], t[None, :]
    comparable = e[:, None] & ((ti < tj) | ((ti == tj) & ~e[None, :]))
    return _SurvivalContext(
        t, e, train, censoring, train_reason, t_support, tau_used, tau_extra, hs, comparable
    )


def _censoring_survival(ctx: _SurvivalContext, times: np.ndarray) -> np.ndarray:
    """G_train at ``times`` (all within the training support), as scikit-survival evaluates it."""
    assert ctx.censoring is not None
    return ctx.censoring.predict_proba(times)


def _concordance_boot(
    counts: np.ndarray, num: np.ndarray, den: np.ndarray, pairs: np.ndarray
) -> np.ndarray:
    """Quadratic forms c' M c per resample; NaN where fewer than 2 comparable pairs."""
    n_pairs = ((counts @ pairs) * counts).sum(axis=1)
    d = ((counts @ den) * counts).sum(axis=1)
    nu = ((counts @ num) * counts).sum(axis=1)
    out = np.full(len(d), np.nan)
    np.divide(nu, d, out=out, where=(n_pairs >= 2) & (d > 0))
    return out


def _survival_eval(ctx: _SurvivalContext, risk: np.ndarray, counts: np.ndarray) -> dict[str, _Eval]:
    t, e = ctx.time, ctx.event
    n, n_events = int(t.size), int(e.sum())
    base = {"n": n, "n_events": n_events}
    keys = ["c_index", "c_index_uno"] + [td_auc_key(h) for h in ctx.horizons]
    if len(risk) != n:
        raise ValueError(f"risk has length {len(risk)}, expected {n}")

    reason = None
    if n == 0:
        reason = "no patients"
    elif n_events == 0:
        reason = f"no events (0 of {n} patients)"
    else:
        reason = _nonfinite_reason(risk)
    if reason is not None:
        out = {k: _Eval(None, reason, None, **base) for k in keys}
        if ctx.tau is not None:
            out["c_index_uno"].extra = {"tau": ctx.tau, **ctx.tau_extra}
        return out

    out: dict[str, _Eval] = {}
    a = ctx.comparable
    diff = risk[:, None] - risk[None, :]
    tie = np.abs(diff) <= TIED_TOL
    score = a * ((diff > 0) & ~tie) + 0.5 * (a & tie)  # i (earlier event) riskier than j
    a_f = a.astype(float)

    # Harrell
    n_pairs = int(a.sum())
    if n_pairs < 2:
        out["c_index"] = _Eval(None, f"fewer than 2 comparable pairs ({n_pairs})", None, **base)
    else:
        value = concordance_index_censored(e, t, risk, tied_tol=TIED_TOL)[0]
        boot = _concordance_boot(counts, score, a_f, a_f)
        out["c_index"] = _Eval(float(value), None, boot, **base)

    # Uno (IPCW, training censoring distribution, truncated at tau)
    if ctx.censoring is None:
        out["c_index_uno"] = _Eval(None, ctx.train_reason, None, **base)
    else:
        tau = ctx.tau
        early = e & (t < tau)
        w = np.zeros(n)
        if early.any():
            w[early] = 1.0 / _censoring_survival(ctx, t[early]) ** 2
        a_u = a & early[:, None]
        n_pairs_u = int(a_u.sum())
        extra = {"tau": tau, **ctx.tau_extra, "n_events_before_tau": int(early.sum())}
        if n_pairs_u < 2:
            out["c_index_uno"] = _Eval(
                None,
                f"fewer than 2 comparable pairs with an event before tau={tau:g} ({n_pairs_u})",
                None,
                **base,
                extra=extra,
            )
        else:
            value = concordance_index_ipcw(
                ctx.train, Surv.from_arrays(event=e, time=t), risk, tau=tau, tied_tol=TIED_TOL
            )[0]
            boot = _concordance_boot(
                counts, w[:, None] * score, w[:, None] * a_f, a_u.astype(float)
            )
            out["c_index_uno"] = _Eval(float(value), None, boot, **base, extra=extra)

    # cumulative/dynamic AUC at each horizon
    for h in ctx.horizons:
        key = td_auc_key(h)
        cases = e & (t <= h)
        controls = t > h
        extra = {
            "horizon_months": h,
            "n_cases": int(cases.sum()),
            "n_controls": int(controls.sum()),
        }
        reason = None
        if not (t.min() < h < t.max()):
            reason = (
                f"horizon {h:g} outside the cohort's follow-up "
                f"(observed times {t.min():g} to {t.max():g}; need min < horizon < max)"
            )
        elif not cases.any():
            reason = f"no event at or before the horizon {h:g}"
        elif not controls.any():
            reason = f"nobody still at risk after the horizon {h:g}"
        elif ctx.censoring is None:
            reason = ctx.train_reason
        elif h > ctx.t_support:
            reason = (
                f"horizon {h:g} beyond the training cohort's censoring support "
                f"(largest training time with censoring survival > 0 = {ctx.t_support:g})"
            )
        if reason is not None:
            out[key] = _Eval(None, reason, None, **base, extra=extra)
            continue
        # Events after h are controls whatever their status; marking them censored leaves the
        # AUC unchanged and keeps scikit-survival from evaluating G beyond the training range.
        test = Surv.from_arrays(event=cases, time=t)
        value = cumulative_dynamic_auc(ctx.train, test, risk, [h], tied_tol=TIED_TOL)[0][0]
        omega = np.zeros(n)
        omega[cases] = 1.0 / _censoring_survival(ctx, t[cases])
        boot = _grouped_auc(risk, counts * omega, counts * controls, tol=TIED_TOL)
        cmin = np.where(counts > 0, t, np.inf).min(axis=1)
        cmax = np.where(counts > 0, t, -np.inf).max(axis=1)
        boot[~((cmin < h) & (h < cmax))] = np.nan
        out[key] = _Eval(float(value), None, boot, **base, extra=extra)
    return out


def survival_metrics(
    time: Any,
    event: Any,
    risk: Any,
    *,
    train_time: Any,
    train_event: Any,
    tau: float | None = None,
    horizons: Sequence[float] = (6.0, 12.0),
    n_boot: int = 1000,
    seed: int = 0,
    patient_id: Any = None,
) -> dict[str, Metric]:
    """OS / PFS metrics of a per-patient risk score (higher = worse = shorter survival).

    Returns ``{"c_index", "c_index_uno", "td_auc_6m", "td_auc_12m"}`` (one ``td_auc_<h>m`` per
    horizon, in months). ``train_time``/``train_event`` are the training (development) cohort's
    outcomes; its Kaplan-Meier censoring distribution G weights Uno's C and the td AUC (pass the
    same arrays as ``time``/``event`` for an internal, cross-validated estimate).

    **tau rule (Uno).** Only pairs whose earlier time is an event at ``time < tau`` count. If
    ``tau`` is None, ``tau = min(t_G, q90)`` where ``t_G`` is the largest training observed time
    at which G (scikit-survival's ``CensoringDistributionEstimator``) is still > 0 and ``q90`` is
    the 90th percentile (numpy, linear) of this cohort's observed times, events and censorings
    alike. A given ``tau`` above ``t_G`` is clipped to ``t_G`` (``extra["tau_requested"]`` keeps
    it). ``extra["tau"]`` is the tau used. Test times beyond the training follow-up therefore
    never reach G, and do not crash.

    **td AUC.** Cumulative cases (event at ``time <= h``) vs dynamic controls (``time > h``),
    cases weighted by 1/G(time). Not computable unless min observed time < h < max observed
    time, there is at least one case and one control, and h <= t_G.

    95% CIs: BCa bootstrap over patients, the same ``n_boot`` resamples for every metric.
    Resamples are drawn over rows in order, or over sorted ``patient_id`` when given (then
    identical to a ``lesion_pd_metrics`` call on the same patients and seed).
    ``n`` = patients, ``n_events`` = events.
    """
    ctx = _survival_context(time, event, train_time, train_event, tau, horizons)
    r = _vector(risk, "risk", float)
    order = _unit_order(patient_id, len(ctx.time))
    counts = _resample_counts(len(ctx.time), n_boot, seed)[:, order]
    evals = _with_jackknife(
        _survival_eval(ctx, r, counts), _survival_eval(ctx, r, _jackknife_counts(len(ctx.time)))
    )
    return {k: _finish(ev, n_boot, seed) for k, ev in evals.items()}


def _unit_order(patient_id: Any, n: int) -> np.ndarray:
    """Column of the resample count matrix for each row (one row per patient)."""
    idx, n_units = _units(patient_id, n)
    if n_units != n:
        raise ValueError("patient_id must be unique for survival metrics (one row per patient)")
    return idx


# --------------------------------------------------------------------------------------------
# Paired comparison
# --------------------------------------------------------------------------------------------


def paired_bootstrap_difference(
    metric: str,
    a: Any,
    b: Any,
    *,
    label: Any = None,
    patient_id: Any = None,
    time: Any = None,
    event: Any = None,
    train_time: Any = None,
    train_event: Any = None,
    tau: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Metric:
    """Difference ``metric(a) - metric(b)`` of two prediction sets on the same cohort.

    ``metric`` is a lesion metric (``"auc"``, ``"brier"``: give ``label`` and ``patient_id``) or a
    survival metric (``"c_index"``, ``"c_index_uno"``, ``"td_auc_<h>m"``: give ``time``,
    ``event`` and, for Uno / td AUC, ``train_time``/``train_event``; ``patient_id`` optional).
    Both sets are scored on the same patient resamples (the ones ``lesion_pd_metrics`` /
    ``survival_metrics`` draw for that seed); the CI is the BCa interval of the per-resample
    differences (jackknife of the per-patient differences), skipping resamples where either side
    is not computable.
    ``extra`` holds ``a`` and ``b`` (the two point estimates) and ``p_boot``, a two-sided
    bootstrap p-value for "no difference" (2 x the smaller tail share, capped at 1).
    """
    ea, eb = _evals_on_resamples(
        metric,
        {"a": a, "b": b},
        label=label,
        patient_id=patient_id,
        time=time,
        event=event,
        train_time=train_time,
        train_event=train_event,
        tau=tau,
        n_boot=n_boot,
        seed=seed,
    )
    extra: dict[str, Any] = {**ea.extra, "a": ea.value, "b": eb.value}
    if ea.value is None or eb.value is None:
        which = "a" if ea.value is None else "b"
        reason = ea.reason if ea.value is None else eb.reason
        return Metric(None, None, ea.n, ea.n_pos, ea.n_events, f"{which}: {reason}", extra)
    diff = ea.boot - eb.boot if ea.boot is not None and eb.boot is not None else None
    jack = ea.jack - eb.jack if ea.jack is not None and eb.jack is not None else None
    ci, boot_extra = _ci_from_boot(diff, n_boot, seed, ea.value - eb.value, jack)
    extra.update(boot_extra)
    if ci is not None:
        d = diff[np.isfinite(diff)]
        extra["p_boot"] = float(min(1.0, 2.0 * min((d <= 0).mean(), (d >= 0).mean())))
    return Metric(ea.value - eb.value, ci, ea.n, ea.n_pos, ea.n_events, None, extra)


def _evals_on_resamples(
    metric: str,
    predictions: dict[str, Any],
    *,
    label: Any,
    patient_id: Any,
    time: Any,
    event: Any,
    train_time: Any,
    train_event: Any,
    tau: float | None,
    n_boot: int,
    seed: int,
) -> list[_Eval]:
    """``metric`` of each prediction set (named for error messages), on the same resamples."""
    names = list(predictions)
    if metric in _LESION_METRICS:
        if label is None or patient_id is None:
            raise ValueError(f"{metric!r} needs label= and patient_id=")
        y, first, pidx, n_units = _lesion_inputs(label, predictions[names[0]], patient_id)
        preds = [first]
        for name in names[1:]:
            preds.append(_vector(predictions[name], name, float))
            _same_length(**{names[0]: first, name: preds[-1]})
        counts = _resample_counts(n_units, n_boot, seed)
        jack = _jackknife_counts(n_units)
        return [
            _with_jackknife(_lesion_eval(y, p, pidx, counts), _lesion_eval(y, p, pidx, jack))[
                metric
            ]
            for p in preds
        ]
    if metric in ("c_index", "c_index_uno") or _TD_AUC_RE.match(metric):
        if time is None or event is None:
            raise ValueError(f"{metric!r} needs time= and event=")
        horizons: tuple[float, ...] = ()
        if metric.startswith("td_auc_"):
            horizons = (float(_TD_AUC_RE.match(metric).group(1)),)
        if train_time is None:
            if metric != "c_index":
                raise ValueError(f"{metric!r} needs train_time= and train_event=")
            train_time, train_event = time, event
        ctx = _survival_context(time, event, train_time, train_event, tau, horizons)
        risks = [_vector(predictions[name], name, float) for name in names]
        order = _unit_order(patient_id, len(ctx.time))
        counts = _resample_counts(len(ctx.time), n_boot, seed)[:, order]
        jack = _jackknife_counts(len(ctx.time))
        return [
            _with_jackknife(_survival_eval(ctx, r, counts), _survival_eval(ctx, r, jack))[metric]
            for r in risks
        ]
    raise ValueError(
        f"unknown metric {metric!r}: use auc, brier, c_index, c_index_uno or td_auc_<h>m"
    )


@dataclass(frozen=True)
class Replicates:
    """A metric's point estimate, its value on each resample and its leave-one-patient-out
    jackknife values (NaN: not computable); :func:`bootstrap_interval` makes the CI of them."""

    value: float | None
    boot: np.ndarray
    jackknife: np.ndarray
    reason: str | None = None


def bootstrap_replicates(
    metric: str,
    prediction: Any,
    *,
    label: Any = None,
    patient_id: Any = None,
    time: Any = None,
    event: Any = None,
    train_time: Any = None,
    train_event: Any = None,
    tau: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Replicates:
    """``metric`` of one prediction set and its value on each of the ``n_boot`` resamples.

    Arguments and resamples as in :func:`paired_bootstrap_difference` (so as in
    ``lesion_pd_metrics`` / ``survival_metrics`` for the same seed): ``bootstrap_interval(boot,
    value, jackknife)`` is the metric's CI, and values of several models on the same cohort are
    paired resample by resample (and patient by patient in the jackknife). ``boot`` and
    ``jackknife`` are all NaN when the metric is not computable (``reason``).
    """
    (ev,) = _evals_on_resamples(
        metric,
        {"prediction": prediction},
        label=label,
        patient_id=patient_id,
        time=time,
        event=event,
        train_time=train_time,
        train_event=train_event,
        tau=tau,
        n_boot=n_boot,
        seed=seed,
    )
    boot = np.full(n_boot, np.nan) if ev.boot is None else np.asarray(ev.boot, dtype=float)
    jack = np.full(1, np.nan) if ev.jack is None else np.asarray(ev.jack, dtype=float)
    return Replicates(ev.value, boot, jack, ev.reason)
