"""Lifecycle, feature adoption and usage, traffic sources, abandonment and daily metric snapshots on
one hand-built log, each answer worked out by hand in the test (the log is described below).

Weeks start on Monday: 2026-03-02, 03-09, 03-16. Persons (platform):
  a (web): anonymous page_view (utm google/cpc) 03-02 10:00, signs up 10:05, add_to_cart hat 10
           10:10, purchase 11:00 (revenue 10), view_dashboard 03-03 10:00.
  b (ios): page_view from google.com (organic) 03-02 12:00, signup 12:01, add_to_cart shoe 20
           12:05 and hat 5 12:06, never buys; page_view 03-16 12:30.
  c (web): one page_view 03-09 15:00 (direct).
  d (web): signup 03-02 09:00 (direct, landing on signup), view_dashboard 09:30, add_to_cart shoe
           30 03-09 10:00, purchase 03-12 10:00 (revenue 30).
"""

from __future__ import annotations

import shutil

import pytest

from tests.metrics_dbt import build_or_fail, land_events, query

MARTS = (
    "+dim_users +fct_sessions +lifecycle +feature_usage +feature_adoption +traffic_sources"
    " +traffic_source_conversions +abandonment +abandoned_items +metric_snapshots"
)
EVENTS = [
    # person, anonymous id, time, name, properties
    (
        "a",
        "anon-a",
        "2026-03-02T10:00:00",
        "page_view",
        {"utm_source": "google", "utm_medium": "cpc"},
    ),
    ("a", "anon-a", "2026-03-02T10:05:00", "signup", {}),
    ("a", None, "2026-03-02T10:10:00", "add_to_cart", {"value": 10, "item": "hat"}),
    ("a", None, "2026-03-02T11:00:00", "purchase", {"revenue": 10}),
    ("a", None, "2026-03-03T10:00:00", "view_dashboard", {}),
    ("b", None, "2026-03-02T12:00:00", "page_view", {"referrer": "https://www.google.com/"}),
    ("b", None, "2026-03-02T12:01:00", "signup", {}),
    ("b", None, "2026-03-02T12:05:00", "add_to_cart", {"value": 20, "item": "shoe"}),
    ("b", None, "2026-03-02T12:06:00", "add_to_cart", {"value": 5, "item": "hat"}),
    ("b", None, "2026-03-16T12:30:00", "page_view", {}),
    ("c", None, "2026-03-09T15:00:00", "page_view", {}),
    ("d", None, "2026-03-02T09:00:00", "signup", {}),
    ("d", None, "2026-03-02T09:30:00", "view_dashboard", {}),
    ("d", None, "2026-03-09T10:00:00", "add_to_cart", {"value": 30, "item": "shoe"}),
    ("d", None, "2026-03-12T10:00:00", "purchase", {"revenue": 30}),
]
PLATFORM = {"a": "web", "b": "ios", "c": "web", "d": "web"}
CONFIG = """
funnels:
  - {name: f, steps: [signup, purchase], conversion_window: %s}
behaviour:
  features: {events: [view_dashboard], signup_event: signup, breakdowns: [platform]}
  lifecycle: {granularities: [day, week]}
  abandonment:
    - {name: cart, start_event: add_to_cart, complete_event: purchase, window: 1d,
       value_property: value, item_property: item}
  snapshots: {recompute_days: %d}
"""


def _records(events, prefix: str = "e") -> list[dict]:
    return [
        {
            "event_id": f"{prefix}{i}",
            "event_name": name,
            "event_time": at,
            # the anonymous page_view has no user id; the signup carries both ids (stitching)
            "user_id": None if anonymous and name == "page_view" else person,
            "anonymous_id": anonymous,
            "platform": PLATFORM[person],
            "properties": properties,
        }
        for i, (person, anonymous, at, name, properties) in enumerate(events)
    ]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    database = tmp_path_factory.mktemp("behaviour") / "behaviour.duckdb"
    land_events(database, _records(EVENTS))
    build_or_fail(database, CONFIG % ("7d", 3), MARTS)
    return database


