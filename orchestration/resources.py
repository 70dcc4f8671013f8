"""Resources: the warehouse, dbt, and the event source, all configured from the environment.

This module is the one environment switch: which source is read, where DuckDB lives, which dbt
target builds. Secrets are passed as ``EnvVar`` so that Dagster shows their names, never values.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import dagster as dg
import duckdb
import pandas as pd
import psycopg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from filelock import FileLock, Timeout

from orchestration import settings
from orchestration.ingest.sources import EventSource, build_source
from orchestration.ingest.vendors import SECRET_FIELDS, VENDOR_SETTINGS
from orchestration.transform.project import dbt_project
from orchestration.warehouse_postgres import (
    SESSION_SETTINGS,
    ident,
    pull,
    qualified,
    relation_exists,
)


class EventSourceResource(dg.ConfigurableResource):
    """The event source that ``ANALYTICS_SOURCE`` names; see orchestration/ingest/sources.py.

    Vendor secrets are fields set from ``EnvVar`` (the UI shows the variable's name, never its
    value). A vendor's other settings (project id, region, base URL, dates) are not secret and are
    read from the environment when the source is built, by the same names (VENDOR_SETTINGS).
    """

    kind: str = "demo"
    path: str | None = None
    format: str = "events"
    demo_persons: int | None = None
    demo_days: int | None = None
    demo_start: str | None = None
    demo_activity: str | None = None
    mixpanel_api_secret: str | None = None
    amplitude_api_key: str | None = None
    amplitude_secret_key: str | None = None
    posthog_personal_api_key: str | None = None

    def get_source(self) -> EventSource:
        env = {
            name: value
            for name, value in os.environ.items()
            if name.startswith(("ANALYTICS_", "MIXPANEL_", "AMPLITUDE_", "POSTHOG_"))
        }
        env.update({"ANALYTICS_SOURCE": self.kind, "ANALYTICS_SOURCE_FORMAT": self.format})
        optional = {
            "ANALYTICS_SOURCE_PATH": self.path,
            "DEMO_PERSONS": self.demo_persons,
            "DEMO_DAYS": self.demo_days,
            "DEMO_START": self.demo_start,
            "DEMO_ACTIVITY": self.demo_activity,
        }
        for vendor, fields in SECRET_FIELDS.items():
            for field in fields:
                optional[VENDOR_SETTINGS[vendor][field]] = getattr(self, f"{vendor}_{field}")
        env.update({k: str(v) for k, v in optional.items() if v is not None})
        return build_source(env)


def _optional_env(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if settings.get(name) else None


def event_source_resource() -> EventSourceResource:
    secrets = {
        f"{vendor}_{field}": _optional_env(VENDOR_SETTINGS[vendor][field])
        for vendor, fields in SECRET_FIELDS.items()
        for field in fields
    }
    return EventSourceResource(
        kind=dg.EnvVar("ANALYTICS_SOURCE"),
        path=_optional_env("ANALYTICS_SOURCE_PATH"),
        format=settings.get("ANALYTICS_SOURCE_FORMAT") or "events",
        demo_persons=dg.EnvVar.int("DEMO_PERSONS") if settings.get("DEMO_PERSONS") else None,
        demo_days=dg.EnvVar.int("DEMO_DAYS") if settings.get("DEMO_DAYS") else None,
        demo_start=_optional_env("DEMO_START"),
        demo_activity=_optional_env("DEMO_ACTIVITY"),
        **{name: value for name, value in secrets.items() if value is not None},
    )


WAREHOUSE_LOCK_WAIT = "Waiting for the warehouse lock"


class WarehouseLockTimeout(RuntimeError):
    """The DuckDB warehouse's lock was not free within ``lock_timeout_seconds``."""


