"""A small event log whose right answers are worked out by hand below, run through the production
ingest path and dbt models: ties, the window's inclusive end, re-entry, a skipped step, a breakdown
taken from the first start, and timestamps that cross midnight UTC only once converted to UTC.

The log (all times UTC unless noted):
  alice (web, plan pro): signup Mon 2026-03-02 09:00:00, verify_email at the same second (a tie),
        create_project Mon 03-09 09:00:00, exactly 7 days after signup (the window's end: counts).
  bob   (ios): signup 03-02 10:00, create_project 10:05 without verifying (skips a step).
  carol: signup 2026-03-02T01:59:59+02:00 = Sun 03-01 23:59:59 UTC (android); signup again Thu
        03-05 12:00 (web); verify_email Mon 03-09 00:00:00 = 7 days + 1 s after the first signup
        (too late for it) but 3.5 days after the second (re-entry converts).
  dave: page_view 2026-03-01T19:00:00-05:00 = Mon 03-02 00:00:00 UTC; never signs up.
"""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.metrics.reports import missing_steps_message
from orchestration.reporting import charts
from tests.metrics_dbt import build_or_fail, land_events, query, run_dbt_build

EVENTS = [
    ("a1", "alice", "signup", "2026-03-02T09:00:00Z", "web", {"plan": "pro"}),
    ("a2", "alice", "verify_email", "2026-03-02T09:00:00Z", "web", {}),
    ("a3", "alice", "create_project", "2026-03-09T09:00:00Z", "web", {}),
    ("b1", "bob", "signup", "2026-03-02T10:00:00Z", "ios", {"plan": "free"}),
    ("b2", "bob", "create_project", "2026-03-02T10:05:00Z", "ios", {}),
    ("c1", "carol", "signup", "2026-03-02T01:59:59+02:00", "android", {"plan": "free"}),
    ("c2", "carol", "signup", "2026-03-05T12:00:00Z", "web", {"plan": "pro"}),
    ("c3", "carol", "verify_email", "2026-03-09T00:00:00Z", "web", {}),
    ("d1", "dave", "page_view", "2026-03-01T19:00:00-05:00", "web", {}),
]

CONFIG = """
funnels:
  - name: onboarding
    steps: [signup, verify_email, create_project]
    conversion_window: 7d
breakdowns: [platform, properties.plan]
retention:
  cohort_event: signup
  return_event: any
  granularities: [day, week, month]
  max_periods: {day: 10, week: 3, month: 2}
"""


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    database = tmp_path_factory.mktemp("handbuilt") / "handbuilt.duckdb"
    land_events(
        database,
        [
            {
                "event_id": i,
                "user_id": u,
                "event_name": n,
                "event_time": t,
                "platform": p,
                "country": "DE",
                "properties": props,
            }
            for i, u, n, t, p, props in EVENTS
        ],
    )
    build_or_fail(database, CONFIG)
    return database


def _funnel(warehouse, segment_name="all", segment_value="all") -> pd.DataFrame:
    return query(
        warehouse,
        f"""
        select * from funnel_conversion
        where segment_name = '{segment_name}' and segment_value = '{segment_value}'
        order by step_index""",
    )


def test_funnel_levels(warehouse):
    """alice 3 (tie, then the window's last second); bob 1 (skipped verify_email); carol 2 (her
    second start, after the first timed out by one second)."""
    levels = query(warehouse, "select person_id, level from int_funnel_levels order by person_id")
    assert dict(zip(levels.person_id, levels.level, strict=True)) == {
        "alice": 3,
        "bob": 1,
        "carol": 2,
    }


def test_funnel_conversion_all(warehouse):
    funnel = _funnel(warehouse)
    assert list(funnel.step_name) == ["signup", "verify_email", "create_project"]
    assert list(funnel.users) == [3, 2, 1]
    assert list(funnel.dropped_off) == [0, 1, 1]
    assert funnel.conversion_from_start.tolist() == pytest.approx([1, 2 / 3, 1 / 3])
    assert pd.isna(funnel.conversion_from_previous[0])
    assert funnel.conversion_from_previous[1:].tolist() == pytest.approx([2 / 3, 1 / 2])
    # step 2: alice 0 s (tie), carol 3.5 days from her converting start -> median 151200 s
    assert funnel.median_seconds_from_start.tolist() == [0, 151_200, 604_800]


def test_breakdown_uses_the_first_start(warehouse):
    """carol's first signup was on android (plan free), her converting one on web (plan pro)."""
    assert list(_funnel(warehouse, "platform", "android").users) == [1, 1, 0]
    assert list(_funnel(warehouse, "platform", "web").users) == [1, 1, 1]
    assert list(_funnel(warehouse, "platform", "ios").users) == [1, 0, 0]
    assert list(_funnel(warehouse, "properties.plan", "free").users) == [2, 1, 0]
    assert list(_funnel(warehouse, "properties.plan", "pro").users) == [1, 1, 1]


def _retention(warehouse, granularity) -> dict:
    frame = query(
        warehouse,
        f"""
        select cast(cohort_start as varchar) as cohort_start, period_number, cohort_users,
               retained_users, retained_users_unbounded, is_complete
        from retention_cohorts where granularity = '{granularity}'""",
    )
    return {
        (r.cohort_start, r.period_number): (
            r.cohort_users,
            r.retained_users,
            r.retained_users_unbounded,
            bool(r.is_complete),
        )
        for r in frame.itertuples()
    }


