"""The raw extract: one partition per UTC day, landed in ``raw.events`` and gated by the
``raw_events`` Great Expectations suite before anything downstream runs."""


import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import dagster as dg
import duckdb as duckdb_engine
import pandas as pd
import pyarrow as pa

from orchestration.ingest.contract import LANDING_COLUMNS, normalize, quarantine_counts
from orchestration.quality.expectations import validate, warm_up
from orchestration.resources import EventSourceResource, WarehouseResource, partition_start_date
from orchestration.warehouse_postgres import push_csv

daily_partitions = dg.DailyPartitionsDefinition(start_date=partition_start_date().isoformat())

# The same statements create the tables on a Postgres warehouse (DBT_TARGET=postgres): times stay
# `timestamp` (UTC, without time zone) as the contract lands them, varchar is Postgres' text.
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
    raw_record varchar,
    landing_id bigint
);
-- Warehouses created before landing ids: their rows keep a null landing_id (landed before any).
alter table raw.events add column if not exists landing_id bigint;
create table if not exists raw.landings (
    landing_id bigint not null,
    partition_date date not null,
    landed_at timestamp not null,
    records bigint not null,
    primary key (landing_id, partition_date)
);
"""
T = TypeVar("T")
GATE_NAME = "raw_events_expectations"
# The gate validates every landed row up to this many; beyond, a deterministic sample of about this
# many: every k-th row of each day, so each day weighs by its size
# (GX on pandas costs ~3.5 us a row).
GATE_MAX_ROWS = 200_000


def _days(context: dg.AssetExecutionContext) -> list[date]:
    window = context.partition_time_window
    start, end = window.start.date(), window.end.date()
    return [start + timedelta(days=i) for i in range((end - start).days)]


def land_days(duckdb: WarehouseResource, frames: Iterable[tuple[date, pd.DataFrame]]) -> int:
    """Replace each day's rows in ``raw.events`` with its frame, every day in one transaction:
    idempotent, and a failure anywhere (in the source, in normalizing, in DuckDB) lands nothing.
    Returns the landing's id.

    The transaction is one *landing*: its id, one more than any before, is taken inside it, under
    the warehouse's single writer (resources.WarehouseResource's file lock), so landing ids follow
    the order in which landings commit. Every row it writes carries the id, and ``raw.landings``
    gets a row per day, also for a day that now has no record. The incremental models read only
    the landings after the newest they hold (stg_raw__events, fct_events); ``ingested_at``, stamped
    when the run started fetching, cannot serve: two runs can commit in the other order.

    ``frames`` may be a generator that fetches each day as it is asked for: it is consumed inside
    the transaction, one day at a time, so that only a day or two is in memory at once.

    On a Postgres warehouse the same happens there (:func:`_land_days_postgres`)."""
    if duckdb.is_postgres:
        return _land_days_postgres(duckdb, frames)
    with duckdb.get_connection() as con:
        con.execute(RAW_EVENTS_DDL)
        con.execute("begin transaction")
        try:
            # A relation, not `register`: a registered table stays alive until the transaction
            # ends (at 40M records, all the run's days at once: +7 GB), while the relation lets
            # go of it when inserted.
            landing_id = _write_landing(
                # DuckDB's parameters are `?`.
                lambda sql, params: con.execute(sql.replace("%s", "?"), params),
                lambda rows: rows.insert_into("raw.events"),
                frames,
                con.from_arrow,
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            # dagster-duckdb closes the connection only when the block ends without an error; the
            # error's traceback would otherwise keep the file open in this process.
            con.close()
            raise
    return landing_id


def _land_days_postgres(
    warehouse: WarehouseResource, frames: Iterable[tuple[date, pd.DataFrame]]
) -> int:
    """:func:`land_days` on Postgres: one transaction, which first locks ``raw.landings`` against
    other landings (``share row exclusive`` conflicts with itself, not with readers), so that
    landing ids follow commit order there too; the rows go in by ``COPY``."""
    with warehouse.postgres_connection() as pg, duckdb_engine.connect(":memory:") as local:
        with pg.transaction():
            # Two sessions running `create ... if not exists` at once can both try to create;
            # the advisory lock makes the second wait and then find the tables.
            pg.execute("select pg_advisory_xact_lock(hashtext('raw.landings'))")
            pg.execute(RAW_EVENTS_DDL)
        with pg.transaction():
            pg.execute("lock table raw.landings in share row exclusive mode")
            return _write_landing(
                pg.execute,
                lambda rows: push_csv(pg, rows, "raw.events", [*LANDING_COLUMNS, "landing_id"]),
                frames,
                local.from_arrow,
            )


def _write_landing(
    execute: Callable[[str, list], Any],
    append: Callable[[Any], None],
    frames: Iterable[tuple[date, pd.DataFrame]],
    relation: Callable[[pa.Table], Any],
) -> int:
    """The landing's statements, in the caller's transaction on either warehouse: take the next
    landing id, then for each day delete its rows, record it in ``raw.landings`` and append the
    frame's rows with the id (``execute`` runs SQL with ``%s`` parameters and returns something
    to fetch from; ``relation`` makes a DuckDB relation of an Arrow table, and ``append`` writes
    one to ``raw.events``). Returns the landing id."""
    [(landing_id,)] = execute(
        "select coalesce(max(landing_id), 0) + 1 from raw.landings", []
    ).fetchall()
    for day, frame in frames:
        execute("delete from raw.events where partition_date = %s", [day])
        execute(
            "insert into raw.landings values (%s, %s, %s, %s)",
            [landing_id, day, datetime.now(UTC).replace(tzinfo=None), len(frame)],
        )
        # Through Arrow: pandas' str columns are Arrow already, so DuckDB reads them without
        # touching a Python object per value.
        table = pa.Table.from_pandas(frame[list(LANDING_COLUMNS)], preserve_index=False)
        append(relation(table).project(f"*, {landing_id}::bigint"))
        del table
    return landing_id


def land_day(duckdb: WarehouseResource, day: date, frame: pd.DataFrame) -> int:
    """Replace the day's rows in ``raw.events`` with ``frame`` in one transaction (idempotent)."""
    return land_days(duckdb, [(day, frame)])


