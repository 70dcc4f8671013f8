"""The warehouse resource: which warehouse the environment names, and the Postgres transport's
round trip of every value the Python assets write and read (orchestration/warehouse_postgres.py).
"""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from orchestration import warehouse
from orchestration.resources import TableSlice, WarehouseResource, sql_text, warehouse_resource
from tests.postgres import PostgresDatabase

# Values that a CSV transport could get wrong: the empty string against null, quotes, commas and
# line breaks in text, infinities and NaN, booleans, microseconds, dates.
AWKWARD = pd.DataFrame(
    {
        "text": ["", None, 'a "quoted", multi\nline value', "plain"],
        "number": [math.inf, -math.inf, math.nan, 0.1 + 0.2],
        "whole": [1, None, -(2**40), 0],
        "flag": [True, False, None, True],
        "moment": [
            datetime(2026, 9, 1, 10, 0, 0, 123456),
            None,
            datetime(1999, 12, 31, 23, 59, 59),
            datetime(2026, 9, 2),
        ],
        "day": [date(2026, 9, 1), None, date(2000, 2, 29), date(2026, 9, 2)],
    }
)
SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn("text", "VARCHAR"),
        dg.TableColumn("number", "DOUBLE"),
        dg.TableColumn("whole", "BIGINT"),
        dg.TableColumn("flag", "BOOLEAN"),
        dg.TableColumn("moment", "TIMESTAMP"),
        dg.TableColumn("day", "DATE"),
    ]
)


def _postgres_warehouse(database: PostgresDatabase, schema: str = "analytics") -> WarehouseResource:
    return WarehouseResource(
        database="/nonexistent/never-opened.duckdb",
        target="postgres",
        postgres_host=database.host,
        postgres_port=database.port,
        postgres_user=database.user,
        postgres_password=database.password or None,
        postgres_dbname=database.dbname,
        postgres_schema=schema,
    )


def test_the_environment_names_the_warehouse_and_the_password_stays_an_env_var(monkeypatch):
    monkeypatch.setenv("DBT_TARGET", "postgres")
    monkeypatch.setenv("DBT_POSTGRES_HOST", "db.internal")
    monkeypatch.setenv("DBT_POSTGRES_SCHEMA", "product")
    monkeypatch.setenv("DBT_POSTGRES_PASSWORD", "s3cret-value")
    resource = warehouse_resource()
    assert resource.is_postgres and resource.models_schema == "product"
    assert resource.postgres_host == "db.internal"
    assert isinstance(resource.postgres_password, dg.EnvVar)
    assert "s3cret-value" not in repr(resource) and "s3cret-value" not in resource.identity

    monkeypatch.setenv("DBT_TARGET", "duckdb")
    assert not warehouse_resource().is_postgres


def test_another_target_or_a_duckdb_connection_on_postgres_is_refused():
    with pytest.raises(ValueError, match="DBT_TARGET='snowflake'"):
        WarehouseResource(database=":memory:", target="snowflake").is_postgres  # noqa: B018
    on_postgres = WarehouseResource(database=":memory:", target="postgres")
    with pytest.raises(RuntimeError, match="the warehouse is Postgres"):
        with on_postgres.get_connection():
            pass


@pytest.mark.postgres
def test_a_table_written_to_postgres_reads_back_the_same(postgres_database, tmp_path):
    on_postgres = _postgres_warehouse(postgres_database)
    on_duckdb = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    for resource in (on_postgres, on_duckdb):
        assert warehouse.replace_table(resource, "awkward", AWKWARD, SCHEMA) == 4
        assert warehouse.replace_table(resource, "awkward", AWKWARD, SCHEMA) == 4  # replaced
    with postgres_database.connect() as con:
        stored = con.execute(
            "select text is null, text, whole from analytics.awkward order by whole nulls first"
        ).fetchall()
    assert stored == [(True, None, None), (False, 'a "quoted", multi\nline value', -(2**40)),
                      (False, "plain", 0), (False, "", 1)]

    read = {
        resource.target: warehouse.read_sql(
            resource, "select * from main.awkward order by whole", reads=["awkward"]
        )
        for resource in (on_postgres, on_duckdb)
    }
    pd.testing.assert_frame_equal(read["postgres"], read["duckdb"])
    text = read["postgres"]["text"]
    assert text.iloc[:3].tolist() == ['a "quoted", multi\nline value', "plain", ""]
    assert pd.isna(text.iloc[3])
    number = read["postgres"]["number"]
    assert math.isnan(number.iloc[0]) and number.iloc[1] == 0.1 + 0.2
    assert number.iloc[2:].tolist() == [math.inf, -math.inf]


@pytest.mark.postgres
def test_reading_leaves_out_a_table_that_is_not_built(postgres_database):
    on_postgres = _postgres_warehouse(postgres_database)
    warehouse.replace_table(on_postgres, "awkward", AWKWARD, SCHEMA)
    with on_postgres.reading("awkward", "not_built_yet") as con:
        names = [n for (n,) in con.execute("select table_name from duckdb_tables()").fetchall()]
    assert names == ["awkward"]


@pytest.mark.postgres
def test_a_slice_copies_only_its_columns_and_rows(postgres_database, tmp_path):
    on_postgres = _postgres_warehouse(postgres_database)
    on_duckdb = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    part = TableSlice("awkward", ("whole", "day"), "day >= date '2026-09-01'")
    for resource in (on_postgres, on_duckdb):
        warehouse.replace_table(resource, "awkward", AWKWARD, SCHEMA)
    with on_postgres.reading(part) as con:
        copied = con.execute("select * from main.awkward order by whole").fetchall()
    assert copied == [(0, date(2026, 9, 2)), (1, date(2026, 9, 1))]
    # On DuckDB the reader reads the table itself: the slice is the reader's to apply.
    with on_duckdb.reading(part) as con:
        assert con.execute("select count(*) from main.awkward").fetchall() == [(4,)]


@pytest.mark.postgres
def test_a_slice_column_can_be_computed_by_postgres(postgres_database):
    on_postgres = _postgres_warehouse(postgres_database)
    warehouse.replace_table(on_postgres, "awkward", AWKWARD, SCHEMA)
    kept = ", ".join(map(sql_text, ["plain", "it's"]))
    text_of_kept = ("text", f"case when text in ({kept}) then text end")
    with on_postgres.reading(TableSlice("awkward", ("whole", text_of_kept))) as con:
        copied = con.execute("select whole, text from main.awkward order by whole").fetchall()
    assert copied == [(-(2**40), None), (0, "plain"), (1, None), (None, None)]


@pytest.mark.postgres
def test_copies_from_postgres_go_to_a_scratch_file_that_is_deleted(postgres_database):
    on_postgres = _postgres_warehouse(postgres_database)
    warehouse.replace_table(on_postgres, "awkward", AWKWARD, SCHEMA)
    with on_postgres.reading("awkward") as con:
        (path,) = con.execute(
            "select path from duckdb_databases() where database_name = current_database()"
        ).fetchone()
        assert path and Path(path).is_file()
        assert con.execute("select count(*) from main.awkward").fetchone() == (4,)
    assert not Path(path).exists()
