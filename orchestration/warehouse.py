"""Writing and reading the Python assets' tables in the warehouse (DuckDB, or Postgres on the
``postgres`` target: see resources.WarehouseResource).

Every Python asset that writes a table (learning, experiments) declares its columns as a
``dagster.TableSchema``; :func:`replace_table` writes exactly those columns, cast to their types,
so a table has the same shape whether or not there were rows, and a rerun replaces it whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg
import duckdb as duckdb_engine
import pandas as pd

from orchestration import warehouse_postgres
from orchestration.resources import WarehouseResource

SCHEMA = "main"


def quote(identifier: str) -> str:
    return warehouse_postgres.ident(identifier)


def replace_table(
    duckdb: WarehouseResource, name: str, frame: pd.DataFrame, schema: dg.TableSchema
) -> int:
    """Replace ``main.<name>`` (on Postgres: ``<postgres_schema>.<name>``) with ``frame``'s columns
    of ``schema``, cast to their types (idempotent: a rerun writes the same table). Returns the
    row count."""
    columns = schema.columns
    frame = frame.reindex(columns=[c.name for c in columns])
    select = ", ".join(f"cast({quote(c.name)} as {c.type}) as {quote(c.name)}" for c in columns)
    if duckdb.is_postgres:
        with duckdb_engine.connect(":memory:") as con, duckdb.postgres_connection() as pg:
            con.register("python_asset_result", frame)
            warehouse_postgres.replace_table(
                pg,
                con.sql(f"select {select} from python_asset_result"),
                duckdb.postgres_schema,
                name,
                [(c.name, c.type) for c in columns],
            )
        return len(frame)
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


def read_sql(
    duckdb: WarehouseResource, sql: str, params: list | None = None, reads: Sequence[str] = ()
) -> pd.DataFrame:
    """``sql`` (DuckDB's dialect) as a DataFrame; ``reads`` names the tables it reads as
    ``main.<table>`` (what is copied from a Postgres warehouse)."""
    with duckdb.reading(*reads) as con:
        return con.execute(sql, params or []).df()