def prepared_ahead(days: list[date], prepare: Callable[[date], T]) -> Iterator[tuple[date, T]]:
    """``(day, prepare(day))`` for each day in order, preparing the next day in a worker thread
    while the caller handles this one: fetching and normalizing a day (Python) then overlaps with
    landing the one before (DuckDB, which releases the GIL). Calls to ``prepare`` never overlap."""
    if not days:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepare-day") as pool:
        pending = pool.submit(prepare, days[0])
        for day, following in zip(days, [*days[1:], None], strict=True):
            result = pending.result()
            if following is not None:
                pending = pool.submit(prepare, following)
            yield day, result


@dg.asset(
    pool="duckdb_writer",
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
    duckdb: WarehouseResource,
):
    warm_up()  # the gate's import of Great Expectations, while the days land
    source = event_source.get_source()
    ingested_at = datetime.now(UTC)
    days = _days(context)
    per_day = max(GATE_MAX_ROWS // max(len(days), 1), 1)
    rows = valid_rows = 0
    quarantined: dict[str, int] = {}
    gate_frames: list[pd.DataFrame] = []
    preview: list[pd.DataFrame] = []

    def fetched(day: date) -> pd.DataFrame:
        return normalize(
            source.fetch_day(day), source=source.name, fetch_day=day, ingested_at=ingested_at
        )

    def counted(frames: Iterator[tuple[date, pd.DataFrame]]) -> Iterator[tuple[date, pd.DataFrame]]:
        """The frames as they are landed, counting rows and reasons and keeping the gate's rows."""
        nonlocal rows, valid_rows
        for day, frame in frames:
            rows += len(frame)
            for reason, count in quarantine_counts(frame).items():
                quarantined[reason] = quarantined.get(reason, 0) + count
            valid = frame["quarantine_reason"].isna()
            valid_rows += int(valid.sum())
            if sum(len(p) for p in preview) < 10:
                preview.append(frame[valid].head(10))
            step = -(-len(frame) // per_day)  # ceil: 1 keeps every row
            gate_frames.append(frame.iloc[::step].copy() if step > 1 else frame)
            yield day, frame

    landing_id = land_days(duckdb, counted(prepared_ahead(days, fetched)))
    landing = pd.concat(gate_frames, ignore_index=True) if gate_frames else pd.DataFrame(
        columns=list(LANDING_COLUMNS)
    )
    sampled = len(landing) < rows
    gate = validate(landing, "raw_events")
    description = gate.describe()
    if sampled:
        description += (
            f" (on a deterministic sample: every k-th row of each day, {len(landing)} of"
            f" {rows} landed rows; quarantine counts are exact)"
        )
    context.log.info(description)
    head = pd.concat(preview, ignore_index=True).head(10) if preview else landing.head(0)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "valid_events": valid_rows,
            "quarantined_events": sum(quarantined.values()),
            "quarantined_by_reason": quarantined,
            "days": len(days),
            "landing_id": landing_id,
            "source": source.name,
            "preview": dg.MetadataValue.md(
                head.drop(columns=["raw_record", "quarantine_reason"]).to_markdown(index=False)
            ),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=GATE_NAME,
                passed=gate.success,
                severity=dg.AssetCheckSeverity.ERROR,
                description=description,
                metadata={
                    "evaluated_expectations": gate.evaluated,
                    "failed_expectations": json.dumps(
                        [f.__dict__ for f in gate.failures], default=str
                    ),
                    "rows_validated": len(landing),
                    "rows_landed": rows,
                    "sampled": sampled,
                },
            )
        ],
    )
