"""The weekly schedule: which week a Monday tick reports, which marts it refreshes, and the one
switch that turns the schedules on or off."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from orchestration.jobs import schedule_status
from orchestration.reporting.schedules import (
    REFRESH_SELECTION,
    REPORT_KEYS,
    last_complete_week,
    weekly_report_schedule,
)


def tick(local: datetime, instance=None, repository_def=None) -> dg.RunRequest:
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=local, repository_def=repository_def
    )
    return weekly_report_schedule(context)


@pytest.mark.parametrize(
    ("zone", "week"),
    [
        ("UTC", "2026-10-19"),
        ("Europe/Berlin", "2026-10-19"),  # 07:00 UTC Monday: last week has ended
        ("America/Los_Angeles", "2026-10-19"),  # 15:00 UTC Monday
        ("Pacific/Auckland", "2026-10-12"),  # 19:00 UTC Sunday: last week is not over in UTC
    ],
)
def test_monday_0800_reports_the_last_complete_utc_week(zone, week):
    request = tick(datetime(2026, 10, 26, 8, 0, tzinfo=ZoneInfo(zone)))
    assert request.partition_key == week
    assert request.run_key == f"weekly-report-{week}"  # the scheduler launches a week once


def test_last_complete_week_on_sunday_night_and_monday_midnight():
    assert last_complete_week(
        datetime(2026, 10, 25, 23, 59, tzinfo=ZoneInfo("UTC"))
    ).isoformat() == ("2026-10-12")
    assert last_complete_week(datetime(2026, 10, 26, 0, 0, tzinfo=ZoneInfo("UTC"))).isoformat() == (
        "2026-10-19"
    )


def test_a_tick_before_the_first_complete_week_is_skipped():
    assert isinstance(tick(datetime(2026, 9, 1, 8, tzinfo=ZoneInfo("UTC"))), dg.SkipReason)


def test_only_stale_marts_are_rebuilt_before_the_report():
    from orchestration.definitions import defs

    repository = defs.get_repository_def()
    refresh = REFRESH_SELECTION.resolve(repository.asset_graph)
    assert dg.AssetKey("raw_events") not in refresh and dg.AssetKey("fct_events") in refresh
    assert not refresh & set(REPORT_KEYS)
    monday = datetime(2026, 10, 26, 8, tzinfo=ZoneInfo("UTC"))
    with dg.instance_for_test() as instance:  # a schedule reads a persistent instance
        check_stale_selection(instance, repository, refresh, monday)


def check_stale_selection(instance, repository, refresh, monday):

    # Nothing built yet: every mart is stale.
    request = tick(monday, instance, repository)
    assert set(request.asset_selection) == refresh | set(REPORT_KEYS)

    # Everything built after the last landing: only the report runs.
    for key in [dg.AssetKey("raw_events"), *repository.asset_graph.toposorted_asset_keys]:
        if key in refresh or key == dg.AssetKey("raw_events"):
            instance.report_runless_asset_event(dg.AssetMaterialization(key))
    assert tick(monday, instance, repository).asset_selection == REPORT_KEYS

    # One mart is rebuilt: what is downstream of it is stale, the rest is not.
    instance.report_runless_asset_event(dg.AssetMaterialization("fct_events"))
    stale = set(tick(monday, instance, repository).asset_selection) - set(REPORT_KEYS)
    assert {dg.AssetKey("funnel_conversion"), dg.AssetKey("dim_users")} <= stale
    assert not {dg.AssetKey("fct_events"), dg.AssetKey("quarantined_events")} & stale


def test_one_switch_sets_both_schedules():
    assert schedule_status("on") == dg.DefaultScheduleStatus.RUNNING
    assert schedule_status("OFF") == dg.DefaultScheduleStatus.STOPPED
    with pytest.raises(ValueError, match="ANALYTICS_SCHEDULES"):
        schedule_status("sometimes")
    from orchestration.definitions import defs

    statuses = {s.name: s.default_status for s in defs.schedules}
    assert statuses == {
        "daily_analytics_pipeline": schedule_status(),
        "weekly_report_schedule": schedule_status(),
    }
    assert weekly_report_schedule.cron_schedule == "0 8 * * 1"
