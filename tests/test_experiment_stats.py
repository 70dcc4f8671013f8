"""Tests for ml.experiment_stats.

Every statistic is checked against an independent implementation (scipy,
statsmodels, a closed form or a seeded simulation) and against published
reference values where those exist.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportions_chisquare,
    proportions_ztest,
)
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from ml.experiment_stats import (
    EMPTY_VARIANT,
    benjamini_hochberg_adjust,
    bernoulli_variance,
    chi_square_conversion,
    cuped_adjust,
    cuped_difference,
    holm_adjust,
    prob_beats_control,
    prob_beats_control_normal,
    relative_lift_ttest,
    sample_ratio_mismatch,
    two_proportion_ztest,
    welch_ttest,
    welch_ttest_arrays,
)


def assert_no_nan(result) -> None:
    """No float field of a result may be NaN or infinite."""
    for key, value in result.to_dict().items():
        if isinstance(value, float):
            assert math.isfinite(value), f"{key}={value}"
        if isinstance(value, tuple):
            assert all(math.isfinite(v) for v in value), f"{key}={value}"


def bernoulli(conv: int, n: int) -> np.ndarray:
    return np.r_[np.ones(conv), np.zeros(n - conv)]


# --------------------------------------------------------------------------- #
# 1. two-proportion z-test
# --------------------------------------------------------------------------- #
ZTEST_CASES = [
    (14, 28, 16, 30),
    (120, 1000, 150, 1000),
    (5000, 100000, 5210, 101000),
    (1, 7, 6, 9),
    (30, 40, 12, 50),
    (0, 20, 3, 25),
    (0, 1, 1, 1),
]


@pytest.mark.parametrize("conv_c,n_c,conv_t,n_t", ZTEST_CASES)
def test_ztest_matches_statsmodels(conv_c, n_c, conv_t, n_t):
    res = two_proportion_ztest(conv_c, n_c, conv_t, n_t)
    z_ref, p_ref = proportions_ztest([conv_t, conv_c], [n_t, n_c])  # pooled by default
    assert res.z_statistic == pytest.approx(z_ref, rel=1e-12)
    assert res.p_value == pytest.approx(p_ref, rel=1e-10)
    assert res.rate_control == pytest.approx(conv_c / n_c)
    assert res.rate_treatment == pytest.approx(conv_t / n_t)
    assert res.difference == pytest.approx(conv_t / n_t - conv_c / n_c)
    lo, hi = confint_proportions_2indep(
        conv_t, n_t, conv_c, n_c, method="wald", compare="diff", alpha=0.05
    )
    assert res.ci_low == pytest.approx(lo, abs=1e-12)
    assert res.ci_high == pytest.approx(hi, abs=1e-12)
    assert_no_nan(res)


def test_ztest_relative_lift_and_alpha():
    res = two_proportion_ztest(100, 1000, 120, 1000, alpha=0.10)
    assert res.relative_lift == pytest.approx(0.2)
    se = math.sqrt(0.1 * 0.9 / 1000 + 0.12 * 0.88 / 1000)
    assert res.ci_high - res.ci_low == pytest.approx(2 * 1.6448536269514722 * se)
    assert res.alpha == 0.10
    assert res.reason is None


def test_ztest_squared_equals_uncorrected_2x2_chi_square():
    z = two_proportion_ztest(120, 1000, 150, 1000).z_statistic
    chi = chi_square_conversion([120, 150], [1000, 1000])
    assert z**2 == pytest.approx(chi.statistic, rel=1e-12)
    assert two_proportion_ztest(120, 1000, 150, 1000).p_value == pytest.approx(chi.p_value)


def test_ztest_zero_conversions_both_arms():
    res = two_proportion_ztest(0, 50, 0, 60)
    assert (res.difference, res.z_statistic, res.p_value) == (0.0, 0.0, 1.0)
    assert (res.ci_low, res.ci_high) == (0.0, 0.0)
    assert res.relative_lift is None  # control rate 0
    assert "no variance" in res.reason
    assert_no_nan(res)


def test_ztest_full_conversion_both_arms():
    res = two_proportion_ztest(40, 40, 7, 7)
    assert (res.difference, res.p_value, res.ci_low, res.ci_high) == (0.0, 1.0, 0.0, 0.0)
    assert res.relative_lift == 0.0
    assert "no variance" in res.reason


@pytest.mark.parametrize("args,empty", [((0, 0, 3, 10), "control"), ((3, 10, 0, 0), "treatment")])
def test_ztest_empty_variant(args, empty):
    res = two_proportion_ztest(*args)
    assert res.p_value is None and res.z_statistic is None and res.difference is None
    assert res.ci_low is None and res.ci_high is None
    assert res.reason.startswith(EMPTY_VARIANT) and empty in res.reason
    assert_no_nan(res)


def test_ztest_both_empty():
    res = two_proportion_ztest(0, 0, 0, 0)
    assert res.rate_control is None and res.rate_treatment is None and res.p_value is None
    assert "control and treatment" in res.reason


def test_ztest_one_person_per_arm():
    res = two_proportion_ztest(0, 1, 1, 1)
    # pooled p = 0.5, se = sqrt(0.25 * 2), z = sqrt(2)
    assert res.z_statistic == pytest.approx(math.sqrt(2))
    assert res.p_value == pytest.approx(2 * stats.norm.sf(math.sqrt(2)))
    assert (res.ci_low, res.ci_high) == (1.0, 1.0)  # Wald se is 0
    assert "Wald CI has zero width" in res.reason
    same = two_proportion_ztest(1, 1, 1, 1)
    assert same.p_value == 1.0


@pytest.mark.parametrize(
    "args",
    [(-1, 10, 1, 10), (11, 10, 1, 10), (1, 10, 1.5, 10), (1, 10, 1, -2), (1, 10, 1, 10, 0.0),
     (1, 10, 1, 10, 1.0), (1, 10, float("nan"), 10), (True, 10, 1, 10), ("1", 10, 1, 10)],
)  # fmt: skip
def test_ztest_invalid_input_raises(args):
    with pytest.raises(ValueError):
        two_proportion_ztest(*args)


def test_ztest_accepts_numpy_and_integral_floats():
    a = two_proportion_ztest(np.int64(10), np.int32(100), 12.0, 100.0)
    b = two_proportion_ztest(10, 100, 12, 100)
    assert a == b


# --------------------------------------------------------------------------- #
# 2. k x 2 chi-square
# --------------------------------------------------------------------------- #
def test_chi_square_reference_from_issue():
    res = chi_square_conversion([73, 90, 114, 75], [86, 93, 136, 82])
    assert res.statistic == pytest.approx(11.1194, abs=5e-5)
    assert res.p_value == pytest.approx(0.0110975, abs=5e-8)
    assert res.dof == 3
    assert res.reason is None


def test_chi_square_r_prop_test_smokers():
    # R: prop.test(smokers, patients) -> X-squared = 12.6, df = 3, p-value = 0.005585
    res = chi_square_conversion([83, 90, 129, 70], [86, 93, 136, 82])
    assert res.statistic == pytest.approx(12.6, abs=5e-4)
    assert res.p_value == pytest.approx(0.005585, abs=5e-7)
    assert res.dof == 3


@pytest.mark.parametrize(
    "conv,tot",
    [
        ([73, 90, 114, 75], [86, 93, 136, 82]),
        ([83, 90, 129, 70], [86, 93, 136, 82]),
        ([120, 150], [1000, 1000]),
        ([3, 1, 5], [10, 12, 11]),
        ([500, 520, 480, 530, 505], [10**4] * 5),
    ],
)
def test_chi_square_matches_statsmodels_and_scipy(conv, tot):
    res = chi_square_conversion(conv, tot)
    chi_sm, p_sm, _ = proportions_chisquare(conv, tot)
    table = np.column_stack([conv, np.subtract(tot, conv)])
    chi_sp, p_sp, dof_sp, _ = stats.chi2_contingency(table, correction=False)
    assert res.statistic == pytest.approx(chi_sm, rel=1e-12)
    assert res.p_value == pytest.approx(p_sm, rel=1e-10)
    assert res.statistic == pytest.approx(chi_sp, rel=1e-12)
    assert res.p_value == pytest.approx(p_sp, rel=1e-10)
    assert res.dof == dof_sp


def test_chi_square_is_without_continuity_correction():
    # For 2x2 tables Yates' correction changes the result; we match correction=False.
    conv, tot = [12, 25], [100, 100]
    table = np.column_stack([conv, np.subtract(tot, conv)])
    res = chi_square_conversion(conv, tot)
    corrected = stats.chi2_contingency(table, correction=True)[0]
    uncorrected = stats.chi2_contingency(table, correction=False)[0]
    assert corrected < uncorrected - 0.5
    assert res.statistic == pytest.approx(uncorrected)
    # For k >= 3 the correction does not exist (R and scipy ignore it), so the
    # reference 11.1194 is the same with and without "correction".
    table4 = np.column_stack([[73, 90, 114, 75], np.subtract([86, 93, 136, 82], [73, 90, 114, 75])])
    assert stats.chi2_contingency(table4, correction=True)[0] == pytest.approx(11.1194, abs=5e-5)


def test_chi_square_degenerate():
    zero = chi_square_conversion([0, 0, 0], [10, 20, 30])
    assert (zero.statistic, zero.dof, zero.p_value) == (0.0, 2, 1.0)
    full = chi_square_conversion([10, 20], [10, 20])
    assert (full.statistic, full.p_value) == (0.0, 1.0)
    assert "no variance" in full.reason

    with_empty = chi_square_conversion([73, 0, 90], [86, 0, 93])
    ref = chi_square_conversion([73, 90], [86, 93])
    assert with_empty.statistic == pytest.approx(ref.statistic)
    assert with_empty.dof == 1 and with_empty.n_variants_used == 2
    assert with_empty.reason.startswith(EMPTY_VARIANT) and "[1]" in with_empty.reason

    lonely = chi_square_conversion([5, 0], [10, 0])
    assert lonely.statistic is None and lonely.p_value is None and lonely.dof is None
    assert lonely.reason.startswith(EMPTY_VARIANT)

    tiny = chi_square_conversion([0, 1], [1, 1])  # one person per arm
    assert tiny.statistic == pytest.approx(2.0)
    assert "below 5" in tiny.reason
    for r in (zero, full, with_empty, lonely, tiny):
        assert_no_nan(r)


@pytest.mark.parametrize(
    "conv,tot", [([1, 2], [10]), ([1], [10]), ([-1, 2], [10, 10]), ([11, 2], [10, 10])]
)
def test_chi_square_invalid_input(conv, tot):
    with pytest.raises(ValueError):
        chi_square_conversion(conv, tot)


# --------------------------------------------------------------------------- #
# 3. Welch t-test
# --------------------------------------------------------------------------- #
def test_welch_growthbook_absolute_reference():
    # gbstats TwoSidedTTest (absolute version): diff 0.29, CI [0.04538, 0.53462], p 0.02016
    res = welch_ttest(0.41, 3.9**2, 3407, 0.70, 6.2**2, 3461)
    assert res.difference == pytest.approx(0.29)
    assert res.ci_low == pytest.approx(0.04538, abs=5e-6)
    assert res.ci_high == pytest.approx(0.53462, abs=5e-6)
    assert res.p_value == pytest.approx(0.02016, abs=5e-6)


def test_relative_lift_growthbook_references():
    # GrowthBook conversion reference 14/28 vs 16/30 -> p = 0.80707. It is the
    # *relative* lift test with the *population* variance p(1-p).
    pop = relative_lift_ttest(
        14 / 28, bernoulli_variance(14, 28, ddof=0), 28,
        16 / 30, bernoulli_variance(16, 30, ddof=0), 30,
    )  # fmt: skip
    assert pop.p_value == pytest.approx(0.80707, abs=5e-6)
    assert pop.relative_lift == pytest.approx(1 / 15)
    # ... the sample variance n/(n-1) does not reproduce it:
    samp = relative_lift_ttest(
        14 / 28, bernoulli_variance(14, 28, ddof=1), 28,
        16 / 30, bernoulli_variance(16, 30, ddof=1), 30,
    )  # fmt: skip
    assert samp.p_value == pytest.approx(0.81038, abs=5e-6)
    # ... nor does the absolute-difference Welch test with either variance:
    abs_samp = welch_ttest(
        14 / 28, bernoulli_variance(14, 28), 28, 16 / 30, bernoulli_variance(16, 30), 30
    )
    abs_pop = welch_ttest(
        14 / 28, bernoulli_variance(14, 28, 0), 28, 16 / 30, bernoulli_variance(16, 30, 0), 30
    )
    assert abs_samp.p_value == pytest.approx(0.80385, abs=5e-6)
    assert abs_pop.p_value == pytest.approx(0.80045, abs=5e-6)
    for wrong in (samp.p_value, abs_samp.p_value, abs_pop.p_value):
        assert abs(wrong - 0.80707) > 5e-4

    # gbstats TwoSidedTTest relative reference: 0.70732, CI [-0.03526, 1.44989], p 0.06191
    rel = relative_lift_ttest(0.41, 3.9**2, 3407, 0.70, 6.2**2, 3461)
    assert rel.relative_lift == pytest.approx(0.70732, abs=5e-6)
    assert rel.ci_low == pytest.approx(-0.03526, abs=5e-6)
    assert rel.ci_high == pytest.approx(1.44989, abs=5e-6)
    assert rel.p_value == pytest.approx(0.06191, abs=5e-6)
    assert rel.std_error == pytest.approx(0.37879, abs=5e-6)


def test_welch_on_bernoulli_sample_variance_equals_welch_on_raw_01_data():
    res = welch_ttest(
        14 / 28, bernoulli_variance(14, 28), 28, 16 / 30, bernoulli_variance(16, 30), 30
    )
    ref = stats.ttest_ind(bernoulli(16, 30), bernoulli(14, 28), equal_var=False)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.dof == pytest.approx(ref.df, rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_welch_arrays_match_scipy_and_statsmodels(seed):
    rng = np.random.default_rng(seed)
    c = rng.lognormal(1.0, 1.0, size=40 + 10 * seed)
    t = rng.lognormal(1.2, 0.6, size=55)
    res = welch_ttest_arrays(c, t, alpha=0.1)
    ref = stats.ttest_ind(t, c, equal_var=False)
    ci = ref.confidence_interval(confidence_level=0.9)
    assert res.t_statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.dof == pytest.approx(ref.df, rel=1e-10)
    assert res.ci_low == pytest.approx(ci.low, rel=1e-9)
    assert res.ci_high == pytest.approx(ci.high, rel=1e-9)
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    lo, hi = cm.tconfint_diff(alpha=0.1, usevar="unequal")
    assert (res.ci_low, res.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    summ = welch_ttest(c.mean(), c.var(ddof=1), c.size, t.mean(), t.var(ddof=1), t.size, 0.1)
    assert summ.p_value == pytest.approx(res.p_value, rel=1e-12)
    from_stats = stats.ttest_ind_from_stats(
        t.mean(), t.std(ddof=1), t.size, c.mean(), c.std(ddof=1), c.size, equal_var=False
    )
    assert summ.p_value == pytest.approx(from_stats.pvalue, rel=1e-10)


@pytest.mark.filterwarnings(
    "ignore:Precision loss occurred:RuntimeWarning"
)  # scipy on constant data
def test_welch_degenerate_cases():
    empty = welch_ttest_arrays([], [1.0, 2.0])
    assert empty.p_value is None and empty.difference is None and empty.mean_control is None
    assert empty.mean_treatment == 1.5
    assert empty.reason.startswith(EMPTY_VARIANT)

    one = welch_ttest_arrays([3.0], [1.0, 2.0, 4.0])
    assert one.p_value is None and one.difference == pytest.approx(-2 / 3)
    assert "fewer than two" in one.reason

    same = welch_ttest_arrays([2.0, 2.0, 2.0], [2.0, 2.0])
    assert (same.p_value, same.t_statistic, same.ci_low, same.ci_high) == (1.0, 0.0, 0.0, 0.0)
    assert same.dof is None

    differ = welch_ttest_arrays([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert differ.p_value == 0.0 == stats.ttest_ind([1, 1, 1], [0, 0, 0], equal_var=False).pvalue
    assert (differ.ci_low, differ.ci_high) == (1.0, 1.0) and differ.t_statistic is None

    half = welch_ttest_arrays([5.0, 5.0, 5.0, 5.0], [4.0, 6.0, 7.0])  # one constant arm is fine
    ref = stats.ttest_ind([4.0, 6.0, 7.0], [5.0] * 4, equal_var=False)
    assert half.p_value == pytest.approx(ref.pvalue) and half.reason is None

    for r in (empty, one, same, differ, half):
        assert_no_nan(r)

    with pytest.raises(ValueError):
        welch_ttest_arrays([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError):
        welch_ttest(0.0, -1.0, 10, 0.0, 1.0, 10)
    with pytest.raises(ValueError):
        welch_ttest(0.0, 1.0, 10.5, 0.0, 1.0, 10)


def test_relative_lift_degenerate_cases():
    zero_c = relative_lift_ttest(0.0, 0.0, 10, 0.1, 0.09, 10)
    assert zero_c.relative_lift is None and zero_c.p_value is None
    assert "control mean is 0" in zero_c.reason
    empty = relative_lift_ttest(0.5, 0.25, 0, 0.1, 0.09, 10)
    assert empty.p_value is None and empty.reason.startswith(EMPTY_VARIANT)
    one = relative_lift_ttest(1.0, 0.0, 1, 0.0, 0.0, 1)
    assert one.relative_lift == -1.0 and one.p_value is None
    full = relative_lift_ttest(1.0, 0.0, 40, 1.0, 0.0, 7)  # 100% conversion in both
    assert (full.relative_lift, full.p_value, full.ci_low, full.ci_high) == (0.0, 1.0, 0.0, 0.0)
    for r in (zero_c, empty, one, full):
        assert_no_nan(r)


def test_bernoulli_variance():
    x = bernoulli(7, 20)
    assert bernoulli_variance(7, 20, ddof=1) == pytest.approx(x.var(ddof=1))
    assert bernoulli_variance(7, 20, ddof=0) == pytest.approx(x.var(ddof=0))
    assert bernoulli_variance(1, 1, ddof=1) == 0.0
    assert bernoulli_variance(0, 0, ddof=0) == 0.0
    with pytest.raises(ValueError):
        bernoulli_variance(3, 2)


# --------------------------------------------------------------------------- #
# 4. Holm and Benjamini-Hochberg
# --------------------------------------------------------------------------- #
def test_holm_hand_worked():
    # sorted: 0.005 (x4=0.02), 0.01 (x3=0.03), 0.03 (x2=0.06), 0.04 (x1=0.04 -> cummax 0.06)
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm_adjust([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_bh_hand_worked():
    # sorted: 0.005*4/1=0.02, 0.01*4/2=0.02, 0.03*4/3=0.04, 0.04*4/4=0.04
    assert benjamini_hochberg_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx(
        [0.02, 0.04, 0.04, 0.02]
    )
    # step-up: a later small ratio pulls earlier ones down
    assert benjamini_hochberg_adjust([0.02, 0.021]) == pytest.approx([0.021, 0.021])


@pytest.mark.parametrize("seed", range(5))
def test_adjustments_match_statsmodels(seed):
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.05, 4), rng.uniform(0, 1, 11), [0.2, 0.2, 1.0, 0.0]])
    rng.shuffle(p)
    for ours, method in ((holm_adjust, "holm"), (benjamini_hochberg_adjust, "fdr_bh")):
        adj = np.array(ours(p))
        ref = multipletests(p, method=method)[1]
        np.testing.assert_allclose(adj, ref, rtol=1e-12, atol=1e-15)
        order = np.argsort(p)
        assert np.all(np.diff(adj[order]) >= -1e-15)  # monotone in the raw p-values
        assert np.all(adj <= 1.0) and np.all(adj >= p - 1e-15)


def test_adjustments_missing_values():
    p = [0.01, None, 0.04, float("nan"), 0.03]
    present = [0.01, 0.04, 0.03]
    holm = holm_adjust(p)
    bh = benjamini_hochberg_adjust(np.array([0.01, np.nan, 0.04, np.nan, 0.03]))
    assert holm[1] is None and holm[3] is None
    assert bh[1] is None and bh[3] is None
    assert [holm[i] for i in (0, 2, 4)] == pytest.approx(multipletests(present, method="holm")[1])
    assert [bh[i] for i in (0, 2, 4)] == pytest.approx(multipletests(present, method="fdr_bh")[1])
    assert holm_adjust([]) == [] and benjamini_hochberg_adjust([None]) == [None]
    for bad in ([0.1, 1.2], [-0.1], ["0.1"], [float("inf")]):
        with pytest.raises(ValueError):
            holm_adjust(bad)
        with pytest.raises(ValueError):
            benjamini_hochberg_adjust(bad)


# --------------------------------------------------------------------------- #
# 5. Sample ratio mismatch
# --------------------------------------------------------------------------- #
def test_srm_matches_scipy_and_flags():
    # Kohavi et al.'s classic SRM example: 821,588 vs 815,482 at a planned 50/50.
    res = sample_ratio_mismatch([821588, 815482], [0.5, 0.5])
    ref = stats.chisquare([821588, 815482])
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.p_value == pytest.approx(1.8218e-6, rel=1e-4)
    assert res.srm_detected is True and res.dof == 1

    ok = sample_ratio_mismatch([50000, 50400], [1, 1])
    assert ok.srm_detected is False and ok.p_value > 0.001

    obs, shares = [2010, 4950, 3040], [0.2, 0.5, 0.3]
    three = sample_ratio_mismatch(obs, [20, 50, 30])  # weights are normalised
    ref3 = stats.chisquare(obs, f_exp=np.array(shares) * sum(obs))
    assert three.statistic == pytest.approx(ref3.statistic, rel=1e-12)
    assert three.p_value == pytest.approx(ref3.pvalue, rel=1e-10)
    assert three.expected_counts == pytest.approx((2000.0, 5000.0, 3000.0))


def test_srm_threshold_boundary():
    res = sample_ratio_mismatch([1000, 1150], [0.5, 0.5])
    assert 0.001 < res.p_value < 0.01
    assert res.srm_detected is False
    assert sample_ratio_mismatch([1000, 1150], [0.5, 0.5], threshold=0.01).srm_detected is True


def test_srm_degenerate_and_invalid():
    none = sample_ratio_mismatch([0, 0], [0.5, 0.5])
    assert none.p_value is None and none.statistic is None and none.srm_detected is False
    assert none.reason.startswith(EMPTY_VARIANT)
    assert_no_nan(none)
    gone = sample_ratio_mismatch([0, 1000], [0.5, 0.5])  # a variant lost all traffic
    assert gone.srm_detected is True and gone.statistic == pytest.approx(1000.0)
    small = sample_ratio_mismatch([1, 0], [0.5, 0.5])
    assert small.p_value == pytest.approx(stats.chisquare([1, 0]).pvalue)
    assert "below 5" in small.reason
    for obs, sh in (([1, 2], [0.5]), ([1], [1.0]), ([1, -2], [1, 1]), ([1, 2], [0, 1]),
                    ([1, 2], [float("nan"), 1])):  # fmt: skip
        with pytest.raises(ValueError):
            sample_ratio_mismatch(obs, sh)


# --------------------------------------------------------------------------- #
# 6. CUPED
# --------------------------------------------------------------------------- #
def correlated(rng, n, rho, effect=0.0):
    x = rng.normal(10.0, 2.0, n)
    noise = rng.normal(0.0, 2.0, n)
    y = 5.0 + effect + rho * (x - 10.0) + math.sqrt(1 - rho**2) * noise
    return y, x


def test_cuped_adjust_variance_reduction_is_rho_squared():
    rng = np.random.default_rng(42)
    y, x = correlated(rng, 20000, rho=0.7)
    res = cuped_adjust(y, x)
    r = np.corrcoef(y, x)[0, 1]
    assert res.variance_reduction == pytest.approx(r**2, rel=1e-10)  # exact in sample
    assert res.variance_reduction == pytest.approx(0.49, abs=0.02)  # population rho^2
    assert res.theta == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-10)  # OLS slope
    assert res.adjusted.mean() == pytest.approx(y.mean())
    assert res.adjusted.var() == pytest.approx(y.var() * (1 - r**2), rel=1e-10)
    assert res.covariate_mean == pytest.approx(x.mean())
    assert "adjusted" not in res.to_dict()


def test_cuped_difference_matches_ancova_and_covers_true_effect():
    rng = np.random.default_rng(7)
    effect = 0.3
    yc, xc = correlated(rng, 3000, rho=0.8)
    yt, xt = correlated(rng, 3200, rho=0.8, effect=effect)
    res = cuped_difference(yc, xc, yt, xt)
    # point estimate == treatment coefficient of OLS  Y ~ 1 + T + X
    design = np.column_stack([np.ones(6200), np.r_[np.zeros(3000), np.ones(3200)], np.r_[xc, xt]])
    ols = sm.OLS(np.r_[yc, yt], design).fit()
    assert res.difference == pytest.approx(ols.params[1], rel=1e-10)
    assert res.theta == pytest.approx(ols.params[2], rel=1e-10)
    assert res.std_error == pytest.approx(ols.bse[1], rel=0.02)
    assert res.ci_low < effect < res.ci_high
    plain = welch_ttest_arrays(yc, yt)
    assert res.std_error < 0.7 * plain.std_error  # sqrt(1 - 0.64) = 0.6
    assert res.variance_reduction == pytest.approx(0.64, abs=0.03)
    assert res.difference_unadjusted == pytest.approx(plain.difference)
    assert res.p_value < 1e-6
    assert_no_nan(res)


def test_cuped_difference_unbiased_with_nominal_coverage():
    rng = np.random.default_rng(2024)
    effect, reps = 0.5, 400
    estimates, covered = [], 0
    for _ in range(reps):
        yc, xc = correlated(rng, 200, rho=0.6)
        yt, xt = correlated(rng, 200, rho=0.6, effect=effect)
        r = cuped_difference(yc, xc, yt, xt)
        estimates.append(r.difference)
        covered += r.ci_low <= effect <= r.ci_high
    # Monte Carlo se of the mean estimate ~ 0.16 / sqrt(400) = 0.008
    assert np.mean(estimates) == pytest.approx(effect, abs=0.03)
    assert 0.92 <= covered / reps <= 0.98


def test_cuped_theta_is_not_contaminated_by_treatment_effect():
    # Covariate imbalance + a big treatment effect: within-arm theta stays at the true slope.
    rng = np.random.default_rng(3)
    xc, xt = rng.normal(0, 1, 500), rng.normal(0.5, 1, 500)
    yc = 2.0 * xc + rng.normal(0, 0.1, 500)
    yt = 10.0 + 2.0 * xt + rng.normal(0, 0.1, 500)
    res = cuped_difference(yc, xc, yt, xt)
    assert res.theta == pytest.approx(2.0, abs=0.02)
    assert res.ci_low < 10.0 < res.ci_high


def test_cuped_degenerate_cases():
    const = cuped_adjust([1.0, 2.0, 3.0], [5.0, 5.0, 5.0])
    assert const.theta == 0.0 and const.variance_reduction == 0.0
    np.testing.assert_array_equal(const.adjusted, [1.0, 2.0, 3.0])
    assert "zero variance" in const.reason
    flat_y = cuped_adjust([4.0, 4.0, 4.0], [1.0, 2.0, 3.0])
    assert flat_y.theta == 0.0 and flat_y.variance_reduction == 0.0
    single = cuped_adjust([1.0], [2.0])
    assert single.theta == 0.0 and "fewer than two" in single.reason
    empty = cuped_adjust([], [])
    assert empty.adjusted.size == 0 and empty.theta == 0.0

    no_arm = cuped_difference([], [], [1.0, 2.0], [1.0, 3.0])
    assert no_arm.p_value is None and EMPTY_VARIANT in no_arm.reason
    one_each = cuped_difference([1.0], [2.0], [3.0], [4.0])
    assert one_each.p_value is None and "fewer than two" in one_each.reason
    same = cuped_difference([1.0, 1.0], [0.0, 1.0], [1.0, 1.0], [3.0, 2.0])
    assert same.p_value == 1.0 and (same.ci_low, same.ci_high) == (0.0, 0.0)
    for r in (const, flat_y, single, empty, no_arm, one_each, same):
        assert_no_nan(r)
    with pytest.raises(ValueError):
        cuped_adjust([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        cuped_difference([1.0, np.nan], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0])


# --------------------------------------------------------------------------- #
# 7. Probability to beat control
# --------------------------------------------------------------------------- #
def exact_prob_b_beats_a(a_a, b_a, a_b, b_b) -> float:
    """Closed form for integer a_b (Evan Miller): P(p_B > p_A)."""
    i = np.arange(int(a_b))
    terms = (
        special.betaln(a_a + i, b_a + b_b)
        - np.log(b_b + i)
        - special.betaln(1 + i, b_b)
        - special.betaln(a_a, b_a)
    )
    return float(np.exp(terms).sum())


@pytest.mark.parametrize(
    "conv_c,n_c,conv_t,n_t",
    [(14, 28, 16, 30), (100, 1000, 120, 1000), (1000, 10000, 1050, 10000), (0, 10, 2, 10),
     (9, 10, 3, 10), (50, 100000, 80, 100000), (3, 5, 300, 500)],
)  # fmt: skip
def test_prob_beats_control_matches_closed_form(conv_c, n_c, conv_t, n_t):
    res = prob_beats_control(conv_c, n_c, conv_t, n_t)
    exact = exact_prob_b_beats_a(1 + conv_c, 1 + n_c - conv_c, 1 + conv_t, 1 + n_t - conv_t)
    assert res.prob_beats_control == pytest.approx(exact, abs=1e-9)
    reverse = prob_beats_control(conv_t, n_t, conv_c, n_c)
    assert res.prob_beats_control + reverse.prob_beats_control == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "args,prior",
    [((14, 28, 16, 30), (1, 1)), ((100, 1000, 120, 1000), (1, 1)), ((3, 40, 1, 35), (0.5, 0.5)),
     ((200, 5000, 230, 5100), (2.5, 40.0))],
)  # fmt: skip
def test_prob_beats_control_matches_monte_carlo(args, prior):
    conv_c, n_c, conv_t, n_t = args
    a, b = prior
    rng = np.random.default_rng(12345)
    draws = 1_000_000
    pc = rng.beta(a + conv_c, b + n_c - conv_c, draws)
    pt = rng.beta(a + conv_t, b + n_t - conv_t, draws)
    mc = float(np.mean(pt > pc))
    res = prob_beats_control(conv_c, n_c, conv_t, n_t, prior_alpha=a, prior_beta=b)
    assert res.prob_beats_control == pytest.approx(mc, abs=0.005)
    assert res.alpha_treatment == a + conv_t and res.beta_control == b + n_c - conv_c


def test_prob_beats_control_symmetric_and_degenerate():
    assert prob_beats_control(50, 500, 50, 500).prob_beats_control == 0.5
    for args in ((0, 40, 0, 40), (40, 40, 40, 40), (0, 1, 0, 1)):
        res = prob_beats_control(*args)
        assert res.prob_beats_control == 0.5 and res.reason is None
    both_empty = prob_beats_control(0, 0, 0, 0)
    assert both_empty.prob_beats_control == 0.5
    assert both_empty.reason.startswith(EMPTY_VARIANT)
    # zero conversions in both arms with different n: more evidence of a low rate in control
    zeros = prob_beats_control(0, 100, 0, 10)
    exact = exact_prob_b_beats_a(1, 101, 1, 11)
    assert zeros.prob_beats_control == pytest.approx(exact, abs=1e-9)
    assert zeros.prob_beats_control > 0.5
    one_empty = prob_beats_control(0, 0, 30, 100)  # control posterior = uniform prior
    assert one_empty.prob_beats_control == pytest.approx(exact_prob_b_beats_a(1, 1, 31, 71))
    assert "control" in one_empty.reason
    full = prob_beats_control(10, 10, 9, 10)
    assert full.prob_beats_control == pytest.approx(exact_prob_b_beats_a(11, 1, 10, 2), abs=1e-9)
    huge = prob_beats_control(1000, 100000, 2000, 100000)
    assert huge.prob_beats_control == pytest.approx(1.0, abs=1e-12)
    for r in (both_empty, zeros, one_empty, full, huge):
        assert_no_nan(r)
    for bad in ((1, 10, 1, 10, 0, 1), (1, 10, 1, 10, 1, -1), (5, 4, 1, 10), (-1, 4, 1, 10)):
        with pytest.raises(ValueError):
            prob_beats_control(*bad)


def test_prob_beats_control_normal():
    res = prob_beats_control_normal(10.0, 25.0, 1000, 10.5, 30.0, 1100)
    se = math.sqrt(25 / 1000 + 30 / 1100)
    assert res.std_error == pytest.approx(se)
    assert res.prob_beats_control == pytest.approx(stats.norm.cdf(0.5 / se))
    assert (res.ci_low, res.ci_high) == pytest.approx((0.5 - 1.959964 * se, 0.5 + 1.959964 * se))
    # agrees with the exact Beta-Binomial answer at large n
    beta = prob_beats_control(1000, 10000, 1060, 10000).prob_beats_control
    normal = prob_beats_control_normal(
        0.1, bernoulli_variance(1000, 10000), 10000, 0.106, bernoulli_variance(1060, 10000), 10000
    ).prob_beats_control
    assert normal == pytest.approx(beta, abs=0.005)
    empty = prob_beats_control_normal(1.0, 1.0, 0, 1.0, 1.0, 10)
    assert empty.prob_beats_control is None and empty.reason == EMPTY_VARIANT
    flat = prob_beats_control_normal(1.0, 0.0, 10, 1.0, 0.0, 10)
    assert flat.prob_beats_control == 0.5
    one = prob_beats_control_normal(1.0, 0.0, 1, 2.0, 1.0, 10)
    assert one.prob_beats_control is None and "fewer than two" in one.reason
    for r in (res, empty, flat, one):
        assert_no_nan(r)
