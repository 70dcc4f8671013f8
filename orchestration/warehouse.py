"""Writing and reading the Python assets' tables in the DuckDB warehouse.

Every Python asset that writes a table (learning, experiments) declares its columns as a
``dagster.TableSchema``; :func:`replace_table` writes exactly those columns, cast to their types,
so a table has the same shape whether or not there were rows, and a rerun replaces it whole.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

SCHEMA = "main"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def replace_table(
    duckdb: DuckDBResource, name: str, frame: pd.DataFrame, schema: dg.TableSchema
) -> int:
    """Replace ``main.<name>`` with ``frame``'s columns of ``schema``, cast to their types
    (idempotent: a rerun writes the same table). Returns the row count."""
    columns = schema.columns
    frame = frame.reindex(columns=[c.name for c in columns])
    select = ", ".join(f"cast({quote(c.name)} as {c.type}) as {quote(c.name)}" for c in columns)
    with duckdb.get_connection() as con:
        con.register("python_asset_result", frame)
        try:
            con.execute(
                f"create or replace table {SCHEMA}.{quote(name)} as "
                f"select {select} from python_asset_result"
            )
        finally:
            con.unregister("python_asset_result")
    return len(frame)


def read_sql(duckdb: DuckDBResource, sql: str, params: list | None = None) -> pd.DataFrame:
    with duckdb.get_connection() as con:
        return con.execute(sql, params or []).df()
