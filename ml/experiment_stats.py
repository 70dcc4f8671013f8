"""Statistics for A/B and multi-variant experiment analysis.

Small, pure functions: inputs are ints, floats or 1-D numpy arrays; outputs are
frozen dataclasses whose fields are plain Python floats/ints/bools/strings (or
``None``), so a result can be written to a table with ``result.to_dict()``.

Conventions shared by every function
------------------------------------
* "control" is the baseline arm, "treatment" the variant; every difference is
  ``treatment - control`` and every relative lift is ``(t - c) / c``.
* Invalid input raises ``ValueError``: negative or non-integer counts,
  conversions greater than the number of units, NaN/inf values, mismatched
  lengths, ``alpha`` outside ``(0, 1)``, non-positive priors or shares.
* Degenerate but valid data never raises and never yields NaN/inf. Each result
  has a ``reason`` field: ``None`` for a regular computation, otherwise a short
  text saying which convention was applied (or, when all numbers are still
  present, a caveat the reader should know about). The conventions are:

  - **Empty variant** (``n == 0`` in an arm used by the test): statistics that
    need that arm are ``None`` and ``reason`` starts with ``"empty variant"``.
  - **No variance anywhere, identical arms** (0 % or 100 % conversion in every
    arm, or zero variance and equal means): there is no evidence of a
    difference, so ``p_value = 1.0``, the test statistic is ``0.0`` and the
    confidence interval of the difference is ``(0.0, 0.0)``.
  - **No variance anywhere, different means** (continuous metrics only; for
    proportions the pooled variance can only be zero when both rates are equal):
    the observed difference is exact, ``p_value = 0.0`` (the limit, also what
    ``scipy.stats.ttest_ind`` returns), the CI collapses to the point estimate
    and the (infinite) test statistic and dof are ``None``.
  - **Fewer than two observations in an arm** for tests that need a sample
    variance (Welch): ``p_value`` is ``None`` with reason ``"fewer than two
    observations ..."`` because a sample variance is not estimable.
  - **Relative lift with a zero control rate/mean** is undefined and ``None``.

Everything here is a fixed-horizon (non-sequential) analysis: the p-values are
only valid if the sample size was fixed in advance and the data are looked at
once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import integrate, special, stats

__all__ = [
    "ChiSquareResult",
    "CupedDifferenceResult",
    "CupedResult",
    "NormalPosteriorResult",
    "ProbBeatsControlResult",
    "RelativeLiftResult",
    "SampleRatioMismatchResult",
    "TwoProportionResult",
    "WelchResult",
    "benjamini_hochberg_adjust",
    "bernoulli_variance",
    "chi_square_conversion",
    "cuped_adjust",
    "cuped_difference",
    "holm_adjust",
    "prob_beats_control",
    "prob_beats_control_normal",
    "relative_lift_ttest",
    "sample_ratio_mismatch",
    "two_proportion_ztest",
    "welch_ttest",
    "welch_ttest_arrays",
]

EMPTY_VARIANT = "empty variant"
SRM_P_THRESHOLD = 0.001


# --------------------------------------------------------------------------- #
# Result types
# --------------------------------------------------------------------------- #
class _AsDict:
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the scalar fields (numpy arrays are left out)."""
        return {k: v for k, v in asdict(self).items() if not isinstance(v, np.ndarray)}


@dataclass(frozen=True)
class TwoProportionResult(_AsDict):
    """Result of :func:`two_proportion_ztest`.

    ``difference = rate_treatment - rate_control``; ``relative_lift =
    difference / rate_control`` (``None`` when ``rate_control == 0``);
    ``ci_low``/``ci_high`` is the unpooled Wald interval of the difference at
    level ``1 - alpha``; ``z_statistic``/``p_value`` come from the pooled
    two-sided z-test of ``H0: p_t == p_c``.
    """

    rate_control: float | None
    rate_treatment: float | None
    difference: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    z_statistic: float | None
    p_value: float | None
    alpha: float
    reason: str | None = None


@dataclass(frozen=True)
class ChiSquareResult(_AsDict):
    """Result of :func:`chi_square_conversion` (Pearson chi-square, no continuity correction)."""

    statistic: float | None
    dof: int | None
    p_value: float | None
    n_variants_used: int
    reason: str | None = None


@dataclass(frozen=True)
class WelchResult(_AsDict):
    """Result of :func:`welch_ttest` / :func:`welch_ttest_arrays`.

    ``difference = mean_treatment - mean_control``; the CI is
    ``difference +/- t_{1-alpha/2, dof} * se`` with the Welch-Satterthwaite
    ``dof``; ``p_value`` is two-sided.
    """

    mean_control: float | None
    mean_treatment: float | None
    difference: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    t_statistic: float | None
    dof: float | None
    p_value: float | None
    alpha: float
    reason: str | None = None


@dataclass(frozen=True)
class RelativeLiftResult(_AsDict):
    """Result of :func:`relative_lift_ttest` (delta-method test of ``(m_t - m_c) / m_c``)."""

    relative_lift: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    t_statistic: float | None
    dof: float | None
    p_value: float | None
    alpha: float
    reason: str | None = None


@dataclass(frozen=True)
class SampleRatioMismatchResult(_AsDict):
    """Result of :func:`sample_ratio_mismatch` (chi-square goodness of fit)."""

    statistic: float | None
    dof: int
    p_value: float | None
    srm_detected: bool
    threshold: float
    expected_counts: tuple[float, ...]
    reason: str | None = None


