"""The demo's planted findings (orchestration/ingest/demo.py) seen in the behaviour marts, and
feature_revenue_impact on the demo, all from one materialization of the real Dagster graph: the
raw extract, the dbt models of the behaviour group and the Python asset, on 4,000 persons x 56 days
(about 45 s; the tests below only read).

Planted: Android's create_project step is broken (most who fail hit errors, then view_help); persons
who use use_integration come back on more later days. The demo draws with a fixed seed, so the
figures are deterministic; the thresholds leave room for a change of draws.

What the demo says about revenue (docs/behaviour.md): with adoption 7d and outcome 30d, only the
persons who signed up in the first 19 days (1,026) are compared; 156 used use_integration in their
first week. Their conversion (a payment in days 8-37) is 9.6% against 1.9% for comparable
non-adopters: +7.7 points, 95% CI (3.0, 12.5). Revenue per person is +$4.40, but its CI (-$2.1,
$10.9) spans zero: payments are rare and a few $499 enterprise plans dominate the variance, so
the demo is too small for a significant revenue difference, and the test does not ask for one. The
other features also show higher conversion among adopters (+4 to +5 points): in the demo any
feature use happens on a return visit, which is also when persons pay. That is the observational
caveat at work, not an effect of the features.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pytest

from orchestration.resources import EventSourceResource
from tests.pipeline import materialize_days, materialized_keys, query

pytestmark = pytest.mark.e2e

PERSONS, DAYS, FIRST = 4000, 56, date(2026, 9, 1)
BEHAVIOUR = dg.AssetSelection.groups("behaviour").upstream()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("behaviour_demo") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUCKDB_DATABASE", str(path))
        source = EventSourceResource(kind="demo", demo_persons=PERSONS, demo_days=DAYS)
        result = materialize_days(FIRST, FIRST + timedelta(days=DAYS - 1), source, BEHAVIOUR)
    assert result.success
    assert {"top_paths", "path_drop_offs", "feature_adoption", "feature_revenue_impact"} <= (
        materialized_keys(result)
    )
    return path


def test_android_verifiers_end_in_error_then_help(demo):
    # top_paths: the error path is among the ten commonest paths after signup.
    rank = query(
        demo,
        "select path_rank from top_paths where journey_name = 'after_signup' "
        "and path = 'signup > verify_email > error > view_help'",
    )
    assert rank and rank[0][0] <= 10
    # path_drop_offs: of those who stopped at verify_email (never reached create_project), the
    # commonest last event besides leaving right there is view_help, for over a fifth of them.
    drops = query(
        demo,
        "select last_event, share from path_drop_offs where funnel_name = 'onboarding' "
        "and step_name = 'verify_email' and last_event <> 'verify_email' order by persons desc",
    )
    assert drops[0][0] == "view_help" and drops[0][1] > 0.2
    # Direct: the error path is Android's alone, and over half of Android's verifiers take it.
    by_platform = dict(
        query(
            demo,
            """
            with signups as (
                select person_id, platform from fct_events where event_name = 'signup'
                qualify row_number() over (partition by person_id order by event_time) = 1
            ),
            paths as (
                select split_part(path_id, '#', 1) as person_id,
                       string_agg(event_name, ' > ' order by step_number) as path
                from int_journey_steps where journey_name = 'after_signup' group by path_id
            )
            select platform, avg(case when path like 'signup > verify_email > error%' then 1.0
                                      else 0.0 end)
            from paths inner join signups using (person_id)
            where path like 'signup > verify_email%'
            group by platform
            """,
        )
    )
    assert by_platform["android"] > 0.5
    assert by_platform["web"] == 0 and by_platform["ios"] == 0


def test_integration_users_come_back_more(demo):
    # feature_adoption: use_integration is the most adopted feature, planted users on top of the
    # random feature uses every returning person makes.
    rates = dict(
        query(
            demo,
            "select feature, sum(adopters) * 1.0 / sum(cohort_persons) from feature_adoption "
            "where segment_name = 'all' group by feature",
        )
    )
    assert max(rates, key=rates.get) == "use_integration"
    # lifecycle has no per-feature split: return days counted directly, among feature users.
    returns = dict(
        query(
            demo,
            """
            with persons as (
                select person_id,
                       count(distinct cast(event_time as date)) - 1 as return_days,
                       max(case when event_name = 'use_integration' then 1 else 0 end) as integ
                from fct_events group by person_id
                having max(case when event_name in ('view_dashboard', 'create_report',
                                                    'export_csv', 'use_integration')
                                then 1 else 0 end) = 1
            )
            select integ, avg(return_days) from persons group by integ
            """,
        )
    )
    assert returns[1] > 2 * returns[0]


def test_revenue_impact_of_use_integration_has_a_sensible_sign(demo):
    columns = (
        "feature, persons, adopters, strata_used, conversion_difference, conversion_ci_low, "
        "conversion_ci_high, revenue_difference, ci_low, ci_high, p_value, current_adopters, "
        "implied_revenue, note"
    )
    rows = {
        row[0]: dict(zip(columns.split(", "), row, strict=True))
        for row in query(demo, f"select {columns} from feature_revenue_impact")
    }
    assert set(rows) == {
        "view_dashboard", "create_report", "export_csv", "use_integration", "share_dashboard"
    }  # fmt: skip
    integration = rows["use_integration"]
    assert integration["persons"] > 900 and integration["adopters"] > 100
    assert integration["strata_used"] >= 6  # ~3 cohort weeks x 3 platforms
    # Adopters convert more, clearly; they also earn more, but not significantly on the demo.
    assert integration["conversion_difference"] > 0 and integration["conversion_ci_low"] > 0
    assert integration["revenue_difference"] > 0
    assert integration["ci_low"] < integration["revenue_difference"] < integration["ci_high"]
    assert integration["implied_revenue"] == pytest.approx(
        integration["revenue_difference"] * integration["current_adopters"]
    )
    assert integration["current_adopters"] > integration["adopters"]  # recent cohorts too
    # The demo never draws share_dashboard: a defined row with its reason.
    share = rows["share_dashboard"]
    assert share["adopters"] == 0 and share["revenue_difference"] is None
    assert share["note"] == "no adopters"
    nan = query(
        demo,
        "select count(*) from feature_revenue_impact where isnan(revenue_difference) "
        "or isnan(ci_low) or isnan(conversion_difference) or isnan(implied_revenue)",
    )
    assert nan[0][0] == 0
