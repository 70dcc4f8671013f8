"""Jobs and schedules."""

import dagster as dg

from orchestration.ingest.assets import daily_partitions

# Everything, from the raw extract to the last mart, in one run so that a failed gate stops
# what is downstream of it. Run in-process: DuckDB has one writer, and on two cores the
# multiprocess executor's start-up costs more than it saves.
analytics_pipeline = dg.define_asset_job(
    name="analytics_pipeline",
    selection=dg.AssetSelection.all(),
    partitions_def=daily_partitions,
    executor_def=dg.in_process_executor,
    description="Land the day's raw events, gate them, then rebuild every model downstream.",
)

daily_schedule = dg.build_schedule_from_partitioned_job(
    analytics_pipeline,
    hour_of_day=2,
    name="daily_analytics_pipeline",
    description="Each day at 02:00 UTC: land yesterday's events and rebuild the marts.",
)
