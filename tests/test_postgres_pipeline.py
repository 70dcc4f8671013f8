"""The production setup end to end: Dagster's storage on Postgres (dagster.postgres.yaml) and the
warehouse on Postgres (``DBT_TARGET=postgres``), through the real graph, from the demo source to
the weekly report.

The same demo runs through the same graph on the embedded setup (DuckDB, ephemeral instance), and
the two must agree: the landed raw tables, the models, every Python asset's table (learning,
experiments, revenue impact) and the weekly report's numbers. The Postgres run must not write a
DuckDB file. The dbt-only comparison of every mart is tests/test_postgres_dbt.py; this file is
about what the Dagster assets do around dbt on each warehouse.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from orchestration.experiments.tables import SCHEMAS as EXPERIMENT_TABLES
from orchestration.learning.tables import SCHEMAS as LEARNING_TABLES
from orchestration.reporting.assets import REPORT_SELECTION
from orchestration.resources import EventSourceResource, build_resources
from tests.pipeline import CORE, check_evaluations, materialize_days
from tests.postgres import (
    PostgresDatabase,
    duckdb_rows,
    postgres_rows,
    row_differences,
    temporary_database,
    without_columns,
)

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent
SCHEMA = "analytics"
FIRST, LAST = date(2026, 9, 1), date(2026, 9, 21)
WEEK = date(2026, 9, 14)  # a Monday: the report's weekly partition
# Enough persons and days for the learning models' blocking checks (as tests/test_pipeline_e2e.py).
SOURCE = {"kind": "demo", "demo_persons": 1500, "demo_days": 21}

PYTHON_TABLES = [*LEARNING_TABLES, *EXPERIMENT_TABLES, "feature_revenue_impact"]
MODELS = ["fct_events", "dim_users", "funnel_conversion", "retention_cohorts", "active_users"]
# Stamped when the row is written, so different on each warehouse by design.
WRITE_TIME_COLUMNS = {
    "raw.events": {"ingested_at"},
    "raw.landings": {"landed_at"},
    "fct_events": {"loaded_at", "ingested_at"},
    "dim_users": {"loaded_at"},
}



def _run(instance: dg.DagsterInstance, reports: Path, patch: pytest.MonkeyPatch) -> dict:
    """The daily pipeline over the demo's days, then the report's week, on whatever warehouse the
    environment names."""
    from orchestration.definitions import defs

    patch.setenv("REPORTS_DIR", str(reports))
    pipeline = materialize_days(FIRST, LAST, EventSourceResource(**SOURCE), instance=instance)
    report = dg.materialize(
        [*defs.assets, *(defs.asset_checks or [])],
        resources=build_resources(),
        partition_key=WEEK.isoformat(),
        selection=REPORT_SELECTION - dg.AssetSelection.assets(
            "weekly_report_slack", "weekly_report_email"
        ),
        instance=instance,
        raise_on_error=False,
    )
    return {"pipeline": pipeline, "report": report, "reports": reports}


@pytest.fixture(scope="module")
def runs(postgres_server: str, tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("postgres_pipeline")
    with pytest.MonkeyPatch.context() as patch, temporary_database(postgres_server) as database:
        patch.setenv("DBT_TARGET", "duckdb")
        patch.setenv("DUCKDB_DATABASE", str(workdir / "embedded.duckdb"))
        embedded = _run(dg.DagsterInstance.ephemeral(), workdir / "reports-duckdb", patch)

        # Production: the instance from the repository's dagster.postgres.yaml, the warehouse in
        # the same database's `raw` and `analytics` schemas; DUCKDB_DATABASE points at a file that
        # must never be created.
        home = workdir / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "dagster.postgres.yaml", home / "dagster.yaml")
        patch.setenv("DAGSTER_HOME", str(home))
        patch.setenv(
            "DAGSTER_PG_URL", database.url.replace("postgresql://", "postgresql+psycopg2://", 1)
        )
        for name, value in database.dbt_env(SCHEMA).items():
            patch.setenv(name, value)
        patch.setenv("DUCKDB_DATABASE", str(workdir / "untouched.duckdb"))
        instance = dg.DagsterInstance.get()
        try:
            production = _run(instance, workdir / "reports-postgres", patch)
            yield {
                "duckdb": {**embedded, "path": workdir / "embedded.duckdb"},
                "postgres": {**production, "database": database, "instance": instance},
                "untouched": workdir / "untouched.duckdb",
            }
        finally:
            instance.dispose()


def test_the_whole_graph_runs_on_postgres_and_writes_no_duckdb_file(runs):
    for setup in ("duckdb", "postgres"):
        assert runs[setup]["pipeline"].success, f"the pipeline failed on {setup}"
        assert runs[setup]["report"].success, f"the weekly report failed on {setup}"
    checks = check_evaluations(runs["postgres"]["pipeline"])
    assert len(checks) > 20 and all(c.passed for c in checks.values()), {
        name: c.description for name, c in checks.items() if not c.passed
    }
    assert not runs["untouched"].exists()
    assert not Path(f"{runs['untouched']}.wal").exists()


def test_dagster_records_the_postgres_warehouses_numbers(runs):
    """The dbt asset's row counts and previews, read from Postgres, are in Postgres storage."""
    instance: dg.DagsterInstance = runs["postgres"]["instance"]
    assert type(instance.run_storage).__module__.startswith("dagster_postgres")
    database: PostgresDatabase = runs["postgres"]["database"]
    with database.connect() as con:
        (events,) = con.execute(f"select count(*) from {SCHEMA}.fct_events").fetchone()
        (landed,) = con.execute(
            "select count(*) from raw.events where quarantine_reason is null"
        ).fetchone()
    assert events > 5_000
    for key, expected in (("fct_events", events), ("raw_events", None)):
        record = instance.get_latest_materialization_event(dg.AssetKey(key))
        metadata = record.asset_materialization.metadata
        if expected is not None:
            assert metadata["dagster/row_count"].value == expected
            assert "preview" in metadata
        else:
            assert metadata["valid_events"].value == landed
    funnel = instance.get_latest_materialization_event(dg.AssetKey("funnel_conversion"))
    assert "chart" in funnel.asset_materialization.metadata