def test_lifecycle_weeks_follow_posthog(warehouse):
    frame = query(
        warehouse,
        "select cast(period_start as varchar) as week, new_persons, returning_persons,"
        " resurrecting_persons, dormant_persons from lifecycle where granularity = 'week'"
        " order by period_start",
    )
    assert list(frame.itertuples(index=False, name=None)) == [
        ("2026-03-02", 3, 0, 0, 0),  # a, b, d first seen
        ("2026-03-09", 1, 1, 0, 2),  # c new, d returning; a and b went dormant
        ("2026-03-16", 0, 0, 1, 2),  # b resurrects; c and d dormant
    ]
    day = query(
        warehouse,
        "select new_persons, returning_persons, resurrecting_persons, dormant_persons"
        " from lifecycle"
        " where granularity = 'day' and period_start = date '2026-03-03'",
    ).iloc[0]
    assert tuple(day) == (0, 1, 0, 2)  # a returns from 03-02; b and d dormant


def test_feature_adoption_per_signup_week_and_platform(warehouse):
    frame = query(
        warehouse,
        "select segment_name, segment_value, cohort_persons, adopters, adoption_rate,"
        " median_days_to_first_use from feature_adoption where feature = 'view_dashboard'"
        " and cohort_week = date '2026-03-02'",
    )
    got = {(r.segment_name, r.segment_value): r[2:] for r in frame.itertuples(index=False)}
    a_days, d_days = (23 * 60 + 55) / 1440, 30 / 1440  # signup -> first view_dashboard
    assert got[("all", "all")][:3] == (3, 2, pytest.approx(2 / 3))
    assert got[("all", "all")][3] == pytest.approx((a_days + d_days) / 2)
    assert got[("platform", "web")][:3] == (2, 2, 1.0)
    assert got[("platform", "ios")][:3] == (1, 0, 0.0)


def test_feature_usage_daily(warehouse):
    frame = query(
        warehouse,
        "select cast(usage_date as varchar), feature, persons, events"
        " from feature_usage order by 1",
    )
    assert list(frame.itertuples(index=False, name=None)) == [
        ("2026-03-02", "view_dashboard", 1, 1),
        ("2026-03-03", "view_dashboard", 1, 1),
    ]


def test_traffic_sources_first_touch_across_stitched_events(warehouse):
    frame = query(
        warehouse,
        "select channel, landing_event, persons, sessions, bounced_sessions, peak_hour,"
        " peak_hour_share from traffic_sources order by channel, landing_event",
    )
    assert list(frame.itertuples(index=False, name=None)) == [
        ("direct", "page_view", 1, 1, 1, 15, 1.0),  # c
        ("direct", "signup", 1, 3, 2, 10, pytest.approx(2 / 3)),  # d: 09:00-09:30, 03-09, 03-12
        ("organic_search", "page_view", 1, 2, 1, 12, 1.0),  # b
        ("paid", "page_view", 1, 3, 2, 10, pytest.approx(2 / 3)),  # a (anonymous first touch)
    ]
    conversions = query(
        warehouse,
        "select channel, landing_event, persons, converted_persons from"
        " traffic_source_conversions where funnel_name = 'f' order by channel, landing_event",
    )
    # only a bought within 7 days of signing up (d took 10 days)
    assert list(conversions.itertuples(index=False, name=None)) == [
        ("direct", "page_view", 1, 0),
        ("direct", "signup", 1, 0),
        ("organic_search", "page_view", 1, 0),
        ("paid", "page_view", 1, 1),
    ]


def test_cart_abandonment(warehouse):
    row = query(warehouse, "select * from abandonment where pair_name = 'cart'").iloc[0]
    # a's hat is bought 50 minutes later; b's shoe and hat never; d's shoe 3 days later (> 1d)
    assert (row.started, row.completed, row.abandoned) == (4, 1, 3)
    assert row.abandonment_rate == 0.75
    assert (row.started_persons, row.abandoning_persons) == (3, 2)
    assert row.abandoned_value == 55
    assert row.avg_abandoned_value == pytest.approx(55 / 3)
    assert row.avg_completed_value == 10
    assert row.median_seconds_to_complete == 3000
    items = query(
        warehouse,
        "select item_rank, item, started, abandoned, abandoned_value"
        " from abandoned_items order by item_rank",
    )
    assert list(items.itertuples(index=False, name=None)) == [
        (1, "shoe", 2, 2, 50.0),
        (2, "hat", 2, 1, 5.0),
    ]


