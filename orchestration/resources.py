"""Resources: the warehouse, dbt, and the event source, all configured from the environment.

This module is the one environment switch: which source is read, where DuckDB lives, which dbt
target builds. Secrets are passed as ``EnvVar`` so that Dagster shows their names, never values.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource
from dagster_duckdb import DuckDBResource
from filelock import FileLock, Timeout

from orchestration import settings
from orchestration.ingest.sources import EventSource, build_source
from orchestration.ingest.vendors import SECRET_FIELDS, VENDOR_SETTINGS
from orchestration.transform.project import dbt_project


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


class WarehouseResource(DuckDBResource):
    """dagster-duckdb's resource, with one more guarantee: one process at a time has the file open.

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
    """

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if self.database in ("", ":memory:") or self.database.startswith("md:"):
            yield
            return
        lock = FileLock(f"{self.database}.lock", thread_local=False, is_singleton=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log = dg.get_dagster_logger()
            log.info(f"{WAREHOUSE_LOCK_WAIT}: another process has {self.database} open")
            started = time.monotonic()
            lock.acquire()
            log.info(f"Got the warehouse lock after {time.monotonic() - started:.1f} s")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def get_connection(self) -> Iterator:
        with self.exclusive(), super().get_connection() as connection:
            yield connection


def dbt_executable() -> str:
    """dbt from this interpreter's environment, so that no one needs to activate the venv."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


def build_resources() -> dict[str, object]:
    return {
        "duckdb": WarehouseResource(
            database=dg.EnvVar("DUCKDB_DATABASE"),
            connection_config={"memory_limit": settings.get("DUCKDB_MEMORY_LIMIT")},
        ),
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