class TableSlice(NamedTuple):
    """The part of a table that a reader uses, for :meth:`WarehouseResource.reading`: on a
    Postgres warehouse only these columns (all when empty) and the rows ``where`` keeps are
    copied. A column is a name, or a ``(name, SQL)`` pair whose value is copied under that name
    (say, a JSON column only on the rows that need it). On DuckDB the reader reads the table
    itself and must select, compute and filter in its own queries, so a slice must keep all that
    its reader's queries ask for. ``where`` and the SQL of a pair are run by Postgres; values in
    them are the caller's, or quoted with :func:`sql_text`."""

    table: str
    columns: tuple[str | tuple[str, str], ...] = ()
    where: str = ""

    def query(self, relation: str) -> str:
        columns = ", ".join(
            ident(c) if isinstance(c, str) else f"{c[1]} as {ident(c[0])}" for c in self.columns
        )
        return f"select {columns or '*'} from {relation}" + (
            f" where {self.where}" if self.where else ""
        )


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal (the same rule in DuckDB and Postgres)."""
    return "'" + value.replace("'", "''") + "'"


class WarehouseResource(DuckDBResource):
    """The warehouse the Python assets read the models from and write their tables to.

    On the default ``duckdb`` target that is the DuckDB file dbt builds in (``database``). On the
    ``postgres`` target (``target="postgres"``, the same ``DBT_TARGET`` and ``DBT_POSTGRES_*``
    variables dbt's profile reads) it is Postgres: the ingest lands ``raw.events`` there, and the
    Python assets still compute in DuckDB, in memory, on copies of the tables they name
    (:meth:`reading`), and write their results back (``orchestration.warehouse.replace_table``).
    So one resource key, ``duckdb``, serves both: DuckDB is the Python assets' engine either way.

    On DuckDB, one more guarantee than dagster-duckdb's: one process at a time has the file open.
    The pool ``duckdb_writer`` (dagster.yaml) is what schedules the warehouse steps: a step waits
    for its one slot, visibly, before it starts. But Dagster 1.13's SQL storage grants a slot by
    checking and then claiming in separate statements (``has_unassigned_slots`` then
    ``_claim_concurrency_slot``), so two steps that ask at the same instant can both get it; CI met
    that once in tests/test_concurrency.py. DuckDB would then refuse the second process ("Could not
    set lock on file"): dagster-duckdb retries its connect for about 100 s, dbt not at all. So
    every connection, and the dbt build (``exclusive``), also holds an OS file lock beside the
    database (``<database>.lock``, through the ``filelock`` library): uncontended, as the pool
    normally sees to, it costs a system call; in the race, the second step waits here and says so.
    The lock is per process and re-entrant (``thread_local=False``): DuckDB lets connections in one
    process share the file, so a step's nested or threaded connections never wait on themselves.
    The wait has a limit, ``lock_timeout_seconds`` (``WAREHOUSE_LOCK_TIMEOUT``, default an hour):
    a holder that never lets go (a hung build) fails the waiting step with a clear error instead
    of stalling every run behind it.
    """

    target: str = "duckdb"
    lock_timeout_seconds: float = 3600.0
    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_user: str = "postgres"
    postgres_password: str | None = None
    postgres_dbname: str = "postgres"
    postgres_schema: str = "analytics"
    postgres_sslmode: str = "prefer"

    @property
    def is_postgres(self) -> bool:
        if self.target not in ("duckdb", "postgres"):
            raise ValueError(
                f"DBT_TARGET={self.target!r}: the Python assets read and write a DuckDB or a"
                " Postgres warehouse; another dbt target needs its own transport"
                " (docs/production.md)"
            )
        return self.target == "postgres"

    @property
    def identity(self) -> str:
        """Which warehouse this is, for caches keyed by it (never holds the password)."""
        if self.is_postgres:
            return (
                f"postgres://{self.postgres_host}:{self.postgres_port}/{self.postgres_dbname}"
                f"/{self.postgres_schema}"
            )
        return self.database

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """At the end of each run: let go of the inputs the run's learning assets shared
        (``learning.tables.once_per_run``: at 40M events, the event log alone is over a gigabyte),
        instead of holding them until another run of the same process asks for its own, as
        ``make run``'s report run and the bench's daily run would."""
        from orchestration.learning.tables import forget_run_inputs  # it imports this module

        forget_run_inputs()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if (
            self.is_postgres
            or self.database in ("", ":memory:")
            or self.database.startswith("md:")
        ):
            yield
            return
        lock = FileLock(f"{self.database}.lock", thread_local=False, is_singleton=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log = dg.get_dagster_logger()
            log.info(f"{WAREHOUSE_LOCK_WAIT}: another process has {self.database} open")
            started = time.monotonic()
            try:
                lock.acquire(timeout=self.lock_timeout_seconds)
            except Timeout:
                raise WarehouseLockTimeout(
                    f"waited {self.lock_timeout_seconds:g} s for the warehouse lock"
                    f" ({self.database}.lock): another process of this project (a run's dbt build"
                    " or step) still holds it. Stop that run, or raise WAREHOUSE_LOCK_TIMEOUT"
                ) from None
            log.info(f"Got the warehouse lock after {time.monotonic() - started:.1f} s")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def get_connection(self) -> Iterator:
        """The DuckDB warehouse itself. On Postgres there is none to hand out: read through
        :meth:`reading` and write through ``orchestration.warehouse``."""
        if self.is_postgres:
            raise RuntimeError(
                "the warehouse is Postgres (DBT_TARGET=postgres): read tables through"
                " WarehouseResource.reading() and write them through orchestration.warehouse"
            )
        with self.exclusive(), super().get_connection() as connection:
            yield connection

    @contextmanager
    def postgres_connection(self) -> Iterator:
        """A psycopg connection to the Postgres warehouse, in UTC and ISO dates."""
        with psycopg.connect(
            host=self.postgres_host,
            port=self.postgres_port,
            user=self.postgres_user,
            password=self.postgres_password or None,
            dbname=self.postgres_dbname,
            sslmode=self.postgres_sslmode,
            connect_timeout=10,
            application_name="product-analytics",
        ) as con:
            con.execute(SESSION_SETTINGS)
            con.commit()
            yield con

    @property
    def models_schema(self) -> str:
        """The schema the dbt models are built in (and the Python assets' tables written to)."""
        return self.postgres_schema if self.is_postgres else "main"

    @contextmanager
    def querying(self) -> Iterator[Callable[[str], pd.DataFrame]]:
        """A function that runs a query on the warehouse itself and returns its rows as a
        DataFrame: SQL both engines read, relations qualified with :attr:`models_schema`. On
        Postgres the rows come through DuckDB, so the column types are the ones :meth:`reading`
        gives."""
        if not self.is_postgres:
            with self.get_connection() as con:
                yield lambda sql: con.execute(sql).df()
            return
        with self._scratch() as local, self.postgres_connection() as pg:

            def run(sql: str) -> pd.DataFrame:
                pull(pg, local, sql, "main.query_result")
                return local.execute("select * from main.query_result").df()

            yield run

    @contextmanager
    def _scratch(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """On Postgres, the DuckDB that the Python assets' copies go to: a file of its own, deleted
        afterwards, not ``:memory:``. In a file, DuckDB stores a large copy compressed and reads
        it back page by page within its memory limit; in memory it holds the copy whole, beside
        what the asset computes from it (the learning event log of 9.9M events peaked at 1,552 to
        1,560 MiB with the copy in memory, 1,234 to 1,292 MiB with it in a file)."""
        with tempfile.TemporaryDirectory(prefix="warehouse-scratch-") as folder:
            path = str(Path(folder) / "scratch.duckdb")
            with duckdb.connect(path, config=dict(self.connection_config)) as con:
                yield con

    @contextmanager
    def reading(self, *tables: str | TableSlice) -> Iterator:
        """A DuckDB connection in which each of ``tables`` (models or the Python assets' tables)
        reads as ``main.<table>``.

        On DuckDB that is the warehouse itself. On Postgres it is an in-memory DuckDB holding a
        copy of each table that exists in ``postgres_schema`` (a table not built yet is absent,
        as it would be in the DuckDB warehouse), or of the part of it that a :class:`TableSlice`
        names; what is written to it is thrown away."""
        if not self.is_postgres:
            with self.get_connection() as con:
                yield con
            return
        with self._scratch() as con:
            with self.postgres_connection() as pg:
                for wanted in tables:
                    part = wanted if isinstance(wanted, TableSlice) else TableSlice(wanted)
                    if relation_exists(pg, self.postgres_schema, part.table):
                        pull(
                            pg,
                            con,
                            part.query(qualified(self.postgres_schema, part.table)),
                            f"main.{ident(part.table)}",
                        )
            yield con


def warehouse_resource() -> WarehouseResource:
    """The warehouse as the environment sets it: ``DBT_TARGET`` and, on ``postgres``, the same
    ``DBT_POSTGRES_*`` variables as dbt's profile (dbt_project/profiles.yml), with its defaults;
    the password as an ``EnvVar``, so the UI shows the variable's name, never its value."""
    postgres = {}
    if settings.get("DBT_TARGET") == "postgres":
        postgres = {
            "postgres_host": settings.get("DBT_POSTGRES_HOST"),
            "postgres_port": int(settings.get("DBT_POSTGRES_PORT")),
            "postgres_user": settings.get("DBT_POSTGRES_USER"),
            "postgres_dbname": settings.get("DBT_POSTGRES_DBNAME"),
            "postgres_schema": settings.get("DBT_POSTGRES_SCHEMA"),
            "postgres_sslmode": settings.get("DBT_POSTGRES_SSLMODE"),
        }
        password = _optional_env("DBT_POSTGRES_PASSWORD")
        if password is not None:
            postgres["postgres_password"] = password
    return WarehouseResource(
        database=dg.EnvVar("DUCKDB_DATABASE"),
        connection_config={"memory_limit": settings.get("DUCKDB_MEMORY_LIMIT")},
        target=settings.get("DBT_TARGET"),
        lock_timeout_seconds=float(settings.get("WAREHOUSE_LOCK_TIMEOUT")),
        **postgres,
    )


def dbt_executable() -> str:
    """dbt from this interpreter's environment, so that no one needs to activate the venv."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def build_resources() -> dict[str, object]:
    return {
        "duckdb": warehouse_resource(),
        "dbt": DbtCliResource(
            project_dir=dbt_project,
            target=settings.get("DBT_TARGET"),
            dbt_executable=dbt_executable(),
        ),
        "event_source": event_source_resource(),
    }


def partition_start_date() -> date:
    return date.fromisoformat(settings.get("ANALYTICS_START_DATE"))


def yesterday() -> date:
    return date.today() - timedelta(days=1)
