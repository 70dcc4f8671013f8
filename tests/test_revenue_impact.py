"""feature_revenue_impact's estimator (ml/revenue_impact.py) on tiny hand-made cases, with the
answers worked out by hand; its CI against an independent regression; the degenerate cases; and
the windows of int_feature_revenue_persons on a hand-built event log through dbt.

The confounded case (Simpson): two strata in one signup cohort week.
  web (high revenue):  adopters [30, 30, 10, 10] mean 20, var 400/3; non-adopters [30, 20] mean
                       25, var 50. Difference -5.
  android (low):       adopters [0, 2] mean 1, var 2; non-adopters [2, 2, 0, 4] mean 2, var 8/3.
                       Difference -1.
Adopters earn less in both strata, but they are concentrated in web: the raw difference is
82/6 - 58/6 = +4. The ATT weights are the adopters' shares, 4/6 and 2/6, so the estimate is
(4/6)(-5) + (2/6)(-1) = -11/3, with variance (4/6)^2 (400/3/4 + 50/2) + (2/6)^2 (2/2 + (8/3)/4)
= (4/9)(175/3) + (1/9)(5/3) = 705/27.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from ml.revenue_impact import RESULT_COLUMNS, feature_revenue_impact, stratified_difference
from orchestration.behaviour.assets import SCHEMA
from orchestration.resources import WarehouseResource
from orchestration.warehouse import read_sql, replace_table
from tests.metrics_dbt import build_or_fail, land_events, query

Z = 1.959963984540054
WEB_A, WEB_N = [30, 30, 10, 10], [30, 20]
ANDROID_A, ANDROID_N = [0, 2], [2, 2, 0, 4]


def _simpson() -> pd.DataFrame:
    rows = []
    for stratum, adopters, others in (("web", WEB_A, WEB_N), ("android", ANDROID_A, ANDROID_N)):
        rows += [(stratum, True, v) for v in adopters] + [(stratum, False, v) for v in others]
    return pd.DataFrame(rows, columns=["stratum", "treated", "value"])


def test_stratified_estimate_reverses_the_raw_difference():
    frame = _simpson()
    raw = frame[frame.treated].value.mean() - frame[~frame.treated].value.mean()
    assert raw == pytest.approx(4.0)
    result = stratified_difference(frame.value, frame.treated, frame.stratum)
    assert result.estimate == pytest.approx(-11 / 3)
    assert result.std_error == pytest.approx(math.sqrt(705 / 27))
    assert result.ci_low == pytest.approx(-11 / 3 - Z * math.sqrt(705 / 27))
    assert result.ci_high == pytest.approx(-11 / 3 + Z * math.sqrt(705 / 27))
    assert result.p_value == pytest.approx(
        2 * (1 - 0.5 * (1 + math.erf(11 / 3 / math.sqrt(705 / 27) / math.sqrt(2))))
    )
    # Adopters' mean over the used strata; non-adopters reweighted to the adopters' mix.
    assert result.mean_treated == pytest.approx(82 / 6)
    assert result.mean_control == pytest.approx((4 / 6) * 25 + (2 / 6) * 2)
    assert (result.strata_used, result.strata_dropped) == (2, 0)
    assert (result.treated_used, result.control_used) == (6, 6)
    assert result.reason is None


def test_ci_matches_a_saturated_regression_with_hc2_errors():
    """Independent route: OLS of value on stratum x treated (one mean per cell), HC2 covariance
    (which, in a saturated model, is s^2/n per cell), and the ATT as a linear combination."""
    rng = np.random.default_rng(7)
    rows = []
    for s, (n_t, n_c, shift) in enumerate([(5, 9, 0.0), (12, 4, 3.0), (3, 20, -1.0), (7, 7, 8.0)]):
        rows += [(f"s{s}", 1, v) for v in rng.gamma(2.0, 2.0 + shift % 3, n_t) + shift]
        rows += [(f"s{s}", 0, v) for v in rng.gamma(2.0, 2.0, n_c) + shift]
    frame = pd.DataFrame(rows, columns=["stratum", "treated", "value"])
    fit = smf.ols("value ~ 0 + C(stratum) + C(stratum):treated", frame).fit(cov_type="HC2")
    strata = sorted(frame.stratum.unique())
    n_treated = frame[frame.treated == 1].groupby("stratum").size().reindex(strata).to_numpy()
    contrast = pd.Series(0.0, index=fit.params.index)
    for stratum, weight in zip(strata, n_treated / n_treated.sum(), strict=True):
        contrast[f"C(stratum)[{stratum}]:treated"] = weight
    expected = float(contrast @ fit.params)
    expected_se = math.sqrt(float(contrast @ fit.cov_params() @ contrast))

    result = stratified_difference(frame.value, frame.treated, frame.stratum)
    assert result.estimate == pytest.approx(expected, rel=1e-10)
    assert result.std_error == pytest.approx(expected_se, rel=1e-10)
    assert result.ci_low == pytest.approx(expected - Z * expected_se, rel=1e-9)
    assert result.ci_high == pytest.approx(expected + Z * expected_se, rel=1e-9)


def test_strata_without_two_of_each_group_are_dropped_and_counted():
    frame = pd.concat(
        [
            _simpson(),
            # one adopter only: no sample variance for adopters here
            pd.DataFrame({"stratum": "ios", "treated": [True, False, False], "value": [99, 0, 1]}),
            # non-adopters only
            pd.DataFrame({"stratum": "other", "treated": [False, False], "value": [5, 6]}),
        ]
    )
    result = stratified_difference(frame.value, frame.treated, frame.stratum)
    assert (result.strata_used, result.strata_dropped) == (2, 2)
    assert result.estimate == pytest.approx(-11 / 3)


def test_no_adopters_no_overlap_and_zero_variance():
    none = stratified_difference([1.0, 2.0, 3.0], [False, False, False], ["a", "a", "b"])
    assert none.estimate is None and none.p_value is None and none.reason == "no adopters"
    assert (none.strata_used, none.strata_dropped) == (0, 2)

    apart = stratified_difference([1, 2, 3, 4], [True, True, False, False], ["a", "a", "b", "b"])
    assert apart.estimate is None and apart.ci_low is None
    assert apart.reason.startswith("no stratum has 2+ adopters")

    empty = stratified_difference([], [], [])
    assert empty.estimate is None and empty.reason == "no persons"

    equal = stratified_difference([5, 5, 5, 5], [True, True, False, False], ["a"] * 4)
    assert (equal.estimate, equal.ci_low, equal.ci_high, equal.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert equal.reason.startswith("no variance")

    exact = stratified_difference([7, 7, 5, 5], [True, True, False, False], ["a"] * 4)
    assert (exact.estimate, exact.ci_low, exact.ci_high, exact.p_value) == (2.0, 2.0, 2.0, 0.0)


def _persons(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=["feature", "person_id", "cohort_week", "segment", "in_population", "adopted",
                 "converted", "revenue"],
    )  # fmt: skip


def test_table_has_a_row_per_feature_and_no_nan_when_degenerate(tmp_path):
    persons = _persons(
        [("f", f"p{i}", "2026-03-02", "all", 1, 0, 0, 0.0) for i in range(4)]
        + [("g", f"p{i}", "2026-03-02", "all", 1, int(i < 2), 0, 0.0) for i in range(4)]
    )
    table = feature_revenue_impact(persons, ["f", "g", "h"])
    assert list(table.columns) == RESULT_COLUMNS
    f, g, h = (table.set_index("feature").loc[name] for name in "fgh")
    assert f.adopters == 0 and f.note == "no adopters" and pd.isna(f.revenue_difference)
    assert g.revenue_difference == 0.0 and g.p_value == 1.0 and g.note.startswith("no variance")
    assert g.implied_revenue == 0.0
    assert h.persons == 0 and h.note == "no persons" and pd.isna(h.adoption_rate)
    # Written as the asset writes it: missing values are SQL NULL, never NaN.
    resource = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    assert replace_table(resource, "feature_revenue_impact", table, SCHEMA) == 3
    doubles = [c.name for c in SCHEMA.columns if c.type == "DOUBLE"]
    nan = " or ".join(f"isnan({c}) or isinf({c})" for c in doubles)
    counts = read_sql(
        resource,
        f"select count(*) filter (where {nan}), count(*) filter (where revenue_difference is null) "
        "from feature_revenue_impact",
    )
    assert counts.iloc[0].tolist() == [0, 2]


# --- The windows, through dbt -------------------------------------------------------------------
# Signups on Monday 2026-03-02 (cohort week 03-02); adoption window 7d, outcome window 30d, so the
# outcome window is (03-09 signup time, 04-08 signup time]. The data end is the midnight after the
# last event (05-01): everyone signed up on 03-02 is in the population. The Simpson strata above,
# as persons (platform, adopts, revenue in the outcome window), plus:
#   x (web): adopts, pays 1000 on day 3 (inside the adoption window: not counted) and 5000 on day 40
#            (after the outcome window: not counted): revenue 0, converted 0. A web adopter.
#   y (ios): signs up 04-20: adoption window elapsed (04-27 < 05-02), outcome window not; it uses
#            the feature on 04-21, so it is a current adopter but not in the population.
#   z (ios): signs up 04-30: adoption window open; not in the table at all.
# With x, web adopters are [30, 30, 10, 10, 0]: mean 16, var 720/4 = 180, and the ATT weights
# become 5/7, 2/7: estimate (5/7)(16 - 25) + (2/7)(1 - 2) = -47/7; raw 82/7 - 58/6 = 43/21.
CONFIG = """
funnels:
  - {name: f, steps: [signup, purchase], conversion_window: 30d}
