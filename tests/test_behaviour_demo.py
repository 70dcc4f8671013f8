"""The demo's planted acquisition mix, seen in traffic_sources, and every behaviour mart built from
the demo with the repository's config/analytics.yml, with its UI headline and chart."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestration.ingest.demo import CHANNELS, DemoConfig, generate
from orchestration.metrics.reports import REPORTS
from orchestration.metrics_config import DEFAULT_CONFIG_PATH, load_config
from tests.metrics_dbt import build_or_fail, land_events, query

BEHAVIOUR_MARTS = (
    "+dim_users +fct_sessions +top_paths +path_transitions +path_drop_offs +lifecycle"
    " +feature_usage +feature_adoption +traffic_sources +traffic_source_conversions"
    " +metric_snapshots +abandonment +abandoned_items"
)
PLANTED = {"paid" if c == "paid_search" else c: share for c, (share, *_) in CHANNELS.items()}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    database = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    records = generate(DemoConfig(persons=1500, days=28)).drop(columns=["day"])
    land_events(database, records.to_dict("records"))
    build_or_fail(database, DEFAULT_CONFIG_PATH.read_text(), BEHAVIOUR_MARTS)
    return database


def test_first_touch_channels_recover_the_planted_mix(demo):
    frame = query(demo, "select channel, sum(persons) as persons from traffic_sources group by 1")
    shares = dict(zip(frame.channel, frame.persons / frame.persons.sum(), strict=True))
    assert set(shares) == set(PLANTED)
    for channel, share in PLANTED.items():
        assert shares[channel] == pytest.approx(share, abs=0.04), channel


def test_feature_usage_counts_each_days_persons_and_events(demo):
    """feature_usage against pandas over fct_events: per UTC day and configured feature, the
    distinct persons and the events."""
    events = query(demo, "select person_id, event_name, event_time from fct_events")
    features = load_config().behaviour.features.events
    used = events[events["event_name"].isin(features)].assign(
        usage_date=lambda f: f["event_time"].dt.date.astype(str)
    )
    expected = (
        used.groupby(["usage_date", "event_name"])
        .agg(persons=("person_id", "nunique"), events=("person_id", "size"))
        .reset_index()
        .rename(columns={"event_name": "feature"})
        .sort_values(["usage_date", "feature"], ignore_index=True)
    )
    got = query(
        demo,
        "select cast(usage_date as varchar) as usage_date, feature, persons, events"
        " from feature_usage order by 1, 2",
    )
    assert len(expected) > 20
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def _period_start(times: pd.Series, grain: str) -> pd.Series:
    days = times.dt.normalize()
    return days - pd.to_timedelta(days.dt.weekday, unit="D") if grain == "week" else days


def test_lifecycle_counts_each_periods_persons(demo):
    """lifecycle against pandas over fct_events and dim_users: per granularity and period, the
    active persons split into new, returning and resurrecting, and the dormant ones."""
    config = load_config().behaviour.lifecycle
    events = query(demo, "select person_id, event_name, event_time from fct_events")
    first_seen = query(demo, "select person_id, first_seen_at from dim_users").set_index(
        "person_id"
    )["first_seen_at"]
    active_events = events if config.event == "any" else events[events.event_name == config.event]
    rows = []
    for grain in config.granularities:
        step = pd.Timedelta(days=7 if grain == "week" else 1)
        active = (
            active_events.assign(period=_period_start(active_events["event_time"], grain))
            .groupby("period")["person_id"]
            .agg(set)
        )
        first = _period_start(first_seen, grain)
        bounds = _period_start(events["event_time"].agg(["min", "max"]), grain)
        for period in pd.date_range(bounds["min"], bounds["max"], freq=step):
            now, before = active.get(period, set()), active.get(period - step, set())
            new = {person for person in now if first[person] == period}
            rows.append(
                (
                    grain,
                    str(period.date()),
                    len(new),
                    len((now - new) & before),
                    len(now - new - before),
                    len(before - now),
                    len(now),
                )
            )
    columns = [
        "granularity",
        "period_start",
        "new",
        "returning",
        "resurrecting",
        "dormant",
        "active",
    ]
    expected = pd.DataFrame(rows, columns=columns).sort_values(columns[:2], ignore_index=True)
    got = query(
        demo,
        "select granularity, cast(period_start as varchar) as period_start, new_persons as new,"
        " returning_persons as returning, resurrecting_persons as resurrecting,"
        " dormant_persons as dormant, active_persons as active from lifecycle order by 1, 2",
    )
    assert set(config.granularities) == {"day", "week"} and len(expected) > 30
    assert expected[["returning", "resurrecting", "dormant"]].gt(0).any().all()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_onboarding_journey_and_drop_offs(demo):
    top = query(
        demo, "select path from top_paths where journey_name = 'after_signup' and path_rank = 1"
    ).path.iloc[0]
    assert top.startswith("signup > verify_email")
    dropped = query(
        demo, "select sum(persons) from path_drop_offs where funnel_name = 'onboarding'"
    )
    levels = query(
        demo,
        "select count(*) from int_funnel_levels where funnel_name = 'onboarding' and level < 5",
    )
    assert dropped.iloc[0, 0] == levels.iloc[0, 0]


@pytest.mark.parametrize(
    "mart",
    [
        "top_paths",
        "lifecycle",
        "traffic_sources",
        "feature_adoption",
        "abandonment",
        "metric_snapshots",
    ],
)
def test_every_behaviour_mart_has_a_headline_and_a_chart(demo, mart):
    report = REPORTS[mart](query(demo, f"select * from {mart}"))
    assert report.headline
    assert report.chart_markdown.startswith("![")
