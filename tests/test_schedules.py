"""The daily schedule re-lands a lookback window of days, in one run."""

from datetime import UTC, datetime

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.jobs import daily_schedule


def _request(monkeypatch, lookback):
    if lookback is None:
        monkeypatch.delenv("ANALYTICS_LOOKBACK_DAYS", raising=False)
    else:
        monkeypatch.setenv("ANALYTICS_LOOKBACK_DAYS", str(lookback))
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
    )
    return daily_schedule(context)


def test_default_lookback_is_three_days_up_to_yesterday(monkeypatch):
    request = _request(monkeypatch, None)
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2026-09-28"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2026-09-30"
    assert request.run_key == "daily-2026-09-30"


def test_lookback_of_one_day_lands_only_yesterday(monkeypatch):
    request = _request(monkeypatch, 1)
    assert request.tags[ASSET_PARTITION_RANGE_START_TAG] == "2026-09-30"
    assert request.tags[ASSET_PARTITION_RANGE_END_TAG] == "2026-09-30"