def _snapshots(database):
    frame = query(
        database,
        "select cast(metric_date as varchar) as day, metric_name, metric_value, definition"
        " from metric_snapshots",
    )
    return {(r.day, r.metric_name): (r.metric_value, r.definition) for r in frame.itertuples()}


def test_daily_snapshots(warehouse):
    got = _snapshots(warehouse)
    assert {k[0] for k in got} == {
        "2026-03-02",
        "2026-03-03",
        "2026-03-09",
        "2026-03-12",
        "2026-03-16",
    }
    assert got[("2026-03-02", "active_users")][0] == 3
    assert got[("2026-03-02", "new_persons")][0] == 3
    assert got[("2026-03-02", "sessions")][0] == 4  # a: 2, b: 1, d: 1
    assert got[("2026-03-02", "revenue")][0] == 10
    assert got[("2026-03-12", "revenue")][0] == 30
    assert got[("2026-03-02", "funnel_conversion:f")][0] == pytest.approx(1 / 3)


def test_snapshots_keep_history_when_a_definition_changes(warehouse, tmp_path):
    """A second run with a 30-day window and a new day landed: only the newest day is recomputed
    (recompute_days 1), so 03-02 keeps the conversion under the 7-day window it was computed
    with."""
    database = tmp_path / "rerun.duckdb"
    shutil.copy(warehouse, database)
    land_events(database, _records([("c", None, "2026-03-17T09:00:00", "page_view", {})], "late"))
    build_or_fail(database, CONFIG % ("30d", 1), "+dim_users +fct_sessions +metric_snapshots")
    got = _snapshots(database)
    value, definition = got[("2026-03-02", "funnel_conversion:f")]
    assert value == pytest.approx(1 / 3) and "604800s" in definition
    assert got[("2026-03-17", "active_users")][0] == 1
    assert "2592000s" in got[("2026-03-17", "funnel_conversion:f")][1]


def test_a_persons_signup_is_their_first_signup_event(tmp_path):
    """Feature adoption reads the signup's breakdowns on the person's first signup event: by
    time, then by the smaller event_id at the same instant. p signs up twice at 03-02 10:00 (s1
    on android, s2 on ios) and again on 03-09 (web); q signs up once, on 03-10 (web)."""
    database = tmp_path / "signups.duckdb"
    records = [
        {
            "event_id": event_id,
            "event_name": name,
            "event_time": at,
            "user_id": person,
            "anonymous_id": None,
            "platform": platform,
            "properties": {},
        }
        for event_id, person, at, name, platform in [
            ("s2", "p", "2026-03-02T10:00:00", "signup", "ios"),
            ("s1", "p", "2026-03-02T10:00:00", "signup", "android"),
            ("v1", "p", "2026-03-03T10:00:00", "view_dashboard", "ios"),
            ("s3", "p", "2026-03-09T10:00:00", "signup", "web"),
            ("s4", "q", "2026-03-10T10:00:00", "signup", "web"),
        ]
    ]
    land_events(database, records)
    build_or_fail(database, CONFIG % ("7d", 3), "+dim_users +fct_sessions +feature_adoption")
    frame = query(
        database,
        "select cast(cohort_week as varchar) as week, segment_value, cohort_persons, adopters"
        " from feature_adoption where feature = 'view_dashboard' and segment_name = 'platform'"
        " order by week, segment_value",
    )
    assert list(frame.itertuples(index=False, name=None)) == [
        ("2026-03-02", "android", 1, 1),  # p: s1 at 10:00, the smaller id of the two
        ("2026-03-09", "web", 1, 0),  # q only: p's later signup is not a signup again
    ]
