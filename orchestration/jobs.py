"""Jobs and schedules."""

from datetime import timedelta

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration import settings
from orchestration.ingest.assets import daily_partitions
from orchestration.reporting.assets import REPORT_SELECTION


def schedule_status(value: str | None = None) -> dg.DefaultScheduleStatus:
    """``ANALYTICS_SCHEDULES`` (on by default; ``make dev`` sets it off unless told otherwise):
    whether the schedules start running when the definitions load. The one switch for all of
    them; the UI can still turn each one on or off."""
    value = (settings.get("ANALYTICS_SCHEDULES") if value is None else value).strip().lower()
    if value in {"on", "true", "1", "yes"}:
        return dg.DefaultScheduleStatus.RUNNING
    if value in {"off", "false", "0", "no"}:
        return dg.DefaultScheduleStatus.STOPPED
    raise ValueError(f"ANALYTICS_SCHEDULES must be on or off, not {value!r}")


SCHEDULES_STATUS = schedule_status()

# DuckDB has one writer: a process that holds the file open read-write locks every other process
# out ("Could not set lock on file ... Conflicting lock is held"). Two settings keep parallel work
# safe (docs/production.md, "Concurrency"):
# - every asset and check that opens the warehouse is in the concurrency pool WAREHOUSE_POOL, and
#   the instance (dagster.yaml: `concurrency: pools: default_limit: 1, granularity: op`) lets one
#   step of that pool run at a time across all runs, however they were launched;
# - runs of the jobs below carry WAREHOUSE_RUN_TAGS, and the run queue (dagster.yaml:
#   `concurrency: runs: tag_concurrency_limits`) starts one such run at a time, so a backfill
#   launched one run per partition waits in the queue instead of failing.
WAREHOUSE_POOL = "duckdb_writer"
WAREHOUSE_RUN_TAGS = {"analytics/warehouse": "duckdb"}

# Everything from the raw extract to the last mart, in one run so that a failed gate stops what
# is downstream of it; the weekly report is not in it (a job has one partitioning: see
# orchestration/reporting/schedules.py). Run in-process: the pool would serialize the steps anyway,
# and on two cores the multiprocess executor's start-up costs more than it saves.
PIPELINE_SELECTION = dg.AssetSelection.all() - REPORT_SELECTION
analytics_pipeline = dg.define_asset_job(
    name="analytics_pipeline",
    selection=PIPELINE_SELECTION,
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_RUN_TAGS,
    description="Land the day's raw events, gate them, then rebuild every model downstream.",
)


def lookback_range(scheduled_day, lookback_days: int) -> tuple[str, str]:
    """The partition range a daily run re-lands: the ``lookback_days`` days up to yesterday, so
    that events arriving late at the vendor are picked up (landing a day again replaces it)."""
    end = scheduled_day - timedelta(days=1)
    start = end - timedelta(days=max(lookback_days, 1) - 1)
    return start.isoformat(), end.isoformat()


@dg.schedule(
    job=analytics_pipeline,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    name="daily_analytics_pipeline",
    default_status=SCHEDULES_STATUS,
    description="Each day at 02:00 UTC: re-land the last ANALYTICS_LOOKBACK_DAYS days (default 3) "
    "and rebuild the marts.",
)
def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    lookback = int(settings.get("ANALYTICS_LOOKBACK_DAYS") or 3)
    start, end = lookback_range(context.scheduled_execution_time.date(), lookback)
    return dg.RunRequest(
        run_key=f"daily-{end}",
        tags={ASSET_PARTITION_RANGE_START_TAG: start, ASSET_PARTITION_RANGE_END_TAG: end},
    )
