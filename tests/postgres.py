"""PostgreSQL for the tests: a throwaway database per test, and the helpers that put the landed
DuckDB ``raw.events`` into Postgres and read tables back in a comparable form.

Registered from tests/conftest.py (``pytest_plugins``). The server is ``TEST_POSTGRES_URL``
(default ``postgresql://postgres@127.0.0.1:5432/postgres``, the CI server; the user must be allowed
to create databases). When it cannot be reached, the tests that need it are skipped with the reason,
unless ``REQUIRE_POSTGRES=1`` (set by ``.ci/run``), which turns that skip into a failure.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import duckdb
import pytest

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CONNECT_TIMEOUT_SECONDS = 3


@dataclass(frozen=True)
class PostgresDatabase:
    """One database on the test server: its URL and the parts dbt's profile takes separately."""

    url: str
    host: str
    port: int
    user: str
    password: str
    dbname: str

    def connect(self, **kwargs: Any):
        import psycopg

        return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_SECONDS, **kwargs)

    def dbt_env(self, schema: str = "analytics") -> dict[str, str]:
        """The variables profiles.yml's ``postgres`` output reads."""
        return {
            "DBT_TARGET": "postgres",
            "DBT_POSTGRES_HOST": self.host,
            "DBT_POSTGRES_PORT": str(self.port),
            "DBT_POSTGRES_USER": self.user,
            "DBT_POSTGRES_PASSWORD": self.password,
            "DBT_POSTGRES_DBNAME": self.dbname,
            "DBT_POSTGRES_SCHEMA": schema,
        }


def server_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL") or DEFAULT_SERVER_URL


def _database_url(url: str, dbname: str) -> str:
    """The server URL with another database (Dagster and SQLAlchemy want a URL, not key=value)."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{dbname}"))


def _require() -> bool:
    return os.environ.get("REQUIRE_POSTGRES", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The reachable server's admin URL, or a skip (a failure under REQUIRE_POSTGRES=1)."""
    url = server_url()
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as con:
            con.execute("select 1")
    except Exception as error:  # not installed, refused, auth, timeout: all mean "not reachable"
        message = (
            f"PostgreSQL not reachable at {_redacted(url)} (set TEST_POSTGRES_URL): "
            f"{type(error).__name__}: {str(error).strip()}"
        )
        if _require():
            pytest.fail(f"{message} -- REQUIRE_POSTGRES=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    return url


@contextmanager
def temporary_database(server: str) -> Iterator[PostgresDatabase]:
    """A new, empty database ``pa_test_<random>`` on the server, dropped on exit."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    dbname = f"pa_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS) as con:
        con.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    info = conninfo_to_dict(server)
    database = PostgresDatabase(
        url=_database_url(server, dbname),
        host=str(info.get("host") or "127.0.0.1"),
        port=int(info.get("port") or 5432),
        user=str(info.get("user") or os.environ.get("PGUSER") or "postgres"),
        password=str(info.get("password") or ""),
        dbname=dbname,
    )
    try:
        yield database
    finally:
        with psycopg.connect(
            server, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
        ) as con:
            # FORCE (PostgreSQL 13+): Dagster's and dbt's pools may still hold connections.
            con.execute(
                sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname))
            )


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[PostgresDatabase]:
    """A database of its own for the test (parallel-safe, repeatable), dropped afterwards."""
    with temporary_database(postgres_server) as database:
        yield database


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


# --- DuckDB landing table -> Postgres -------------------------------------------------------------

_PG_TYPES = {
    "VARCHAR": "text",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "DATE": "date",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
}


def copy_table_to_postgres(
    duckdb_path: Path, database: PostgresDatabase, table: str = "raw.events"
) -> int:
    """Copy a DuckDB table into the same schema and name in Postgres (columns, types, rows)."""
    from psycopg import sql

    schema, name = table.split(".")
    with duckdb.connect(str(duckdb_path), read_only=True) as source:
        columns = source.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = ? and table_name = ? order by ordinal_position",
            [schema, name],
        ).fetchall()
        rows = source.execute(f"select * from {schema}.{name}").fetchall()
    unknown = [t for _, t in columns if t not in _PG_TYPES]
    assert not unknown, f"no Postgres type for DuckDB types {unknown}"
    with database.connect() as con:
        con.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(schema)))
        con.execute(
            sql.SQL("create table {}.{} ({})").format(
                sql.Identifier(schema),
                sql.Identifier(name),
                sql.SQL(", ").join(
                    sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_PG_TYPES[t]))
                    for c, t in columns
                ),
            )
        )
        copy = sql.SQL("copy {}.{} ({}) from stdin").format(
            sql.Identifier(schema),
            sql.Identifier(name),
            sql.SQL(", ").join(sql.Identifier(c) for c, _ in columns),
        )
        with con.cursor() as cur, cur.copy(copy) as writer:
            for row in rows:
                writer.write_row(row)
    return len(rows)


# --- Comparing tables across warehouses -----------------------------------------------------------


def _canonical(value: Any) -> Any:
    """Numbers as float (bigint, numeric and double differ by adapter). Timestamps stay the
    datetimes both drivers return, which hold microseconds (both warehouses' precision)."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return float(value)
    return value


def _sort_key(row: tuple) -> tuple:
    # Floats rounded for ordering only; equality is checked with a tolerance afterwards.
    return tuple(
        (0, "") if v is None else (1, round(v, 9)) if isinstance(v, float) else (1, v) for v in row
    )


def canonical_rows(rows: list[tuple]) -> list[tuple]:
    return sorted((tuple(_canonical(v) for v in row) for row in rows), key=_sort_key)


def duckdb_rows(path: Path, relation: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute(f"select * from {relation}")
        return [d[0] for d in cursor.description], canonical_rows(cursor.fetchall())


def postgres_rows(database: PostgresDatabase, relation: str) -> tuple[list[str], list[tuple]]:
    with database.connect() as con:
        cursor = con.execute(f"select * from {relation}")
        return [d.name for d in cursor.description], canonical_rows(cursor.fetchall())


def without_columns(columns: list[str], rows: list[tuple], dropped: set[str]) -> list[tuple]:
    """``rows`` without the values of the ``dropped`` columns (``columns`` names them in order)."""
    kept = [i for i, column in enumerate(columns) if column not in dropped]
    return [tuple(row[i] for i in kept) for row in rows]


def row_differences(left: list[tuple], right: list[tuple], tolerance: float = 1e-9) -> list[str]:
    """Human-readable differences between two canonical row lists (empty when they match)."""
    if len(left) != len(right):
        return [f"row counts differ: {len(left)} != {len(right)}"]
    problems = []
    for index, (a, b) in enumerate(zip(left, right, strict=True)):
        for column, (x, y) in enumerate(zip(a, b, strict=True)):
            same = (
                math.isclose(x, y, rel_tol=0, abs_tol=tolerance)
                if isinstance(x, float) and isinstance(y, float)
                else x == y
            )
            if not same:
                problems.append(f"row {index}, column {column}: {x!r} != {y!r}\n  {a}\n  {b}")
                break
        if len(problems) >= 5:
            break
    return problems