def test_daily_retention(warehouse):
    """carol's cohort is Sunday 03-01 (UTC), not 03-02; the data ends 03-09, so cohort 03-02 has
    periods 0..7 and cohort 03-01 periods 0..8, all complete."""
    got = _retention(warehouse, "day")
    expected = {
        ("2026-03-02", n): (2, 2 if n == 0 else (1 if n == 7 else 0), 2 if n == 0 else 1, True)
        for n in range(8)
    }
    expected |= {("2026-03-01", n): (1, 1 if n in (0, 4, 8) else 0, 1, True) for n in range(9)}
    assert got == expected


def test_weekly_retention_weeks_start_on_monday(warehouse):
    got = _retention(warehouse, "week")
    assert got == {
        ("2026-02-23", 0): (1, 1, 1, True),  # carol, Sunday 03-01 belongs to the week of Mon 02-23
        ("2026-02-23", 1): (1, 1, 1, True),  # 03-05
        ("2026-02-23", 2): (1, 1, 1, False),  # 03-09; the data stops on 03-09, mid-week
        ("2026-03-02", 0): (2, 2, 2, True),
        ("2026-03-02", 1): (2, 1, 1, False),  # alice on 03-09
    }


def test_monthly_retention(warehouse):
    assert _retention(warehouse, "month") == {("2026-03-01", 0): (3, 3, 3, False)}


def test_active_users(warehouse):
    """dave's page_view is 03-02 in UTC (03-01 in New York); wau on 03-09 = 03-03..03-09."""
    frame = query(
        warehouse,
        "select cast(activity_date as varchar) as d, dau, wau, mau, stickiness"
        " from active_users order by 1",
    )
    rows = {r.d: (r.dau, r.wau, r.mau) for r in frame.itertuples()}
    assert list(rows) == [f"2026-03-0{d}" for d in range(1, 10)]
    assert rows["2026-03-01"] == (1, 1, 1)
    assert rows["2026-03-02"] == (3, 4, 4)
    assert rows["2026-03-03"] == (0, 4, 4)
    assert rows["2026-03-08"] == (0, 4, 4)
    assert rows["2026-03-09"] == (2, 2, 4)
    assert frame.stickiness.iloc[-1] == 0.5


def test_funnel_chart_is_drawn_from_the_mart(warehouse):
    mart = query(warehouse, "select * from funnel_conversion")
    fig = charts.funnel_figure(mart)
    assert charts.drawn_bar_heights(fig) == [[3.0, 2.0, 1.0]]
    assert charts.to_png(fig).startswith(b"\x89PNG")


def test_a_step_that_never_occurs_stops_the_funnel_mart(warehouse, tmp_path):
    """The blocking dbt test fails, funnel_conversion is skipped, and the rows it failed on name the
    funnel and the step (what the Dagster asset reports in its failure)."""
    database = tmp_path / "typo.duckdb"
    database.write_bytes(warehouse.read_bytes())
    typo = CONFIG.replace("verify_email", "verify_emial")
    result = run_dbt_build(database, typo, select="int_metrics_events+")
    assert result.returncode != 0
    assert (
        "FAIL 1 assert_every_funnel_step_occurs"
        in result.stdout.replace("\x1b[31m", "").replace("\x1b[0m", "")
        or "assert_every_funnel_step_occurs" in result.stdout
    )
    assert "SKIP relation main.funnel_conversion" in result.stdout
    missing = query(
        database,
        "select funnel_name, step_index, step_name from int_funnel_step_occurrences"
        " where occurrences = 0",
    )
    assert missing_steps_message(list(missing.itertuples(index=False, name=None))) == (
        "funnel 'onboarding': step 2 ('verify_emial') never occurs in the events"
    )


def test_in_dagster_a_missing_step_fails_its_check_and_skips_only_the_funnel_mart(
    warehouse, tmp_path, monkeypatch
):
    """Through Dagster: the check on int_funnel_step_occurrences fails with a description naming the
    funnel and the misspelled step, funnel_conversion is not materialized, the other marts are."""
    import dagster as dg

    from orchestration.resources import build_resources
    from orchestration.transform.assets import analytics_dbt_models

    database = tmp_path / "dagster.duckdb"
    database.write_bytes(warehouse.read_bytes())
    config = tmp_path / "typo.yml"
    config.write_text(CONFIG.replace("verify_email", "verify_emial"))
    monkeypatch.setenv("DUCKDB_DATABASE", str(database))
    monkeypatch.setenv("ANALYTICS_CONFIG", str(config))
    result = dg.materialize(
        [analytics_dbt_models], resources=build_resources(), raise_on_error=False
    )
    materialized = {
        e.asset_key.path[-1] for e in result.get_asset_materialization_events() if e.asset_key
    }
    assert "funnel_conversion" not in materialized
    assert {"retention_cohorts", "active_users", "fct_events"} <= materialized
    checks = {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    check = checks["assert_every_funnel_step_occurs"]
    assert check.passed is False
    assert "funnel 'onboarding': step 2 ('verify_emial') never occurs" in check.description
    assert result.success, "only the funnel branch stops; the run itself goes on"
