"""Running the real graph in tests: the project's own assets, resources and checks, with the
event source and warehouse pointed at test data."""

from __future__ import annotations

from datetime import date
from typing import Any

import dagster as dg
import duckdb
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.resources import EventSourceResource

# The spine: the raw extract and the core marts (the file-based tests' small logs do not hold the
# configured funnels' steps, which the metric marts rightly refuse).
CORE = dg.AssetSelection.assets(
    "raw_events", "fct_events", "fct_sessions", "dim_users", "quarantined_events"
).upstream()


def materialize_days(
    first: date,
    last: date,
    source: EventSourceResource,
    selection: Any = None,
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInJobResult:
    from orchestration.definitions import defs
    from orchestration.jobs import PIPELINE_SELECTION
    from orchestration.resources import build_resources

    return dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        resources={**build_resources(), "event_source": source},
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        # Everything daily by default: the weekly report has its own partitions.
        selection=PIPELINE_SELECTION if selection is None else selection,
        instance=instance,
        raise_on_error=False,
    )


def query(path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def materialized_keys(result: dg.ExecuteInJobResult) -> set[str]:
    return {
        e.event_specific_data.materialization.asset_key.to_user_string()
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    }


def check_evaluations(result: dg.ExecuteInJobResult) -> dict[str, Any]:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