@dataclass(frozen=True)
class CupedResult(_AsDict):
    """Result of :func:`cuped_adjust`.

    ``adjusted`` is a numpy array (excluded from :meth:`to_dict`).
    ``variance_reduction = 1 - var(adjusted) / var(metric)``, which equals the
    squared sample correlation of metric and covariate.
    """

    theta: float
    covariate_mean: float
    variance_reduction: float
    adjusted: np.ndarray = field(compare=False, repr=False)
    reason: str | None = None


@dataclass(frozen=True)
class CupedDifferenceResult(_AsDict):
    """Result of :func:`cuped_difference`: Welch test on CUPED-adjusted values."""

    theta: float
    difference_unadjusted: float | None
    difference: float | None
    std_error: float | None
    ci_low: float | None
    ci_high: float | None
    t_statistic: float | None
    dof: float | None
    p_value: float | None
    variance_reduction: float
    alpha: float
    reason: str | None = None


@dataclass(frozen=True)
class ProbBeatsControlResult(_AsDict):
    """Result of :func:`prob_beats_control` (Beta-Binomial model)."""

    prob_beats_control: float
    alpha_control: float
    beta_control: float
    alpha_treatment: float
    beta_treatment: float
    expected_rate_control: float
    expected_rate_treatment: float
    reason: str | None = None


@dataclass(frozen=True)
class NormalPosteriorResult(_AsDict):
    """Result of :func:`prob_beats_control_normal` (normal approximation, flat prior)."""

    difference: float | None
    std_error: float | None
    prob_beats_control: float | None
    ci_low: float | None
    ci_high: float | None
    alpha: float
    reason: str | None = None


