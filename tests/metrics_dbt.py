"""Shared by the tests/test_metrics_*.py modules: land a hand-made event log through the production
ingest path (``normalize`` + ``land_day``) and run the production dbt models on it with a metrics
configuration passed as dbt vars, exactly as the Dagster dbt asset does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from orchestration.ingest.assets import land_day
from orchestration.ingest.contract import normalize
from orchestration.metrics_config import parse_config, to_dbt_vars
from orchestration.resources import WarehouseResource

REPO = Path(__file__).resolve().parent.parent
METRIC_MARTS = (
    "+dim_users +fct_sessions +funnel_conversion +retention_cohorts"
    " +retention_cohorts_by_segment +active_users"
)


def land_events(database: Path, records: list[dict]) -> None:
    """Land records (contract field names) into ``raw.events``, one partition per UTC day."""
    frame = normalize(pd.DataFrame(records), source="file", fetch_day=None)
    resource = WarehouseResource(database=str(database))
    for day, rows in frame.groupby("partition_date"):
        land_day(resource, day, rows)


def run_dbt_build(
    database: Path, config_yaml: str, select: str = METRIC_MARTS
) -> subprocess.CompletedProcess:
    """``dbt build`` of the selected models with the configuration's vars; returns the process."""
    dbt_vars = json.dumps(to_dbt_vars(parse_config(config_yaml, source="test config")))
    env = {
        **os.environ,
        "DUCKDB_DATABASE": str(database),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    dbt = Path(sys.executable).parent / "dbt"
    return subprocess.run(
        # Target and log folders of its own: tests run side by side (make test: pytest-xdist),
        # and the manifest in dbt_project/target is the one the definitions load.
        [str(dbt), "build", "--select", *select.split(), "--vars", dbt_vars,
         "--target-path", str(database.parent / "dbt-target"),
         "--log-path", str(database.parent / "dbt-logs")],
        cwd=REPO / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
    )


def build_or_fail(database: Path, config_yaml: str, select: str = METRIC_MARTS) -> None:
    result = run_dbt_build(database, config_yaml, select)
    if result.returncode != 0:
        raise AssertionError(f"dbt build failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}")


def query(database: Path, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).df()