@pytest.mark.parametrize("relation", ["raw.events", "raw.landings", *MODELS, *PYTHON_TABLES])
def test_same_rows_on_both_warehouses(runs, relation: str):
    on_duckdb, on_postgres = (
        (relation, relation) if "." in relation else (f"main.{relation}", f"{SCHEMA}.{relation}")
    )
    duck_columns, duck = duckdb_rows(runs["duckdb"]["path"], on_duckdb)
    pg_columns, pg = postgres_rows(runs["postgres"]["database"], on_postgres)
    assert pg_columns == duck_columns
    assert duck, f"{relation} is empty on DuckDB: the comparison would prove nothing"
    skipped = WRITE_TIME_COLUMNS.get(relation, set())
    duck, pg = (without_columns(duck_columns, rows, skipped) for rows in (duck, pg))
    assert row_differences(duck, pg, tolerance=1e-9) == []


def test_the_weekly_report_says_the_same_on_both(runs):
    def report(setup: str) -> dict:
        return json.loads(
            (runs[setup]["reports"] / WEEK.isoformat() / "report.json").read_text()
        )

    embedded, production = report("duckdb"), report("postgres")
    assert embedded["ux_recommendations"], "no recommendation: the comparison would prove little"
    assert production == embedded


def test_landing_again_on_postgres_replaces_the_days_and_keeps_the_models(runs, monkeypatch):
    """Idempotent on Postgres too: the last two days landed again are a second landing, raw.events
    holds the same rows, and the incremental models read it to the same result."""
    database: PostgresDatabase = runs["postgres"]["database"]
    columns, before = postgres_rows(database, f"{SCHEMA}.fct_events")
    with database.connect() as con:
        (raw_before,) = con.execute("select count(*) from raw.events").fetchone()
    for name, value in database.dbt_env(SCHEMA).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DUCKDB_DATABASE", str(runs["untouched"]))
    result = materialize_days(
        date(2026, 9, 20),
        LAST,
        EventSourceResource(**SOURCE),
        selection=CORE,
        instance=runs["postgres"]["instance"],
    )
    assert result.success
    with database.connect() as con:
        (raw_after,) = con.execute("select count(*) from raw.events").fetchone()
        landings = con.execute(
            "select landing_id, count(*) from raw.landings group by 1 order by 1"
        ).fetchall()
    assert raw_after == raw_before
    assert landings == [(1, 21), (2, 2)]
    # The re-landed days' events now carry the second landing and its ingest time.
    relanded = {*WRITE_TIME_COLUMNS["fct_events"], "landing_id"}
    after_columns, after = postgres_rows(database, f"{SCHEMA}.fct_events")
    assert after_columns == columns
    assert without_columns(columns, after, relanded) == without_columns(columns, before, relanded)
    day, landing = columns.index("partition_date"), columns.index("landing_id")
    assert {(r[day] >= date(2026, 9, 20), r[landing]) for r in after} == {(False, 1), (True, 2)}
    assert not runs["untouched"].exists()
