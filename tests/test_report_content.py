"""The weekly report's numbers, worked out by hand on tiny marts.

``report_marts()`` is also used by the chart, render and delivery tests, so every layer is checked
against the same hand-computed answers (written next to the rows that produce them).
"""

from __future__ import annotations

import json
from datetime import date, datetime

import pandas as pd
import pytest

from orchestration.reporting.content import build_report_data

WEEK = date(2026, 9, 14)  # a Monday; the previous week starts 2026-09-07

# Hand-computed answers for report_marts() and WEEK.
ACTIVE_USERS = (4, 2)  # p1 p2 p5 p6 this week; p1 p4 the week before
NEW_PERSONS = (3, 2)  # p2 p5 p6; p1 p4
REVENUE = (15.0, 20.0)  # 10.5 + "4.5"; 20
D7 = (9 / 40, 8 / 20)  # cohorts of 2026-09-07 (3/10 and 6/30) vs 2026-08-31 (8/20)
SIGNUP_CONVERSION = 0.3
CHECKOUT_CONVERSION = 0.4


def _event(event_id, name, when, person, properties=None):
    return {
        "event_id": event_id,
        "event_name": name,
        "event_time": datetime.fromisoformat(when),
        "person_id": person,
        "session_id": f"s-{person}",
        "platform": "web",
        "country": "DE",
        "properties": None if properties is None else json.dumps(properties),
    }


def report_marts() -> dict[str, pd.DataFrame]:
    events = pd.DataFrame(
        [
            # this week [2026-09-14, 2026-09-21)
            _event("e1", "page_view", "2026-09-14 10:00:00", "p1"),
            _event("e2", "purchase", "2026-09-15 12:00:00", "p1", {"revenue": 10.5}),
            _event("e3", "purchase", "2026-09-20 23:59:59", "p2", {"revenue": "4.5"}),
            _event("e4", "purchase", "2026-09-16 08:00:00", "p2", {"sku": "x"}),  # no revenue
            _event("e5", "purchase", "2026-09-16 09:00:00", "p5"),  # properties null
            # not a purchase, so its revenue does not count
            _event("e6", "page_view", "2026-09-17 09:00:00", "p6", {"revenue": 100}),
            # next week: outside
            _event("e7", "purchase", "2026-09-21 00:00:00", "p3", {"revenue": 999}),
            # previous week [2026-09-07, 2026-09-14)
            _event("e8", "page_view", "2026-09-08 10:00:00", "p1"),
            _event("e9", "purchase", "2026-09-09 10:00:00", "p4", {"revenue": 20}),
            _event("e10", "page_view", "2026-09-13 23:59:59", "p4"),
        ]
    )
    users = pd.DataFrame(
        {
            "person_id": ["p1", "p4", "p2", "p5", "p6", "p3"],
            "first_seen_at": pd.to_datetime(
                [
                    "2026-09-08 10:00:00",
                    "2026-09-09 10:00:00",
                    "2026-09-14 00:00:00",
                    "2026-09-20 23:00:00",
                    "2026-09-16 01:00:00",
                    "2026-09-21 00:00:00",
                ]
            ),
        }
    )
    funnel_rows = []
    for name, steps in {
        "signup": [("visit", 100, None), ("signup", 40, 60), ("activate", 30, 10)],
        "checkout": [("cart", 50, None), ("pay", 45, 5), ("done", 20, 25)],
    }.items():
        start = steps[0][1]
        previous = start
        for index, (step, users_at, dropped) in enumerate(steps, start=1):
            funnel_rows.append(
                {
                    "funnel_name": name,
                    "step_index": index,
                    "step_name": step,
                    "segment_name": "all",
                    "segment_value": "all",
                    "users": users_at,
                    "conversion_from_start": users_at / start,
                    "conversion_from_previous": users_at / previous,
                    "dropped_off": dropped,
                    "median_seconds_from_start": 60.0 * index,
                }
            )
            previous = users_at
    # A segment row with a larger drop must not win: only 'all' rows count.
    funnel_rows.append(
        {
            "funnel_name": "signup",
            "step_index": 2,
            "step_name": "signup",
            "segment_name": "platform",
            "segment_value": "ios",
            "users": 5,
            "conversion_from_start": 0.01,
            "conversion_from_previous": 0.01,
            "dropped_off": 500,
            "median_seconds_from_start": 1.0,
        }
    )
    retention_rows = []

    def cohort(granularity, start, users_n, retained_by_period, complete_upto):
        for period, retained in retained_by_period.items():
            retention_rows.append(
                {
                    "granularity": granularity,
                    "cohort_start": pd.Timestamp(start),
                    "period_number": period,
                    "cohort_users": users_n,
                    "retained_users": retained,
                    "retained_users_unbounded": retained,
                    "retention_rate": retained / users_n,
                    "is_complete": period <= complete_upto,
                }
            )

    # Report week: its day 7 is not complete yet, so D7 falls back to 2026-09-07's cohorts.
    cohort("day", "2026-09-14", 50, {0: 50, 7: 1}, complete_upto=0)
    cohort("day", "2026-09-07", 10, {0: 10, 1: 5, 7: 3}, complete_upto=7)
    cohort("day", "2026-09-10", 30, {0: 30, 7: 6}, complete_upto=7)
    cohort("day", "2026-08-31", 20, {0: 20, 7: 8}, complete_upto=7)
    # Week granularity must not leak into D7.
    cohort("week", "2026-09-07", 999, {0: 999, 1: 900}, complete_upto=1)
    cohort("week", "2026-08-31", 100, {0: 100, 1: 40, 2: 25}, complete_upto=2)
    cohort("week", "2026-09-14", 80, {0: 80, 1: 70}, complete_upto=0)

    days = pd.date_range("2026-07-01", "2026-09-30", freq="D")
    active = pd.DataFrame(
        {
            "activity_date": days.date,
            "dau": [10 + i % 7 for i in range(len(days))],
            "wau": [50 + i for i in range(len(days))],
            "mau": [200 + 2 * i for i in range(len(days))],
        }
    )
    active["stickiness"] = active["dau"] / active["mau"]
    return {
        "fct_events": events,
        "dim_users": users,
        "funnel_conversion": pd.DataFrame(funnel_rows),
        "retention_cohorts": pd.DataFrame(retention_rows),
        "active_users": active,
    }


