"""ml/experiment_analysis.py on hand-built person-level frames, with the answers worked by hand
(closed-form formulas written out here, independent of ml/experiment_stats.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.experiment_analysis import (
    HEALTH_COLUMNS,
    RESULT_COLUMNS,
    SEGMENT_COLUMNS,
    MetricSpec,
    analyze_by_segment,
    analyze_experiment,
    experiment_health,
    guardrail_alerts,
    pick_winner,
)

Z975 = 1.959963984540054


def phi_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def persons(variant: str, values: list[float], metric: str = "activated", **extra) -> list[dict]:
    return [
        {
            "person_id": f"{variant}-{metric}-{i}",
            "metric_name": metric,
            "variant": variant,
            "value": float(v),
            "is_complete": True,
            "has_multiple_variants": False,
            **extra,
        }
        for i, v in enumerate(values)
    ]


def row(frame: pd.DataFrame, variant: str, metric: str = "activated") -> pd.Series:
    found = frame[(frame["variant"] == variant) & (frame["metric_name"] == metric)]
    assert len(found) == 1
    return found.iloc[0]


def no_nan(frame: pd.DataFrame) -> bool:
    return not any(isinstance(v, float) and math.isnan(v) for v in frame.to_numpy().ravel())


@pytest.fixture
def conversion_outcomes() -> pd.DataFrame:
    """control 2/10, treatment 5/10, one_person 1/1, empty (planned, nobody), a person in two
    variants (converted: must not count) and a treatment person whose window is still open."""
    rows = (
        persons("control", [1, 1] + [0] * 8)
        + persons("treatment", [1] * 5 + [0] * 5)
        + persons("one_person", [1])
    )
    rows.append({**persons("control", [1])[0], "person_id": "both", "has_multiple_variants": True})
    rows.append({**persons("treatment", [1])[0], "person_id": "late", "is_complete": False})
    return pd.DataFrame(rows)


VARIANTS = ["control", "treatment", "empty", "one_person"]
ACTIVATED = [MetricSpec("activated", "conversion")]


def test_conversion_against_hand_worked_z_test_wald_ci_and_holm(conversion_outcomes):
    results = analyze_experiment(
        conversion_outcomes,
        experiment="e",
        control="control",
        metrics=ACTIVATED,
        variants=VARIANTS,
    )
    assert list(results.columns) == RESULT_COLUMNS
    assert no_nan(results)

    control = row(results, "control")
    assert (control["persons"], control["conversions"], control["mean"]) == (10, 2, 0.2)
    assert control["absolute_lift"] is None and control["note"] == "control"

    treated = row(results, "treatment")
    assert (treated["persons"], treated["persons_window_open"], treated["conversions"]) == (
        10,
        1,
        5,
    )
    # pooled p = 7/20; z = 0.3 / sqrt(p (1-p) (1/10 + 1/10))
    z = 0.3 / math.sqrt(0.35 * 0.65 * 0.2)
    p_treatment = 2 * phi_sf(z)
    half = Z975 * math.sqrt(0.2 * 0.8 / 10 + 0.5 * 0.5 / 10)
    assert treated["absolute_lift"] == pytest.approx(0.3)
    assert treated["relative_lift"] == pytest.approx(1.5)
    assert treated["p_value"] == pytest.approx(p_treatment, rel=1e-9)
    assert (treated["ci_low"], treated["ci_high"]) == pytest.approx((0.3 - half, 0.3 + half))

    one = row(results, "one_person")
    # 1/1 against 2/10: pooled 3/11
    z_one = 0.8 / math.sqrt(3 / 11 * 8 / 11 * (1 / 10 + 1))
    p_one = 2 * phi_sf(z_one)
    assert one["p_value"] == pytest.approx(p_one, rel=1e-9)
    # Holm over the two present p-values (the empty variant has none): the smaller is doubled,
    # the larger is max(that, itself x 1).
    smaller, larger = sorted([p_one, p_treatment])
    assert min(one["p_value_adjusted"], treated["p_value_adjusted"]) == pytest.approx(2 * smaller)
    assert max(one["p_value_adjusted"], treated["p_value_adjusted"]) == pytest.approx(
        max(2 * smaller, larger)
    )
    assert not treated["is_significant"] and not one["is_significant"]

    empty = row(results, "empty")
    assert empty["persons"] == 0 and empty["mean"] is None
    assert empty["p_value"] is None and empty["p_value_adjusted"] is None
    assert empty["prob_beats_control"] is None
    assert not empty["is_significant"]
    assert empty["note"].startswith("empty variant")

    # Beta(1+conv, 1+n-conv) posteriors: P(treatment > control) by numerical integration.
    grid = np.linspace(0, 1, 200_001)
    cdf_c = stats.beta(3, 9).cdf(grid)
    prob = np.trapezoid(stats.beta(6, 6).pdf(grid) * cdf_c, grid)
    assert treated["prob_beats_control"] == pytest.approx(prob, abs=1e-6)


def test_zero_conversions_everywhere_gives_no_evidence_and_no_nan():
    outcomes = pd.DataFrame(persons("control", [0] * 5) + persons("b", [0] * 5))
    results = analyze_experiment(outcomes, experiment="e", control="control", metrics=ACTIVATED)
    b = row(results, "b")
    assert (b["absolute_lift"], b["p_value"], b["ci_low"], b["ci_high"]) == (0.0, 1.0, 0.0, 0.0)
    assert b["relative_lift"] is None and "relative lift undefined" in b["note"]
    assert b["prob_beats_control"] == 0.5
    assert b["p_value_adjusted"] == 1.0 and not b["is_significant"]
    assert no_nan(results)


def test_revenue_is_welch_and_one_person_arms_give_a_reason_not_a_crash():
    outcomes = pd.DataFrame(
        persons("control", [0, 10, 20], "revenue")
        + persons("b", [10, 20, 30], "revenue")
        + persons("c", [50], "revenue")
    )
    results = analyze_experiment(
        outcomes, experiment="e", control="control", metrics=[MetricSpec("revenue", "revenue")]
    )
    b = row(results, "b", "revenue")
    # means 10 and 20, sample variances 100 and 100: se = sqrt(100/3 + 100/3), dof = 4.
    se = math.sqrt(200 / 3)
    assert b["absolute_lift"] == pytest.approx(10.0)
    assert b["relative_lift"] == pytest.approx(1.0)
    assert b["p_value"] == pytest.approx(2 * stats.t.sf(10 / se, 4))
    half = stats.t.isf(0.025, 4) * se
    assert (b["ci_low"], b["ci_high"]) == pytest.approx((10 - half, 10 + half))
    assert b["prob_beats_control"] == pytest.approx(stats.norm.cdf(10 / se))
    assert b["conversions"] is None and b["std_dev"] == pytest.approx(10.0)
    c = row(results, "c", "revenue")
    assert c["p_value"] is None and c["ci_low"] is None and "fewer than two" in c["note"]
    assert c["absolute_lift"] == pytest.approx(40.0)
    assert no_nan(results)


def test_cuped_is_reported_beside_the_plain_estimate():
    rng = np.random.default_rng(7)
    covariate = rng.poisson(3, 400).astype(float)
    value = covariate * 2 + rng.normal(0, 1, 400)
    value[200:] += 0.5
    outcomes = pd.DataFrame(
        persons("control", value[:200], "spend", pre_exposure_events=None)
        + persons("b", value[200:], "spend")
    )
    outcomes["pre_exposure_events"] = covariate
    results = analyze_experiment(
        outcomes, experiment="e", control="control", metrics=[MetricSpec("spend", "revenue")]
    )
    b = row(results, "b", "spend")
    # ANCOVA: the CUPED estimate is the treatment coefficient of value ~ 1 + T + covariate.
    design = np.column_stack([np.ones(400), np.r_[np.zeros(200), np.ones(200)], covariate])
    coefficient = np.linalg.lstsq(design, value, rcond=None)[0][1]
    assert b["cuped_absolute_lift"] == pytest.approx(coefficient, rel=1e-9)
    assert b["cuped_variance_reduction"] > 0.8
    assert b["cuped_ci_high"] - b["cuped_ci_low"] < (b["ci_high"] - b["ci_low"]) / 2
    assert b["absolute_lift"] == pytest.approx(value[200:].mean() - value[:200].mean())

    without = analyze_experiment(
        outcomes.drop(columns="pre_exposure_events"),
        experiment="e",
        control="control",
        metrics=[MetricSpec("spend", "revenue")],
    )
    assert row(without, "b", "spend")["cuped_absolute_lift"] is None
    assert "no pre-exposure covariate" in row(without, "b", "spend")["note"]


def test_guardrails_are_their_own_holm_family_and_never_pick_the_winner():
    big = 2000
    outcomes = pd.DataFrame(
        persons("control", [1] * 200 + [0] * (big - 200))
        + persons("b", [1] * 300 + [0] * (big - 300))
        + persons("c", [1] * 200 + [0] * (big - 200))
        + persons("control", [1] * 500 + [0] * (big - 500), "d7")
        + persons("b", [1] * 500 + [0] * (big - 500), "d7")
        + persons("c", [1] * 300 + [0] * (big - 300), "d7")
    )
    metrics = [MetricSpec("activated", "conversion"), MetricSpec("d7", "retention", True)]
    results = analyze_experiment(outcomes, experiment="e", control="control", metrics=metrics)
    primary = results[~results["is_guardrail"].astype(bool) & ~results["is_control"].astype(bool)]
    # The primary family has two p-values: b's and c's (c's is exactly 1).
    p_b = row(results, "b")["p_value"]
    assert row(results, "b")["p_value_adjusted"] == pytest.approx(2 * p_b)
    assert row(results, "c")["p_value_adjusted"] == 1.0
    assert len(primary) == 2
    assert row(results, "c", "d7")["is_significant"]  # c lowers d7 retention: an alert, no winner
    assert pick_winner(results) == "b"
    assert guardrail_alerts(results) == ["c lowers d7 by 0.1"]


def test_winner_needs_a_significant_positive_primary_lift_and_no_significant_loss():
    frame = pd.DataFrame(
        [
            {"variant": "b", "metric_name": "m1", "is_guardrail": False, "is_control": False,
             "is_significant": True, "absolute_lift": 0.1, "p_value_adjusted": 0.01},
            {"variant": "b", "metric_name": "m2", "is_guardrail": False, "is_control": False,
             "is_significant": True, "absolute_lift": -0.1, "p_value_adjusted": 0.01},
            {"variant": "c", "metric_name": "m1", "is_guardrail": False, "is_control": False,
             "is_significant": True, "absolute_lift": 0.05, "p_value_adjusted": 0.03},
            {"variant": "d", "metric_name": "m1", "is_guardrail": False, "is_control": False,
             "is_significant": False, "absolute_lift": 0.3, "p_value_adjusted": 0.2},
        ]
    )  # fmt: skip
    assert pick_winner(frame) == "c"
    assert pick_winner(frame[frame["variant"] != "c"]) is None


def test_health_counts_srm_multi_variant_and_unplanned_persons():
    exposures = pd.DataFrame(
        {
            "person_id": [f"p{i}" for i in range(104)],
            "variant": ["control"] * 60 + ["b"] * 40 + ["b", "control", "rogue", "rogue"],
            "exposed_at": pd.date_range("2026-09-01", periods=104, freq="h"),
            "has_multiple_variants": [False] * 100 + [True, True, False, False],
        }
    )
    health = experiment_health(
        exposures, experiment="e", control="control", variants=["control", "b"]
    )
    assert list(health.columns) == HEALTH_COLUMNS
    assert health["persons"].tolist() == [60, 40]
    # chi-square: (60-50)^2/50 + (40-50)^2/50 = 4 on 1 degree of freedom
    assert health["srm_chi_square"].tolist() == pytest.approx([4.0, 4.0])
    assert health["srm_p_value"].iloc[0] == pytest.approx(stats.chi2.sf(4.0, 1))
    assert not health["srm_detected"].any()  # 0.0455 is not below 0.001
    assert health["multi_variant_persons"].tolist() == [2, 2]
    assert health["unplanned_variant_persons"].tolist() == [2, 2]
    assert "more than one variant" in health["note"].iloc[0]

    weighted = experiment_health(
        exposures, experiment="e", control="control", variants=["control", "b"], weights=[3, 2]
    )
    assert weighted["srm_chi_square"].iloc[0] == pytest.approx(0.0)

    lopsided = experiment_health(
        exposures, experiment="e", control="control", variants=["control", "b", "empty"]
    )
    assert lopsided["srm_detected"].all() and lopsided["persons"].tolist() == [60, 40, 0]
    assert lopsided["first_exposure_at"].iloc[2] is None

    nobody = experiment_health(
        exposures.iloc[:0], experiment="e", control="control", variants=["control", "b"]
    )
    assert nobody["srm_p_value"].tolist() == [None, None] and not nobody["srm_detected"].any()
    assert no_nan(nobody)


def test_segments_share_one_holm_family_across_every_segment():
    outcomes = pd.DataFrame(
        persons("control", [1] * 20 + [0] * 80) + persons("b", [1] * 40 + [0] * 60)
    )
    ids = outcomes["person_id"]
    segments = pd.concat(
        [
            pd.DataFrame(
                {
                    "person_id": ids,
                    "segment_name": "platform",
                    "segment_value": np.where(ids.str[-1].isin(list("02468")), "ios", "web"),
                }
            ),
            pd.DataFrame({"person_id": ids, "segment_name": "plan", "segment_value": None}),
        ]
    )
    results = analyze_by_segment(
        outcomes, segments, experiment="e", control="control", metrics=ACTIVATED
    )
    assert list(results.columns) == SEGMENT_COLUMNS
    treatment = results[~results["is_control"].astype(bool)]
    assert sorted(treatment["segment_value"]) == ["(none)", "ios", "web"]
    assert treatment["comparisons_in_family"].tolist() == [3, 3, 3]
    p = treatment["p_value"].astype(float).to_numpy()
    from statsmodels.stats.multitest import multipletests

    expected = multipletests(p, method="holm")[1]
    assert treatment["p_value_adjusted"].astype(float).to_numpy() == pytest.approx(expected)
    whole = row(results[results["segment_value"] == "(none)"], "b")
    assert whole["persons"] == 100 and whole["conversions"] == 40


def test_a_segment_is_the_analysis_of_its_members_outcomes():
    """Each segment's rows are analyze_experiment on the outcomes of the segment's persons only
    (up to the Holm family): outcome rows without a person belong to no segment, and segment
    members without an outcome add nothing."""
    rng = np.random.default_rng(9)
    outcomes = pd.DataFrame(
        persons("control", rng.integers(0, 2, 60))
        + persons("b", rng.integers(0, 2, 60))
        + persons("control", rng.gamma(2.0, 10.0, 60), metric="revenue")
        + persons("b", rng.gamma(2.2, 10.0, 60), metric="revenue")
    )
    outcomes["person_id"] = outcomes["person_id"].str.replace(r"-\w+-", "-", regex=True)
    outcomes.loc[::17, "person_id"] = None
    outcomes["pre_exposure_events"] = rng.integers(0, 5, len(outcomes)).astype(float)
    ids = pd.Series(sorted(outcomes["person_id"].dropna().unique().tolist() + ["nobody"]))
    segments = pd.DataFrame(
        {
            "person_id": ids,
            "segment_name": "plan",
            "segment_value": np.where(ids.index % 3, "a", "b"),
        }
    )
    metrics = [MetricSpec("activated", "conversion"), MetricSpec("revenue", "revenue")]
    by_segment = analyze_by_segment(
        outcomes, segments, experiment="e", control="control", metrics=metrics
    )
    unadjusted = [c for c in RESULT_COLUMNS if c not in ("p_value_adjusted", "is_significant")]
    for value, members in segments.groupby("segment_value"):
        alone = analyze_experiment(
            outcomes[outcomes["person_id"].isin(members["person_id"])],
            experiment="e",
            control="control",
            metrics=metrics,
        )
        mine = by_segment[by_segment["segment_value"] == value]
        pd.testing.assert_frame_equal(
            mine[unadjusted].reset_index(drop=True), alone[unadjusted].reset_index(drop=True)
        )
