"""The raw extract: one partition per UTC day, landed in ``raw.events`` and gated by the
``raw_events`` Great Expectations suite before anything downstream runs."""


import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from orchestration.ingest.contract import LANDING_COLUMNS, normalize, quarantine_counts
from orchestration.quality.expectations import validate
from orchestration.resources import EventSourceResource, partition_start_date

daily_partitions = dg.DailyPartitionsDefinition(start_date=partition_start_date().isoformat())

RAW_EVENTS_DDL = """
create schema if not exists raw;
create table if not exists raw.events (
    event_id varchar,
    event_name varchar,
    event_time timestamp,
    user_id varchar,
    anonymous_id varchar,
    session_id varchar,
    platform varchar,
    country varchar,
    properties varchar,
    source varchar,
    ingested_at timestamp,
    partition_date date,
    quarantine_reason varchar,
    raw_record varchar
);
"""
GATE_NAME = "raw_events_expectations"


def _days(context: dg.AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + timedelta(days=i) for i in range((end - start).days)]


def land_day(duckdb: DuckDBResource, day: date, frame: pd.DataFrame) -> None:
    """Replace the day's rows in ``raw.events`` with ``frame`` in one transaction (idempotent)."""
    with duckdb.get_connection() as con:
        con.execute(RAW_EVENTS_DDL)
        con.execute("begin transaction")
        try:
            con.execute("delete from raw.events where partition_date = ?", [day])
            con.register("landing", frame[list(LANDING_COLUMNS)])
            con.execute(f"insert into raw.events select {', '.join(LANDING_COLUMNS)} from landing")
            con.unregister("landing")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise


@dg.asset(
    key="raw_events",
    group_name="ingest",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    kinds={"python", "duckdb"},
    check_specs=[
        dg.AssetCheckSpec(
            GATE_NAME,
            asset="raw_events",
            blocking=True,
            description="Great Expectations suite expectations/raw_events.json on the landed days.",
        )
    ],
    description="Every record the source delivered for the day, normalized to the event contract; "
    "contract breakers kept with a quarantine_reason.",
)
def raw_events(
    context: dg.AssetExecutionContext,
    event_source: EventSourceResource,
    duckdb: DuckDBResource,
):
    source = event_source.get_source()
    ingested_at = datetime.now(UTC)
    landed: list[pd.DataFrame] = []
    for day in _days(context):
        frame = normalize(source.fetch_day(day), source=source.name, fetch_day=day,
                          ingested_at=ingested_at)
        land_day(duckdb, day, frame)
        landed.append(frame)
    landing = pd.concat(landed, ignore_index=True) if landed else pd.DataFrame(
        columns=list(LANDING_COLUMNS)
    )
    quarantined = quarantine_counts(landing)
    gate = validate(landing, "raw_events")
    context.log.info(gate.describe())
    valid = landing[landing["quarantine_reason"].isna()]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(landing),
            "valid_events": len(valid),
            "quarantined_events": sum(quarantined.values()),
            "quarantined_by_reason": quarantined,
            "days": len(landed),
            "source": source.name,
            "preview": dg.MetadataValue.md(
                valid.head(10).drop(columns=["raw_record", "quarantine_reason"]).to_markdown(index=False)
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_NAME,
                passed=gate.success,
                severity=dg.AssetCheckSeverity.ERROR,
                description=gate.describe(),
                metadata={
                    "evaluated_expectations": gate.evaluated,
                    "failed_expectations": json.dumps(
                        [f.__dict__ for f in gate.failures], default=str
                    ),
                    "rows_validated": len(landing),
                },
            )
        ],
    )