def test_headlines_are_the_hand_computed_numbers():
    data = build_report_data(WEEK, report_marts())
    assert data.week_end == date(2026, 9, 21)
    assert data.week_label == "2026-09-14 to 2026-09-20"

    active = data.headline("active_users")
    assert (active.value, active.previous) == ACTIVE_USERS
    assert active.change == pytest.approx(1.0) and active.format_change() == "+100.0%"

    new = data.headline("new_persons")
    assert (new.value, new.previous) == NEW_PERSONS
    assert new.change == pytest.approx(0.5)

    rev = data.headline("revenue")
    assert (rev.value, rev.previous) == pytest.approx(REVENUE)
    assert rev.format_value() == "15.00" and rev.format_change() == "-25.0%"

    d7 = data.headline("d7_retention")
    assert (d7.value, d7.previous) == pytest.approx(D7)
    assert d7.format_value() == "22.5%" and d7.format_change() == "-17.5 pp"
    assert "2026-09-07 to 2026-09-13" in d7.note and "latest week" in d7.note

    signup = data.headline("funnel_conversion:signup")
    assert signup.value == pytest.approx(SIGNUP_CONVERSION) and signup.previous is None
    assert "all data to date" in signup.note
    assert data.headline("funnel_conversion:checkout").value == pytest.approx(CHECKOUT_CONVERSION)
    assert data.summary_metadata()["revenue"] == pytest.approx(15.0)


def test_d7_uses_the_report_week_when_its_day_7_is_complete():
    data = build_report_data(date(2026, 9, 7), report_marts())
    d7 = data.headline("d7_retention")
    assert (d7.value, d7.previous) == pytest.approx(D7)
    assert "latest week" not in d7.note


def test_d7_is_none_when_no_week_is_complete():
    marts = report_marts()
    marts["retention_cohorts"] = marts["retention_cohorts"].assign(is_complete=False)
    d7 = build_report_data(WEEK, marts).headline("d7_retention")
    assert d7.value is None and d7.format_value() == "n/a"


def test_biggest_drop_off_uses_all_rows_only():
    data = build_report_data(WEEK, report_marts())
    drop = data.biggest_drop_off
    assert (drop.funnel_name, drop.step_index, drop.dropped_off) == ("signup", 2, 60)
    assert drop.previous_step_name == "visit"
    assert drop.conversion_from_previous == pytest.approx(0.4)
    per_funnel = {d.funnel_name: (d.step_name, d.dropped_off) for d in data.drop_offs_by_funnel}
    assert per_funnel == {"checkout": ("done", 25), "signup": ("signup", 60)}


def test_optional_sections_are_empty_without_inputs_and_filtered_with_them():
    data = build_report_data(WEEK, report_marts())
    assert data.ux_recommendations == [] and data.experiments == []

    recs = pd.DataFrame({"recommendation": ["c", "a", "b", "d"], "priority": [3, 1, 2, 4]})
    experiments = pd.DataFrame(
        {
            "experiment": ["new_checkout", "dark_mode", "pricing"],
            "metric": ["conversion", "retention", "revenue"],
            "variant": ["B", "B", "C"],
            "relative_lift": [0.12, 0.01, -0.08],
            "p_value": [0.004, 0.4, 0.049],
        }
    )
    data = build_report_data(WEEK, report_marts(), ux_recommendations=recs, experiments=experiments)
    assert data.ux_recommendations == ["a", "b", "c"]
    assert [e.experiment for e in data.experiments] == ["new_checkout", "pricing"]
    assert data.experiments[0].relative_lift == pytest.approx(0.12)

    flagged = experiments.assign(significant=[False, True, False])
    data = build_report_data(
        WEEK, report_marts(), experiments=flagged, ux_recommendations=["only one"]
    )
    assert [e.experiment for e in data.experiments] == ["dark_mode"]
    assert data.ux_recommendations == ["only one"]

    ranked = pd.DataFrame({"rank": [2, 1], "recommendation": ["second", "first"]})
    data = build_report_data(WEEK, report_marts(), ux_recommendations=ranked)
    assert data.ux_recommendations == ["first", "second"]


def test_week_start_must_be_a_monday():
    with pytest.raises(ValueError, match="Monday"):
        build_report_data(date(2026, 9, 15), report_marts())
