"""The one place where the project's environment is read.

Every setting is an environment variable with a default that makes the embedded mode work with no
server and no key: DuckDB under ``data/``, Dagster's SQLite storage under ``.dagster_home/`` and the
built-in demo source. Resources read the same variables through ``dagster.EnvVar``; this module only
fills in the defaults (``os.environ.setdefault``) so that dbt, which runs as a subprocess and reads
``env_var('DUCKDB_DATABASE')`` in ``profiles.yml``, sees exactly the path the Dagster resource sees.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
EXPECTATIONS_DIR = REPO_ROOT / "expectations"

DEFAULTS: dict[str, str] = {
    "DUCKDB_DATABASE": str(REPO_ROOT / "data" / "analytics.duckdb"),
    "ANALYTICS_SOURCE": "demo",
    # Dagster's partitions start here; every source's days must fall on or after it.
    "ANALYTICS_START_DATE": "2026-09-01",
    # The file source's index of the days each file holds, kept between runs (empty: none, every
    # run reads every file's times; orchestration/ingest/files.py).
    "ANALYTICS_SOURCE_INDEX": str(REPO_ROOT / "data" / "file_source_days.index"),
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_TARGET": "duckdb",
    # The `postgres` target's connection (dbt_project/profiles.yml has the same defaults, for dbt
    # run by hand); the password, DBT_POSTGRES_PASSWORD, has no default and is read as an EnvVar.
    "DBT_POSTGRES_HOST": "127.0.0.1",
    "DBT_POSTGRES_PORT": "5432",
    "DBT_POSTGRES_USER": "postgres",
    "DBT_POSTGRES_DBNAME": "postgres",
    "DBT_POSTGRES_SCHEMA": "analytics",
    "DBT_POSTGRES_SSLMODE": "prefer",
    # DuckDB's memory limit, for dbt's connection (profiles.yml) and the assets' (the duckdb
    # resource); beyond it DuckDB spills to disk. DuckDB's own default is 80% of the machine for
    # each connection, but dbt runs in a second process beside the step's, and at 40M events the
    # two together ran the machine out of memory. A size, not a share: at the benchmark's 40M
    # events DuckDB fills whatever it is given (10.4 GB at 40% of 23 GB), and 4 GB keeps the whole
    # pipeline under 8 GB for about a quarter more time in the dbt step there (nothing at 5.75M
    # events; bench/README.md). Raise it on a bigger machine.
    "DUCKDB_MEMORY_LIMIT": "4GB",
    # How long a step waits for the DuckDB warehouse's lock while another process of the project
    # holds it (resources.WarehouseResource) before it fails, in seconds.
    "WAREHOUSE_LOCK_TIMEOUT": "3600",
    # The weekly report: where it is written, the schedules' switch (on|off), its time zone.
    "REPORTS_DIR": str(REPO_ROOT / "reports"),
    "ANALYTICS_SCHEDULES": "on",
    "REPORT_TIMEZONE": "UTC",
}


def apply_defaults() -> None:
    """Fill unset variables with the embedded defaults (never overrides what the user set)."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    Path(os.environ["DUCKDB_DATABASE"]).parent.mkdir(parents=True, exist_ok=True)


def get(name: str) -> str:
    """A setting's value: the environment's, else the default."""
    return os.environ.get(name, DEFAULTS.get(name, ""))
