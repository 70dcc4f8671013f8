"""Dagster's instance storage on PostgreSQL: the repository's dagster.postgres.yaml (what
`make install` writes when DAGSTER_PG_URL is set), pointed at a throwaway database, records the real
graph's run, materializations and asset check results there."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from orchestration.ingest.assets import GATE_NAME
from orchestration.resources import EventSourceResource
from tests.pipeline import materialize_days
from tests.postgres import PostgresDatabase

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]

REPO = Path(__file__).resolve().parent.parent
CORE_MARTS = ("fct_events", "fct_sessions", "dim_users", "quarantined_events")


@pytest.fixture
def postgres_instance(tmp_path, monkeypatch, postgres_database: PostgresDatabase):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # psycopg2, as docs/production.md requires: with SQLAlchemy 2.1 a plain postgresql:// URL means
    # psycopg 3, whose server-side parameters break dagster-postgres's `NOTIFY run_events, :id`.
    monkeypatch.setenv(
        "DAGSTER_PG_URL",
        postgres_database.url.replace("postgresql://", "postgresql+psycopg2://", 1),
    )
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def test_sqlite_is_the_default_and_telemetry_is_off(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__module__.startswith("dagster._core.storage.runs.sqlite")
        assert not instance.telemetry_enabled


@pytest.mark.parametrize(
    ("pg_url", "template"),
    [
        (None, "dagster.yaml"),
        ("postgresql+psycopg2://u:p$w#d@db:5432/dagster", "dagster.postgres.yaml"),
    ],
)
def test_make_install_writes_the_instance_config_the_environment_asks_for(
    tmp_path, pg_url, template
):
    home = tmp_path / "dagster_home"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_PG_URL"}
    env["DAGSTER_HOME"] = str(home)
    if pg_url:
        env["DAGSTER_PG_URL"] = pg_url
    subprocess.run(
        ["make", "-s", f"{home}/dagster.yaml"], cwd=REPO, env=env, check=True, capture_output=True
    )
    assert (home / "dagster.yaml").read_text() == (REPO / template).read_text()


def test_make_install_refuses_a_psycopg3_url(tmp_path):
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path),
        "DAGSTER_PG_URL": "postgresql://u@db/dagster",
    }
    made = subprocess.run(
        ["make", "-s", f"{tmp_path}/dagster.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert made.returncode != 0 and "postgresql+psycopg2://" in made.stderr
    assert not (tmp_path / "dagster.yaml").exists()


def test_graph_run_is_recorded_in_postgres(duckdb_path, postgres_instance, postgres_database):
    instance = postgres_instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
    assert not instance.telemetry_enabled

    source = EventSourceResource(kind="demo", demo_persons=200, demo_days=3)
    # The ingest and the core marts with every check on them (the metric marts would add time, not
    # coverage: their events are recorded the same way).
    core = dg.AssetSelection.assets(*CORE_MARTS).upstream()
    result = materialize_days(
        date(2026, 9, 1), date(2026, 9, 3), source, selection=core, instance=instance
    )
    assert result.success

    # Through the instance (what the UI and sensors read) ...
    runs = instance.get_runs()
    assert [run.run_id for run in runs] == [result.run_id]
    assert runs[0].status == dg.DagsterRunStatus.SUCCESS
    raw = instance.fetch_materializations(dg.AssetKey("raw_events"), limit=10).records
    assert {r.run_id for r in raw} == {result.run_id}
    assert sorted(r.partition_key for r in raw) == ["2026-09-01", "2026-09-02", "2026-09-03"]
    for key in CORE_MARTS:
        records = instance.fetch_materializations(dg.AssetKey(key), limit=10).records
        assert [r.run_id for r in records] == [result.run_id], key
    fct_events = instance.get_latest_materialization_event(dg.AssetKey("fct_events"))
    assert fct_events.asset_materialization.metadata["dagster/row_count"].value > 0
    gate = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("raw_events"), GATE_NAME)]
    )[dg.AssetCheckKey(dg.AssetKey("raw_events"), GATE_NAME)]
    assert gate.run_id == result.run_id
    assert gate.evaluation.passed

    # ... and in the Postgres tables themselves.
    with postgres_database.connect() as con:
        assert con.execute("select run_id, status from runs").fetchall() == [
            (result.run_id, "SUCCESS")
        ]
        materialized = {
            row[0]
            for row in con.execute(
                "select asset_key from event_logs"
                " where dagster_event_type = 'ASSET_MATERIALIZATION' and run_id = %s",
                [result.run_id],
            )
        }
        assert {'["raw_events"]', '["fct_events"]', '["dim_users"]'} <= materialized
        checks = dict(
            con.execute(
                "select check_name, execution_status from asset_check_executions where run_id = %s",
                [result.run_id],
            ).fetchall()
        )
        assert checks[GATE_NAME] == "SUCCEEDED"
        # dbt tests became checks too (e.g. not_null / unique on fct_events); all recorded here.
        assert len(checks) > 1
        assert set(checks.values()) == {"SUCCEEDED"}, checks
