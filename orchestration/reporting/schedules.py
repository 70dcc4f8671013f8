"""The weekly report's job and schedule: Monday 08:00 in ``REPORT_TIMEZONE``, bring the stale marts
up to date, then build and deliver the last complete week's report.

``weekly_report_job`` holds everything built from the raw extract (dbt models, learning tables,
experiments: all unpartitioned) plus the weekly report assets. The raw extract itself is daily
partitioned and lands on the daily schedule; a job has one partitioning, so it is not in here.
Each tick selects only the marts that are stale (see ``stale_keys``) and the report's three
assets for the week; ``run_key`` makes the scheduler launch a week once.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from orchestration import settings
from orchestration.ingest.assets import raw_events
from orchestration.jobs import SCHEDULES_STATUS, WAREHOUSE_RUN_TAGS
from orchestration.reporting.assets import (
    REPORT_SELECTION,
    weekly_partitions,
    weekly_report_assets,
)

# Every asset built from the raw extract, i.e. every unpartitioned mart, except the report.
REFRESH_SELECTION = dg.AssetSelection.assets(raw_events).downstream(include_self=False) - (
    REPORT_SELECTION
)
REPORT_KEYS = [key for assets_def in weekly_report_assets for key in assets_def.keys]

weekly_report_job = dg.define_asset_job(
    name="weekly_report_job",
    selection=REFRESH_SELECTION | REPORT_SELECTION,
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_RUN_TAGS,
    description="Rebuild the stale marts, then build the week's report and deliver it to Slack "
    "and e-mail.",
)


def last_complete_week(moment: datetime) -> date:
    """The Monday of the latest UTC week (Monday to Sunday) that ended at or before ``moment``.

    The marts' times are UTC, so weeks are UTC weeks whatever the schedule's time zone: Monday
    08:00 in Berlin (06:00 or 07:00 UTC) reports the week that ended hours before; Monday 08:00 in
    Auckland is still Sunday in UTC, so it reports the week before that, the last one complete.
    """
    day = moment.astimezone(UTC).date()
    return day - timedelta(days=day.weekday()) - timedelta(days=7)


def stale_keys(
    instance: dg.DagsterInstance, asset_graph, candidates: Iterable[dg.AssetKey]
) -> list[dg.AssetKey]:
    """The candidates never materialized, or materialized before one of their parents was (or
    whose parent is itself stale), in the graph's order."""
    candidates = set(candidates)
    keys = set(candidates)
    for key in candidates:
        keys |= set(asset_graph.get(key).parent_keys)
    records = instance.get_latest_materialization_events(keys)
    when = {key: (record.timestamp if record else None) for key, record in records.items()}
    stale: list[dg.AssetKey] = []
    for key in asset_graph.toposorted_asset_keys:
        if key not in candidates:
            continue
        mine = when.get(key)
        if mine is None or any(
            parent in stale or (when.get(parent) or 0) > mine
            for parent in asset_graph.get(key).parent_keys
        ):
            stale.append(key)
    return stale


@dg.schedule(
    job=weekly_report_job,
    cron_schedule="0 8 * * 1",
    execution_timezone=settings.get("REPORT_TIMEZONE") or "UTC",
    name="weekly_report_schedule",
    default_status=SCHEDULES_STATUS,
    description="Mondays 08:00 in REPORT_TIMEZONE (default UTC): rebuild the stale marts, then "
    "build and send the report of the last complete week.",
)
def weekly_report_schedule(context: dg.ScheduleEvaluationContext):
    week = last_complete_week(context.scheduled_execution_time)
    first = date.fromisoformat(weekly_partitions.get_first_partition_key())
    if week < first:
        return dg.SkipReason(f"no complete week since the partitions start ({first})")
    selection = None  # without the graph, refresh everything (safe: the builds are idempotent)
    try:
        repository = context.repository_def  # given by the daemon; optional when tested
    except dg.DagsterInvariantViolationError:
        repository = None
    if repository is not None:
        graph = repository.asset_graph
        refresh = REFRESH_SELECTION.resolve(graph)
        selection = [*stale_keys(context.instance, graph, refresh), *REPORT_KEYS]
    return dg.RunRequest(
        run_key=f"weekly-report-{week.isoformat()}",
        partition_key=week.isoformat(),
        asset_selection=selection,
    )
