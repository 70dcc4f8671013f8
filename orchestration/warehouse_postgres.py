"""Moving tables between a Postgres warehouse and the in-process DuckDB that the Python assets
compute in (``DBT_TARGET=postgres``; docs/production.md, "The Python assets on Postgres").

Both directions go through Postgres' ``COPY`` in CSV, which both engines read and write to the
same rules: an unquoted empty field is NULL and ``""`` is the empty string, text with commas,
quotes or line breaks is quoted, and times and numbers are in their ISO and shortest exact forms.
Reading row by row through the driver would be exact too, but converts each value to a Python
object and back (minutes at the bench's 40M events); ``COPY`` streams bytes, and DuckDB parses
them with the column types taken from Postgres' result description. DuckDB's own postgres
extension would do this without a file, but is downloaded at run time, which these machines
cannot do.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Postgres type OIDs (pg_type.oid, fixed for the built-in types) -> the DuckDB type to read as.
# numeric becomes DOUBLE, as the DuckDB warehouse computes the same columns; anything not
# listed (intervals, arrays, json) is read as its text.
DUCKDB_TYPE_OF_OID = {
    16: "BOOLEAN",
    20: "BIGINT",
    21: "SMALLINT",
    23: "INTEGER",
    700: "FLOAT",
    701: "DOUBLE",
    1700: "DOUBLE",
    1082: "DATE",
    1114: "TIMESTAMP",
    1184: "TIMESTAMPTZ",
}
# The column types the Python assets declare (dagster.TableSchema, DuckDB names) -> Postgres.
POSTGRES_TYPE_OF = {
    "VARCHAR": "text",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
}
SESSION_SETTINGS = "set datestyle = 'ISO, YMD'; set timezone = 'UTC'"


def ident(name: str) -> str:
    """A quoted identifier (the same rule in both engines)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


@contextmanager
def _scratch_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="warehouse-copy-") as folder:
        yield Path(folder) / "copy.csv"


def relation_exists(pg: Any, schema: str, name: str) -> bool:
    return pg.execute("select to_regclass(%s) is not null", [qualified(schema, name)]).fetchone()[0]


def pull(pg: Any, duck: Any, query: str, target: str) -> None:
    """Create the DuckDB table ``target`` (qualified) holding the rows of Postgres ``query``, with
    the column types of its result."""
    with pg.cursor() as cur:
        cur.execute(f"select * from ({query}) as pulled limit 0")
        columns = {
            column.name: DUCKDB_TYPE_OF_OID.get(column.type_code, "VARCHAR")
            for column in cur.description
        }
        with _scratch_file() as path:
            with path.open("wb") as out, cur.copy(f"copy ({query}) to stdout (format csv)") as copy:
                for chunk in copy:
                    out.write(chunk)
            duck.execute(
                f"create or replace table {target} as select * from read_csv(?, header = false,"
                " auto_detect = false, quote = '\"', escape = '\"', delim = ',',"
                " allow_quoted_nulls = false, columns = ?)",
                [str(path), columns],
            )


def push_csv(pg: Any, duck_relation: Any, table: str, columns: list[str]) -> None:
    """Append a DuckDB relation's rows to the Postgres table ``table`` (qualified) by ``COPY``,
    in the caller's transaction."""
    with _scratch_file() as path:
        duck_relation.write_csv(str(path), header=False)
        statement = f"copy {table} ({', '.join(map(ident, columns))}) from stdin (format csv)"
        with pg.cursor() as cur, cur.copy(statement) as copy, path.open("rb") as rows:
            while chunk := rows.read(1 << 20):
                copy.write(chunk)


def replace_table(
    pg: Any, duck_relation: Any, schema: str, name: str, columns: list[tuple[str, str]]
) -> None:
    """Replace ``schema.name`` with the relation's rows under the declared ``(column, DuckDB
    type)`` list, in one transaction: readers see the old table or the new one, never none."""
    unknown = sorted({t for _, t in columns if t.upper() not in POSTGRES_TYPE_OF})
    if unknown:
        raise ValueError(f"{name}: no Postgres type for the declared types {unknown}")
    table = qualified(schema, name)
    definition = ", ".join(f"{ident(c)} {POSTGRES_TYPE_OF[t.upper()]}" for c, t in columns)
    with pg.transaction():
        pg.execute(f"create schema if not exists {ident(schema)}")
        pg.execute(f"drop table if exists {table}")
        pg.execute(f"create table {table} ({definition})")
        push_csv(pg, duck_relation, table, [c for c, _ in columns])
