"""The dbt project on its `postgres` target: every model builds there unchanged, and the same landed
data gives the same marts, row for row, as on DuckDB.

The demo events are landed in DuckDB's ``raw.events`` by the production ingest path (the source,
``normalize``, ``land_day``), that table is copied into a throwaway Postgres database's ``raw``
schema, and both warehouses are built by ``dbt build`` with the metrics configuration's vars,
exactly as the Dagster dbt asset passes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from orchestration import metrics_config
from orchestration.ingest.assets import land_day
from orchestration.ingest.contract import normalize
from orchestration.resources import EventSourceResource
from tests.postgres import (
    copy_table_to_postgres,
    duckdb_rows,
    postgres_rows,
    row_differences,
    temporary_database,
    without_columns,
)

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parent.parent
DBT_PROJECT = REPO / "dbt_project"
FIRST_DAY, DAYS = date(2026, 9, 1), 10
POSTGRES_SCHEMA = "analytics"

CORE_MARTS = ["fct_events", "fct_sessions", "dim_users", "quarantined_events"]
METRIC_MARTS = [
    "funnel_conversion",
    "retention_cohorts",
    "retention_cohorts_by_segment",
    "active_users",
]
BEHAVIOUR_MARTS = [
    "top_paths",
    "path_transitions",
    "path_drop_offs",
    "lifecycle",
    "feature_adoption",
    "feature_usage",
    "traffic_sources",
    "traffic_source_conversions",
    "abandonment",
    "abandoned_items",
    "metric_snapshots",
    "int_feature_revenue_persons",  # the input of the Python asset feature_revenue_impact
]
# Set when the model is built, so different on each warehouse by design: left out of the comparison.
BUILD_TIME_COLUMNS = {
    "metric_snapshots": {"computed_at"},
    **{model: {"loaded_at"} for model in ("fct_events", "fct_sessions", "dim_users")},
}


def _land_demo_days(duckdb_path: Path) -> None:

    source = EventSourceResource(kind="demo", demo_persons=200, demo_days=DAYS).get_source()
    from orchestration.resources import WarehouseResource

    warehouse = WarehouseResource(database=str(duckdb_path))
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        land_day(
            warehouse, day, normalize(source.fetch_day(day), source=source.name, fetch_day=day)
        )


def _dbt_build(target: str, env: dict[str, str], workdir: Path) -> subprocess.Popen:
    dbt_vars = metrics_config.dbt_vars_json(metrics_config.load_config())
    dbt = Path(sys.executable).parent / "dbt"
    # Own target and log folders: the session's manifest in dbt_project/target stays untouched.
    with (workdir / f"dbt-{target}.log").open("w") as log:  # the child keeps its own handle
        return subprocess.Popen(
            [
                str(dbt),
                "build",
                "--target",
                target,
                "--vars",
                dbt_vars,
                "--profiles-dir",
                str(DBT_PROJECT),
                "--project-dir",
                str(DBT_PROJECT),
                "--target-path",
                str(workdir / f"target-{target}"),
                "--log-path",
                str(workdir / f"logs-{target}"),
            ],
            cwd=DBT_PROJECT,
            env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _failures(workdir: Path, target: str) -> list[str]:
    """Each node that did not pass, with dbt's message (the SQL error for a model)."""
    results = workdir / f"target-{target}" / "run_results.json"
    if not results.exists():
        return [(workdir / f"dbt-{target}.log").read_text()[-4000:]]
    return [
        f"{r['unique_id']}: {r['status']}: {r.get('message')}"
        for r in json.loads(results.read_text())["results"]
        if r["status"] not in ("success", "pass")
    ]


@pytest.fixture(scope="module")
def builds(postgres_server: str, tmp_path_factory: pytest.TempPathFactory):
    """(DuckDB file, Postgres database), both built from the same landed events."""
    workdir = tmp_path_factory.mktemp("dbt_on_both")
    duckdb_path = workdir / "warehouse.duckdb"
    _land_demo_days(duckdb_path)
    with temporary_database(postgres_server) as database:
        assert copy_table_to_postgres(duckdb_path, database, "raw.events") > 0
        # Two processes on two warehouses: built side by side.
        on_duckdb = _dbt_build(
            "duckdb", {"DUCKDB_DATABASE": str(duckdb_path), "DBT_TARGET": "duckdb"}, workdir
        )
        on_postgres = _dbt_build(
            "postgres",
            {
                **database.dbt_env(POSTGRES_SCHEMA),
                "DUCKDB_DATABASE": str(workdir / "unused.duckdb"),
            },
            workdir,
        )
        codes = {"duckdb": on_duckdb.wait(timeout=300), "postgres": on_postgres.wait(timeout=300)}
        failed = {target: _failures(workdir, target) for target, code in codes.items() if code != 0}
        assert not failed, "dbt build failed:\n" + "\n".join(
            f"[{target}] {line}" for target, lines in failed.items() for line in lines
        )
        yield duckdb_path, database


def test_every_model_builds_on_postgres(builds):
    _, database = builds
    manifest_models = {
        node["name"]
        for node in json.loads((DBT_PROJECT / "target" / "manifest.json").read_text())[
            "nodes"
        ].values()
        if node["resource_type"] == "model"
    }
    with database.connect() as con:
        built = {
            name
            for (name,) in con.execute(
                "select table_name from information_schema.tables where table_schema = %s",
                [POSTGRES_SCHEMA],
            )
        }
    assert manifest_models - built == set()
    assert set(CORE_MARTS + METRIC_MARTS + BEHAVIOUR_MARTS) <= built


@pytest.mark.parametrize("model", CORE_MARTS + METRIC_MARTS + BEHAVIOUR_MARTS)
def test_same_rows_on_duckdb_and_postgres(builds, model: str):
    duckdb_path, database = builds
    duck_columns, duck = duckdb_rows(duckdb_path, f"main.{model}")
    pg_columns, pg = postgres_rows(database, f"{POSTGRES_SCHEMA}.{model}")
    assert pg_columns == duck_columns
    assert duck, f"{model} is empty on DuckDB: the comparison would prove nothing"
    skipped = BUILD_TIME_COLUMNS.get(model, set())
    duck, pg = (without_columns(duck_columns, rows, skipped) for rows in (duck, pg))
    # Rates are doubles computed in a different order by each engine: equal within 1e-9.
    assert row_differences(duck, pg, tolerance=1e-9) == []