behaviour:
  features: {events: [use_integration], signup_event: signup, breakdowns: [platform]}
  revenue_impact: {adoption_window: 7d, outcome_window: 30d}
"""


def _event_log() -> list[dict]:
    people = []
    for platform, adopters, others in (("web", WEB_A, WEB_N), ("android", ANDROID_A, ANDROID_N)):
        people += [(platform, True, v) for v in adopters] + [(platform, False, v) for v in others]
    records = []

    def add(person, platform, at, name, properties=None):
        records.append(
            {
                "event_id": f"e{len(records)}",
                "event_name": name,
                "event_time": at,
                "user_id": person,
                "platform": platform,
                "properties": properties or {},
            }
        )

    for i, (platform, adopts, revenue) in enumerate(people):
        person = f"p{i}"
        add(person, platform, "2026-03-02T10:00:00", "signup")
        if adopts:
            add(person, platform, "2026-03-05T10:00:00", "use_integration")
        if revenue:
            add(person, platform, "2026-03-20T10:00:00", "purchase", {"revenue": revenue})
    add("x", "web", "2026-03-02T10:00:00", "signup")
    add("x", "web", "2026-03-09T10:00:00", "use_integration")  # the adoption window's last second
    add("x", "web", "2026-03-05T10:00:00", "purchase", {"revenue": 1000})
    add("x", "web", "2026-04-11T10:00:00", "purchase", {"revenue": 5000})
    add("y", "ios", "2026-04-20T10:00:00", "signup")
    add("y", "ios", "2026-04-21T10:00:00", "use_integration")
    add("z", "ios", "2026-04-30T10:00:00", "signup")
    add("z", "ios", "2026-05-01T10:00:00", "use_integration")
    return records


@pytest.fixture(scope="module")
def handbuilt(tmp_path_factory):
    database = tmp_path_factory.mktemp("revenue_impact") / "warehouse.duckdb"
    land_events(database, _event_log())
    build_or_fail(database, CONFIG, "+dim_users +fct_sessions +int_feature_revenue_persons")
    return database


def test_windows_population_and_current_adopters(handbuilt):
    persons = query(handbuilt, "select * from int_feature_revenue_persons")
    by_person = persons.set_index("person_id")
    assert "z" not in by_person.index
    assert by_person.loc["y", "in_population"] == 0 and by_person.loc["y", "adopted"] == 1
    assert by_person.loc["x", ["adopted", "revenue", "converted"]].tolist() == [1, 0.0, 0]
    assert set(persons.cohort_week.astype(str)) == {"2026-03-02", "2026-04-20"}
    assert set(persons.segment) == {"platform=web", "platform=android", "platform=ios"}

    row = feature_revenue_impact(persons, ["use_integration"]).iloc[0]
    assert (row.persons, row.adopters, row.current_adopters) == (13, 7, 8)
    assert (row.strata_used, row.strata_dropped) == (2, 0)
    assert row.revenue_difference == pytest.approx(-47 / 7)
    assert row.raw_revenue_difference == pytest.approx(82 / 7 - 58 / 6)
    variance = (5 / 7) ** 2 * (180 / 5 + 50 / 2) + (2 / 7) ** 2 * (2 / 2 + (8 / 3) / 4)
    assert row.ci_low == pytest.approx(-47 / 7 - Z * math.sqrt(variance))
    assert row.ci_high == pytest.approx(-47 / 7 + Z * math.sqrt(variance))
    assert row.implied_revenue == pytest.approx(-47 / 7 * 8)
    # Conversion (revenue > 0): web adopters 4/5, non-adopters 2/2; android 1/2 vs 3/4.
    assert row.conversion_adopters == pytest.approx((4 + 1) / 7)
    assert row.conversion_difference == pytest.approx(
        (5 / 7) * (4 / 5 - 1) + (2 / 7) * (1 / 2 - 3 / 4)
    )