# --------------------------------------------------------------------------- #
# Validation helpers
# --------------------------------------------------------------------------- #
def _count(name: str, value: Any) -> int:
    """A non-negative integer count (ints, numpy ints, or integral floats)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    fv = float(value)
    if not math.isfinite(fv) or fv < 0 or fv != math.floor(fv):
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(fv)


def _real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    fv = float(value)
    if not math.isfinite(fv):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return fv


def _alpha(alpha: Any) -> float:
    a = _real("alpha", alpha)
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return a


def _conv_n(prefix: str, conv: Any, n: Any) -> tuple[int, int]:
    c = _count(f"conv_{prefix}", conv)
    m = _count(f"n_{prefix}", n)
    if c > m:
        raise ValueError(f"conv_{prefix}={c} exceeds n_{prefix}={m}")
    return c, m


def _array(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def _two_sided_p_t(t_stat: float, dof: float) -> float:
    return float(2.0 * stats.t.sf(abs(t_stat), dof))


# --------------------------------------------------------------------------- #
# 1. Two-proportion z-test
# --------------------------------------------------------------------------- #
def two_proportion_ztest(
    conv_c: int, n_c: int, conv_t: int, n_t: int, alpha: float = 0.05
) -> TwoProportionResult:
    """Two-sided z-test for a difference of two conversion rates.

    * Test: pooled z-test, ``z = (p_t - p_c) / sqrt(p(1-p)(1/n_c + 1/n_t))``
      with ``p = (conv_c + conv_t) / (n_c + n_t)``; ``p_value = 2 * Phi(-|z|)``.
      Identical to ``statsmodels.stats.proportion.proportions_ztest`` (default
      pooled variance) and, squared, to the uncorrected 2x2 Pearson chi-square.
    * Interval: unpooled Wald interval
      ``(p_t - p_c) +/- z_{1-alpha/2} sqrt(p_c(1-p_c)/n_c + p_t(1-p_t)/n_t)``
      (statsmodels ``confint_proportions_2indep(method="wald")``). Because the
      test uses the pooled and the CI the unpooled variance, the two can
      disagree for results right at the significance boundary.

    Degenerate cases (no exception, no NaN):

    * ``n_c == 0`` or ``n_t == 0``: the rate of the empty arm, the difference,
      the CI, ``z`` and ``p_value`` are ``None``; ``reason="empty variant: ..."``.
    * Pooled rate 0 or 1 (no conversions anywhere, or 100 % in both arms):
      ``z = 0.0``, ``p_value = 1.0``, CI ``(0.0, 0.0)``.
    * Both observed rates are 0 or 1 but differ (e.g. 0/5 vs 5/5): the z-test
      is defined, but the Wald standard error is 0 so the CI collapses to the
      point estimate; ``reason`` warns about this.
    * ``relative_lift`` is ``None`` when ``rate_control == 0``.

    Raises ``ValueError`` for negative/non-integer counts, ``conv > n`` or an
    ``alpha`` outside ``(0, 1)``.
    """
    c_c, n_c = _conv_n("c", conv_c, n_c)
    c_t, n_t = _conv_n("t", conv_t, n_t)
    a = _alpha(alpha)
    rate_c = c_c / n_c if n_c > 0 else None
    rate_t = c_t / n_t if n_t > 0 else None
    if rate_c is None or rate_t is None:
        empty = [arm for arm, n in (("control", n_c), ("treatment", n_t)) if n == 0]
        return TwoProportionResult(
            rate_c, rate_t, None, None, None, None, None, None, a,
            reason=f"{EMPTY_VARIANT}: {' and '.join(empty)} has n=0",
        )  # fmt: skip

    diff = rate_t - rate_c
    lift = diff / rate_c if rate_c > 0 else None
    pooled = (c_c + c_t) / (n_c + n_t)
    se_pooled = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_c + 1.0 / n_t))
    if se_pooled == 0.0:
        # Pooled rate is exactly 0 or 1, so both rates are equal and diff == 0.
        return TwoProportionResult(
            rate_c, rate_t, 0.0, lift, 0.0, 0.0, 0.0, 1.0, a,
            reason="no variance: every unit in both arms has the same outcome "
            f"(pooled rate {pooled:g}); p_value set to 1.0 and CI to (0, 0)",
        )  # fmt: skip
    z = diff / se_pooled
    p_value = float(2.0 * stats.norm.sf(abs(z)))
    se_wald = math.sqrt(rate_c * (1.0 - rate_c) / n_c + rate_t * (1.0 - rate_t) / n_t)
    half = float(stats.norm.isf(a / 2.0)) * se_wald
    reason = None
    if se_wald == 0.0:
        reason = (
            "Wald CI has zero width: both observed rates are 0 or 1; "
            "treat the interval as uninformative"
        )
    return TwoProportionResult(
        rate_c, rate_t, diff, lift, diff - half, diff + half, z, p_value, a, reason=reason
    )


# --------------------------------------------------------------------------- #
# 2. k x 2 chi-square test
# --------------------------------------------------------------------------- #
def chi_square_conversion(conversions: Sequence[int], totals: Sequence[int]) -> ChiSquareResult:
    """Pearson chi-square test of equal conversion rates across k variants.

    Builds the k x 2 table ``[[conv_i, n_i - conv_i]]`` and computes
    ``X2 = sum (O - E)^2 / E`` with ``E`` from the margins, ``dof = k - 1``,
    ``p_value = P(chi2_{k-1} >= X2)``. **No continuity correction is applied**
    (for k = 2 this equals the square of the pooled z statistic of
    :func:`two_proportion_ztest`). This reproduces R's ``prop.test`` and
    ``statsmodels.stats.proportion.proportions_chisquare`` for k >= 3, where
    R never applies Yates' correction; for k = 2, R's default
    ``prop.test(correct=TRUE)`` differs and ``correct=FALSE`` matches.

    Degenerate cases (no exception, no NaN):

    * Variants with ``n_i == 0`` are excluded (they carry no information) and
      ``reason`` lists them; ``dof`` counts only the variants used.
    * Fewer than two non-empty variants: ``statistic``, ``dof`` and
      ``p_value`` are ``None``, ``reason`` starts with ``"empty variant"``.
    * No conversions at all, or every unit converted: ``statistic = 0.0``,
      ``p_value = 1.0``.
    * Any expected cell count below 5: result is computed, ``reason`` warns
      that the chi-square approximation may be poor.

    Raises ``ValueError`` for mismatched lengths, fewer than two variants,
    negative/non-integer counts or ``conversions[i] > totals[i]``.
    """
    if len(conversions) != len(totals):
        raise ValueError("conversions and totals must have the same length")
    if len(conversions) < 2:
        raise ValueError("need at least two variants")
    pairs = [
        _conv_n(f"{i}", c, n) for i, (c, n) in enumerate(zip(conversions, totals, strict=True))
    ]
    empty = [i for i, (_, n) in enumerate(pairs) if n == 0]
    used = [(c, n) for c, n in pairs if n > 0]
    notes = [f"{EMPTY_VARIANT}: excluded variant index(es) {empty} with n=0"] if empty else []
    if len(used) < 2:
        return ChiSquareResult(None, None, None, len(used), reason="; ".join(notes))
    conv = np.array([c for c, _ in used], dtype=float)
    tot = np.array([n for _, n in used], dtype=float)
    dof = len(used) - 1
    pooled = conv.sum() / tot.sum()
    if pooled in (0.0, 1.0):
        notes.append(f"no variance: pooled rate is {pooled:g}; p_value set to 1.0")
        return ChiSquareResult(0.0, dof, 1.0, len(used), reason="; ".join(notes))
    observed = np.column_stack([conv, tot - conv])
    expected = np.column_stack([tot * pooled, tot * (1.0 - pooled)])
    statistic = float(((observed - expected) ** 2 / expected).sum())
    p_value = float(stats.chi2.sf(statistic, dof))
    if expected.min() < 5.0:
        notes.append("expected cell count below 5: chi-square approximation may be poor")
    return ChiSquareResult(statistic, dof, p_value, len(used), reason="; ".join(notes) or None)


# --------------------------------------------------------------------------- #
# 3. Welch t-test (absolute and relative)
# --------------------------------------------------------------------------- #
def bernoulli_variance(conv: int, n: int, ddof: int = 1) -> float:
    """Variance of a 0/1 metric with ``conv`` ones among ``n`` units.

    ``ddof=0`` gives the population variance ``p(1-p)`` (what GrowthBook's
    ``ProportionStatistic`` uses); ``ddof=1`` gives the sample variance
    ``p(1-p) n / (n-1)`` (what ``numpy.var(x, ddof=1)`` and
    ``scipy.stats.ttest_ind`` use on the raw 0/1 data). Returns ``0.0`` when
    ``n <= ddof`` (variance not estimable; the tests then report a reason).
    """
    c, m = _conv_n("", conv, n)
    if ddof not in (0, 1):
        raise ValueError("ddof must be 0 or 1")
    if m <= ddof:
        return 0.0
    p = c / m
    return p * (1.0 - p) * m / (m - ddof)


def _welch_core(
    mean_c: float, var_c: float, n_c: int, mean_t: float, var_t: float, n_t: int, a: float
) -> WelchResult:
    if n_c == 0 or n_t == 0:
        empty = [arm for arm, n in (("control", n_c), ("treatment", n_t)) if n == 0]
        return WelchResult(
            mean_c if n_c else None, mean_t if n_t else None,
            None, None, None, None, None, None, None, a,
            reason=f"{EMPTY_VARIANT}: {' and '.join(empty)} has n=0",
        )  # fmt: skip
    diff = mean_t - mean_c
    if n_c < 2 or n_t < 2:
        return WelchResult(
            mean_c, mean_t, diff, None, None, None, None, None, None, a,
            reason="fewer than two observations in a variant: sample variance not estimable",
        )  # fmt: skip
    vc, vt = var_c / n_c, var_t / n_t
    se2 = vc + vt
    if se2 == 0.0:
        if diff == 0.0:
            return WelchResult(
                mean_c, mean_t, 0.0, 0.0, 0.0, 0.0, 0.0, None, 1.0, a,
                reason="no variance: both arms constant and equal; p_value set to 1.0, CI (0, 0)",
            )  # fmt: skip
        return WelchResult(
            mean_c, mean_t, diff, 0.0, diff, diff, None, None, 0.0, a,
            reason="no variance: both arms constant with different means; the difference is "
            "exact, p_value set to its limit 0.0",
        )  # fmt: skip
    se = math.sqrt(se2)
    dof = se2**2 / (vc**2 / (n_c - 1) + vt**2 / (n_t - 1))
    t_stat = diff / se
    half = float(stats.t.isf(a / 2.0, dof)) * se
    return WelchResult(
        mean_c, mean_t, diff, se, diff - half, diff + half, t_stat, dof,
        _two_sided_p_t(t_stat, dof), a,
    )  # fmt: skip


def welch_ttest(
    mean_c: float,
    var_c: float,
    n_c: int,
    mean_t: float,
    var_t: float,
    n_t: int,
    alpha: float = 0.05,
) -> WelchResult:
    """Welch (unequal-variance) two-sample t-test from summary statistics.

    ``var_c``/``var_t`` are **sample variances (ddof=1)**. With
    ``se^2 = var_c/n_c + var_t/n_t``:
    ``t = (mean_t - mean_c) / se``, Welch-Satterthwaite
    ``dof = se^4 / ((var_c/n_c)^2/(n_c-1) + (var_t/n_t)^2/(n_t-1))``,
    two-sided ``p = 2 P(T_dof > |t|)``, CI ``diff +/- t_{1-alpha/2,dof} se``.
    Matches ``scipy.stats.ttest_ind_from_stats(..., equal_var=False)``.

    For a conversion metric pass ``mean = conv/n`` and
    ``var = bernoulli_variance(conv, n, ddof=1)``; that equals Welch on the raw
    0/1 data (and differs slightly from the pooled z-test).

    Degenerate cases: an empty arm gives ``None`` statistics with
    ``reason="empty variant: ..."``; ``n < 2`` in an arm gives ``p_value=None``
    (variance not estimable); both variances zero gives ``p_value=1.0`` and CI
    ``(0, 0)`` when the means are equal, otherwise ``p_value=0.0`` and a
    zero-width CI at the difference (``t_statistic``/``dof`` ``None``). If only
    one arm has zero variance the test is regular.

    Raises ``ValueError`` for negative variances, non-integer/negative ``n``,
    non-finite values or a bad ``alpha``.
    """
    a = _alpha(alpha)
    nc, nt = _count("n_c", n_c), _count("n_t", n_t)
    mc, mt = _real("mean_c", mean_c), _real("mean_t", mean_t)
    vc, vt = _real("var_c", var_c), _real("var_t", var_t)
    if vc < 0 or vt < 0:
        raise ValueError("variances must be non-negative")
    return _welch_core(mc, vc, nc, mt, vt, nt, a)


def welch_ttest_arrays(control: Any, treatment: Any, alpha: float = 0.05) -> WelchResult:
    """Welch t-test on raw per-unit values (see :func:`welch_ttest`).

    Uses ``numpy.var(ddof=1)``; equals ``scipy.stats.ttest_ind(control,
    treatment... equal_var=False)`` with the sign convention ``treatment -
    control``. Empty arrays and single observations follow the degenerate-case
    conventions of :func:`welch_ttest`. NaN/inf values raise ``ValueError``
    (drop or impute missing values explicitly before testing).
    """
    a = _alpha(alpha)
    xc, xt = _array("control", control), _array("treatment", treatment)
    mc = float(xc.mean()) if xc.size else 0.0
    mt = float(xt.mean()) if xt.size else 0.0
    vc = float(xc.var(ddof=1)) if xc.size > 1 else 0.0
    vt = float(xt.var(ddof=1)) if xt.size > 1 else 0.0
    return _welch_core(mc, vc, xc.size, mt, vt, xt.size, a)


def relative_lift_ttest(
    mean_c: float,
    var_c: float,
    n_c: int,
    mean_t: float,
    var_t: float,
    n_t: int,
    alpha: float = 0.05,
) -> RelativeLiftResult:
    """Welch-type t-test of the relative lift ``(mean_t - mean_c) / mean_c``.

    Delta-method variance of the ratio of independent means:
    ``se^2 = var_t / (mean_c^2 n_t) + var_c mean_t^2 / (mean_c^4 n_c)``;
    ``t = lift / se``; the dof is the Welch-Satterthwaite dof of the absolute
    difference (as in GrowthBook's ``gbstats`` ``TwoSidedTTest``). ``var_*``
    are whatever variance the caller chooses; the GrowthBook reference value
    (14/28 vs 16/30 -> p = 0.80707) is reproduced with the **population**
    variance ``p(1-p)`` (``bernoulli_variance(..., ddof=0)``), not the sample
    variance (which gives 0.81038).

    Degenerate cases: empty arm -> ``None`` statistics with
    ``reason="empty variant: ..."``; ``n < 2`` in an arm -> ``p_value=None``;
    ``mean_c == 0`` -> lift undefined, all ``None``; ``se == 0`` -> ``p_value
    = 1.0`` and CI ``(0, 0)`` if the lift is 0, otherwise ``p_value = 0.0`` and
    a zero-width CI at the lift.
    """
    a = _alpha(alpha)
    nc, nt = _count("n_c", n_c), _count("n_t", n_t)
    mc, mt = _real("mean_c", mean_c), _real("mean_t", mean_t)
    vc, vt = _real("var_c", var_c), _real("var_t", var_t)
    if vc < 0 or vt < 0:
        raise ValueError("variances must be non-negative")
    none = (None, None, None, None, None, None, None)
    if nc == 0 or nt == 0:
        empty = [arm for arm, n in (("control", nc), ("treatment", nt)) if n == 0]
        return RelativeLiftResult(
            *none, a, reason=f"{EMPTY_VARIANT}: {' and '.join(empty)} has n=0"
        )
    if mc == 0.0:
        return RelativeLiftResult(*none, a, reason="control mean is 0: relative lift undefined")
    lift = (mt - mc) / mc
    if nc < 2 or nt < 2:
        return RelativeLiftResult(
            lift, None, None, None, None, None, None, a,
            reason="fewer than two observations in a variant: sample variance not estimable",
        )  # fmt: skip
    se2 = vt / (mc**2 * nt) + vc * mt**2 / (mc**4 * nc)
    if se2 == 0.0:
        if lift == 0.0:
            return RelativeLiftResult(
                0.0, 0.0, 0.0, 0.0, 0.0, None, 1.0, a,
                reason="no variance: both arms constant and equal; p_value set to 1.0, CI (0, 0)",
            )  # fmt: skip
        return RelativeLiftResult(
            lift, 0.0, lift, lift, None, None, 0.0, a,
            reason="no variance: the lift is exact, p_value set to its limit 0.0",
        )  # fmt: skip
    wc, wt = vc / nc, vt / nt
    # se2 > 0 and mean_c != 0 imply wc + wt > 0, so the dof is well defined.
    dof = (wc + wt) ** 2 / (wc**2 / (nc - 1) + wt**2 / (nt - 1))
    se = math.sqrt(se2)
    t_stat = lift / se
    half = float(stats.t.isf(a / 2.0, dof)) * se
    return RelativeLiftResult(
        lift, se, lift - half, lift + half, t_stat, dof, _two_sided_p_t(t_stat, dof), a
    )


# --------------------------------------------------------------------------- #
# 4. Multiple-comparison adjustments
# --------------------------------------------------------------------------- #
def _prepare_pvalues(pvalues: Any) -> tuple[list[int], np.ndarray, int]:
    values = list(pvalues)
    present: list[int] = []
    vals: list[float] = []
    for i, p in enumerate(values):
        if p is None:
            continue
        fp = _real_or_nan(p, i)
        if math.isnan(fp):
            continue
        if not 0.0 <= fp <= 1.0:
            raise ValueError(f"p-value at index {i} is outside [0, 1]: {p!r}")
        present.append(i)
        vals.append(fp)
    return present, np.asarray(vals, dtype=float), len(values)


def _real_or_nan(p: Any, i: int) -> float:
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise ValueError(f"p-value at index {i} is not a number: {p!r}")
    return float(p)


def _scatter(present: list[int], adjusted: np.ndarray, size: int) -> list[float | None]:
    out: list[float | None] = [None] * size
    for i, v in zip(present, adjusted, strict=True):
        out[i] = float(v)
    return out


def holm_adjust(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm (1979) step-down adjusted p-values (controls the family-wise error rate).

    With the m present p-values sorted ascending ``p_(1) <= ... <= p_(m)``:
    ``adj_(i) = min(1, max_{j <= i} (m - j + 1) p_(j))``, returned in the
    original order. Rejecting ``adj <= alpha`` is Holm's procedure at level
    alpha. Matches R ``p.adjust(method="holm")`` and statsmodels
    ``multipletests(method="holm")``.

    Missing values (``None`` or NaN, e.g. a test that could not be computed
    because of an empty variant) are not part of the family: ``m`` counts only
    the present p-values (as R's ``p.adjust`` does by default) and the missing
    positions are returned as ``None``. Values outside ``[0, 1]`` or
    non-numbers raise ``ValueError``.
    """
    present, p, size = _prepare_pvalues(pvalues)
    m = p.size
    if m == 0:
        return [None] * size
    order = np.argsort(p, kind="mergesort")
    stepped = (m - np.arange(m)) * p[order]
    adj_sorted = np.minimum(np.maximum.accumulate(stepped), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adj_sorted
    return _scatter(present, adjusted, size)


def benjamini_hochberg_adjust(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg (1995) step-up adjusted p-values (controls the FDR).

    With the m present p-values sorted ascending:
    ``adj_(i) = min(1, min_{j >= i} m p_(j) / j)``, returned in the original
    order (monotone in the raw p-values). Matches R
    ``p.adjust(method="BH")`` and statsmodels ``multipletests(method="fdr_bh")``.
    FDR control is guaranteed for independent or positively dependent tests.

    Missing values (``None``/NaN) are handled as in :func:`holm_adjust`:
    excluded from ``m`` and returned as ``None``.
    """
    present, p, size = _prepare_pvalues(pvalues)
    m = p.size
    if m == 0:
        return [None] * size
    order = np.argsort(p, kind="mergesort")
    scaled = p[order] * m / np.arange(1, m + 1)
    adj_sorted = np.minimum(np.minimum.accumulate(scaled[::-1])[::-1], 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adj_sorted
    return _scatter(present, adjusted, size)


# --------------------------------------------------------------------------- #
# 5. Sample ratio mismatch
# --------------------------------------------------------------------------- #
def sample_ratio_mismatch(
    observed_counts: Sequence[int],
    expected_shares: Sequence[float],
    threshold: float = SRM_P_THRESHOLD,
) -> SampleRatioMismatchResult:
    """Chi-square goodness-of-fit test of assignment counts against planned shares.

    ``expected_shares`` are positive weights, normalised to sum to 1 (so
    ``[50, 50]`` and ``[0.5, 0.5]`` are equivalent). Expected counts are
    ``N * share``; ``X2 = sum (O - E)^2 / E``, ``dof = k - 1``; matches
    ``scipy.stats.chisquare(observed, f_exp=expected)``. ``srm_detected`` is
    ``p_value < threshold`` (default 0.001, the usual SRM alarm level: the test
    is run on every experiment, so a strict level keeps false alarms rare).

    Degenerate: no observations at all (``N == 0``) -> ``statistic`` and
    ``p_value`` ``None``, ``srm_detected=False``, ``reason="empty variant: no
    units observed"``. An empty variant with ``N > 0`` is not degenerate: it is
    (correctly) a strong mismatch.

    Raises ``ValueError`` for fewer than two variants, mismatched lengths,
    negative/non-integer counts, non-positive or non-finite shares, or a
    threshold outside ``(0, 1)``.
    """
    if len(observed_counts) != len(expected_shares):
        raise ValueError("observed_counts and expected_shares must have the same length")
    k = len(observed_counts)
    if k < 2:
        raise ValueError("need at least two variants")
    thr = _real("threshold", threshold)
    if not 0.0 < thr < 1.0:
        raise ValueError("threshold must be in (0, 1)")
    obs = np.array([_count(f"observed_counts[{i}]", c) for i, c in enumerate(observed_counts)])
    shares = np.array([_real(f"expected_shares[{i}]", s) for i, s in enumerate(expected_shares)])
    if np.any(shares <= 0):
        raise ValueError("expected_shares must be positive")
    shares = shares / shares.sum()
    total = int(obs.sum())
    expected = total * shares
    if total == 0:
        return SampleRatioMismatchResult(
            None, k - 1, None, False, thr, tuple(float(e) for e in expected),
            reason=f"{EMPTY_VARIANT}: no units observed",
        )  # fmt: skip
    statistic = float(((obs - expected) ** 2 / expected).sum())
    p_value = float(stats.chi2.sf(statistic, k - 1))
    reason = None
    if expected.min() < 5.0:
        reason = "expected count below 5: chi-square approximation may be poor"
    return SampleRatioMismatchResult(
        statistic, k - 1, p_value, p_value < thr, thr, tuple(float(e) for e in expected), reason
    )


# --------------------------------------------------------------------------- #
# 6. CUPED
# --------------------------------------------------------------------------- #
def cuped_adjust(metric: Any, covariate: Any) -> CupedResult:
    """CUPED adjustment (Deng, Xu, Kohavi & Walker 2013) of one sample.

    ``theta = cov(Y, X) / var(X)`` (same ddof for both, so it cancels),
    ``adjusted = Y - theta (X - mean(X))`` (same mean as Y), and
    ``variance_reduction = 1 - var(adjusted) / var(Y)``, which equals the
    squared sample correlation ``rho^2`` of Y and X.

    To compare arms, do **not** call this per arm (each arm would get its own
    theta); use :func:`cuped_difference`, which pools theta.

    Degenerate cases: fewer than two values, or a constant covariate ->
    ``theta = 0``, ``adjusted = Y``, ``variance_reduction = 0`` and a reason.
    A constant metric gives ``theta = 0`` and ``variance_reduction = 0``.
    Raises ``ValueError`` for NaN/inf values or different lengths.
    """
    y, x = _array("metric", metric), _array("covariate", covariate)
    if y.size != x.size:
        raise ValueError("metric and covariate must have the same length")
    x_mean = float(x.mean()) if x.size else 0.0
    if y.size < 2:
        return CupedResult(
            0.0, x_mean, 0.0, y.copy(), reason="fewer than two observations: no adjustment"
        )
    xc = x - x_mean
    sxx = float(xc @ xc)
    if sxx == 0.0:
        return CupedResult(
            0.0, x_mean, 0.0, y.copy(), reason="covariate has zero variance: no adjustment"
        )
    theta = float(xc @ (y - y.mean())) / sxx
    adjusted = y - theta * xc
    syy = float(((y - y.mean()) ** 2).sum())
    reduction = (
        0.0
        if syy == 0.0
        else max(0.0, 1.0 - float(((adjusted - adjusted.mean()) ** 2).sum()) / syy)
    )
    return CupedResult(theta, x_mean, reduction, adjusted, reason=None)


def cuped_difference(
    metric_c: Any,
    covariate_c: Any,
    metric_t: Any,
    covariate_t: Any,
    alpha: float = 0.05,
) -> CupedDifferenceResult:
    """CUPED-adjusted difference in means (treatment - control) with Welch inference.

    ``theta`` is pooled across arms using **within-arm** centring,
    ``theta = sum_g sum_i (x_gi - xbar_g)(y_gi - ybar_g) / sum_g sum_i (x_gi - xbar_g)^2``,
    so a treatment effect on Y cannot leak into theta. Both arms are adjusted
    with the same theta around the grand covariate mean,
    ``y_adj = y - theta (x - xbar)``, and :func:`welch_ttest_arrays` is applied
    to the adjusted values. The point estimate
    ``(ybar_t - ybar_c) - theta (xbar_t - xbar_c)`` is exactly the treatment
    coefficient of the OLS regression ``Y ~ 1 + T + X`` (ANCOVA). As usual for
    CUPED, the standard error treats theta as known; the resulting
    under-statement of variance is O(1/n) and negligible at experiment sizes.
    The covariate must be measured before assignment (pre-period), otherwise
    the estimate can be biased.

    ``variance_reduction`` is ``1 - sum of within-arm squared deviations of
    y_adj / the same for y`` (the pooled within-arm ``rho^2``).

    Degenerate cases follow :func:`welch_ttest` (empty arm, n < 2, zero
    variance); a constant covariate gives ``theta = 0`` (plain Welch test).
    Raises ``ValueError`` for NaN/inf or mismatched lengths within an arm.
    """
    a = _alpha(alpha)
    yc, xc = _array("metric_c", metric_c), _array("covariate_c", covariate_c)
    yt, xt = _array("metric_t", metric_t), _array("covariate_t", covariate_t)
    if yc.size != xc.size or yt.size != xt.size:
        raise ValueError("metric and covariate must have the same length within each arm")

    def centred(v: np.ndarray) -> np.ndarray:
        return v - v.mean() if v.size else v

    dxc, dxt, dyc, dyt = centred(xc), centred(xt), centred(yc), centred(yt)
    sxx = float(dxc @ dxc + dxt @ dxt)
    syy = float(dyc @ dyc + dyt @ dyt)
    notes: list[str] = []
    if sxx == 0.0:
        theta = 0.0
        if yc.size + yt.size > 0:
            notes.append("covariate has zero within-arm variance: theta set to 0")
    else:
        theta = float(dxc @ dyc + dxt @ dyt) / sxx
    x_all = np.concatenate([xc, xt])
    x_bar = float(x_all.mean()) if x_all.size else 0.0
    adj_c = yc - theta * (xc - x_bar)
    adj_t = yt - theta * (xt - x_bar)
    if syy == 0.0:
        reduction = 0.0
    else:
        ssr = float(((dyc - theta * dxc) ** 2).sum() + ((dyt - theta * dxt) ** 2).sum())
        reduction = max(0.0, 1.0 - ssr / syy)
    w = welch_ttest_arrays(adj_c, adj_t, alpha=a)
    raw_diff = float(yt.mean() - yc.mean()) if yc.size and yt.size else None
    if w.reason:
        notes.append(w.reason)
    return CupedDifferenceResult(
        theta, raw_diff, w.difference, w.std_error, w.ci_low, w.ci_high, w.t_statistic,
        w.dof, w.p_value, reduction, a, reason="; ".join(notes) or None,
    )  # fmt: skip


# --------------------------------------------------------------------------- #
# 7. Bayesian probability to beat control
# --------------------------------------------------------------------------- #
def _prob_beta_greater(a_t: float, b_t: float, a_c: float, b_c: float) -> float:
    """P(X_t > X_c) for independent X_t ~ Beta(a_t, b_t), X_c ~ Beta(a_c, b_c).

    Deterministic adaptive quadrature of a smooth integrand over the support
    of the *narrower* posterior (tails beyond the 1e-15 quantiles, i.e. at
    most 2e-15 of probability, are dropped):
    ``int f_t(x) F_c(x) dx`` or, equivalently, ``int f_c(x) S_t(x) dx``.
    """
    dist_t, dist_c = stats.beta(a_t, b_t), stats.beta(a_c, b_c)
    eps = 1e-15
    # The integrand is the frozen distributions' pdf x cdf (or sf), called as the functions they
    # end in: quadrature only evaluates inside (0, 1), where their argument checks change
    # nothing, and those checks were nine tenths of the time.
    if dist_t.std() <= dist_c.std():
        narrow, other = dist_t, dist_c

        def integrand(x: float) -> float:
            return float(stats.beta._pdf(x, a_t, b_t) * special.betainc(a_c, b_c, x))
    else:
        narrow, other = dist_c, dist_t

        def integrand(x: float) -> float:
            return float(stats.beta._pdf(x, a_c, b_c) * special.betaincc(a_t, b_t, x))

    lo, hi = float(narrow.ppf(eps)), float(narrow.isf(eps))
    candidates = [narrow.mean(), narrow.median(), other.median(), other.ppf(1e-6), other.isf(1e-6)]
    points = sorted({float(p) for p in candidates if lo < float(p) < hi})
    value, _ = integrate.quad(
        integrand, lo, hi, points=points or None, epsabs=1e-13, epsrel=1e-11, limit=500
    )
    return min(1.0, max(0.0, float(value)))


def prob_beats_control(
    conv_c: int,
    n_c: int,
    conv_t: int,
    n_t: int,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
) -> ProbBeatsControlResult:
    """Posterior probability that the treatment conversion rate exceeds control's.

    Model: independent ``Beta(prior_alpha, prior_beta)`` priors on each rate
    and binomial likelihoods, so the posteriors are
    ``Beta(prior_alpha + conv, prior_beta + n - conv)``. Returns
    ``P(p_t > p_c | data) = int_0^1 f_t(x) F_c(x) dx`` computed by
    deterministic adaptive quadrature (absolute error well below 1e-8; no
    Monte Carlo). Default prior is uniform ``Beta(1, 1)``.

    Degenerate data are well defined: with ``n = 0`` the posterior is the
    prior (so two empty arms give exactly 0.5 under a shared prior; ``reason``
    notes the empty variant), and 0 % / 100 % conversion just gives a
    posterior concentrated near 0 / 1.

    Raises ``ValueError`` for invalid counts or non-positive/non-finite priors.
    """
    c_c, n_c = _conv_n("c", conv_c, n_c)
    c_t, n_t = _conv_n("t", conv_t, n_t)
    pa, pb = _real("prior_alpha", prior_alpha), _real("prior_beta", prior_beta)
    if pa <= 0 or pb <= 0:
        raise ValueError("prior_alpha and prior_beta must be positive")
    a_c, b_c = pa + c_c, pb + n_c - c_c
    a_t, b_t = pa + c_t, pb + n_t - c_t
    if (a_c, b_c) == (a_t, b_t):
        prob = 0.5  # identical posteriors: exact by symmetry
    else:
        prob = _prob_beta_greater(a_t, b_t, a_c, b_c)
    empty = [arm for arm, n in (("control", n_c), ("treatment", n_t)) if n == 0]
    reason = (
        f"{EMPTY_VARIANT}: {' and '.join(empty)} has n=0; its posterior equals the prior"
        if empty
        else None
    )
    return ProbBeatsControlResult(
        prob, a_c, b_c, a_t, b_t, a_c / (a_c + b_c), a_t / (a_t + b_t), reason
    )


def prob_beats_control_normal(
    mean_c: float,
    var_c: float,
    n_c: int,
    mean_t: float,
    var_t: float,
    n_t: int,
    alpha: float = 0.05,
) -> NormalPosteriorResult:
    """Normal-approximation posterior for a difference in means (e.g. revenue per user).

    With a flat prior and the CLT, the posterior of ``delta = mu_t - mu_c`` is
    ``N(mean_t - mean_c, var_c/n_c + var_t/n_t)`` (``var_*`` sample variances).
    Returns ``P(delta > 0) = Phi(diff / se)`` and the central ``1 - alpha``
    credible interval. Only trustworthy for large samples; heavy-tailed
    revenue should be capped/winsorised first.

    Degenerate: empty arm -> ``None`` fields and ``reason="empty variant"``;
    ``n < 2`` in an arm -> probability ``None`` (variance not estimable);
    ``se == 0`` -> probability 0.5 if ``diff == 0`` else 1.0 / 0.0, interval
    collapsed to the point.
    """
    a = _alpha(alpha)
    nc, nt = _count("n_c", n_c), _count("n_t", n_t)
    mc, mt = _real("mean_c", mean_c), _real("mean_t", mean_t)
    vc, vt = _real("var_c", var_c), _real("var_t", var_t)
    if vc < 0 or vt < 0:
        raise ValueError("variances must be non-negative")
    if nc == 0 or nt == 0:
        return NormalPosteriorResult(None, None, None, None, None, a, reason=f"{EMPTY_VARIANT}")
    diff = mt - mc
    if nc < 2 or nt < 2:
        return NormalPosteriorResult(
            diff, None, None, None, None, a,
            reason="fewer than two observations in a variant: variance not estimable",
        )  # fmt: skip
    se = math.sqrt(vc / nc + vt / nt)
    if se == 0.0:
        prob = 0.5 if diff == 0 else (1.0 if diff > 0 else 0.0)
        return NormalPosteriorResult(
            diff, 0.0, prob, diff, diff, a, reason="no variance: posterior is a point mass"
        )
    half = float(stats.norm.isf(a / 2.0)) * se
    return NormalPosteriorResult(
        diff, se, float(stats.norm.cdf(diff / se)), diff - half, diff + half, a
    )
