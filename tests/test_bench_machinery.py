"""The bench's machinery at tiny scale: it generates, times the raw floor, runs the real job, maps
dbt's run_results to stages and writes a table (no timing is asserted)."""

import json

import pytest

from bench import run_bench

pytestmark = pytest.mark.e2e


def test_dbt_results_map_to_bench_stages():
    manifest = {
        "nodes": {
            "model.p.stg_raw__events": {"resource_type": "model", "name": "stg_raw__events"},
            "model.p.fct_events": {"resource_type": "model", "name": "fct_events"},
            "test.p.unique_fct_events_event_id": {
                "resource_type": "test",
                "depends_on": {"nodes": ["model.p.fct_events"]},
            },
        }
    }
    timing = [
        {
            "name": "execute",
            "started_at": "2026-09-01T00:00:00Z",
            "completed_at": "2026-09-01T00:00:02Z",
        }
    ]
    results = {
        "results": [
            {"unique_id": "model.p.stg_raw__events", "execution_time": 0.5, "timing": timing},
            {"unique_id": "model.p.fct_events", "execution_time": 2.0, "timing": timing},
            {
                "unique_id": "test.p.unique_fct_events_event_id",
                "execution_time": 1.0,
                "timing": timing,
            },
        ]
    }
    stages = {s.name: s for s in run_bench.dbt_stages(results, manifest)}
    assert set(stages) == {"staging", "fct_events"}
    assert stages["fct_events"].seconds == pytest.approx(3.0)
    assert stages["fct_events"].detail == {"models": 2.0, "tests": 1.0}


# What bench() sets in the environment, for its runs and for dbt's subprocess.
BENCH_VARIABLES = (
    "ANALYTICS_SOURCE", "ANALYTICS_SOURCE_PATH", "ANALYTICS_SOURCE_INDEX", "BENCH_PERSONS",
    "BENCH_DAYS", "BENCH_START", "BENCH_ACTIVITY", "DUCKDB_DATABASE", "DAGSTER_HOME",
    "REPORTS_DIR", "DBT_TARGET", "DBT_POSTGRES_DBNAME",
)


@pytest.fixture
def bench_environment(tmp_path, monkeypatch):
    """Every variable the bench sets is put back as it was after the test."""
    for name in BENCH_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DUCKDB_DATABASE", str(tmp_path / "unused.duckdb"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused_home"))
    return monkeypatch


def test_bench_runs_end_to_end_at_tiny_scale(tmp_path, bench_environment):
    # Eight days from a Tuesday hold one complete week: the pipeline run ends with its report.
    out = run_bench.bench(2000, 8, workdir=tmp_path / "work", daily=True)
    assert out["generate"]["records"] > 2000 * 3
    assert out["raw_floor"]["rows"] == out["generate"]["records"]
    names = [s["name"] for s in out["pipeline"]["stages"]]
    assert "ingest: raw_events" in names
    assert {"dbt: staging", "dbt: stitching", "dbt: fct_events", "dbt: fct_sessions"} <= set(names)
    assert any(n.startswith("ML: ") for n in names)
    assert out["pipeline"]["report_built"] and "report: weekly_report" in names
    assert (tmp_path / "work" / "reports").is_dir()  # not the checkout's reports/
    # Every stage that ran is timed, and the core marts were built from every valid raw record.
    assert all(s["seconds"] >= 0 and s["peak_rss"] > 0 for s in out["pipeline"]["stages"])
    assert out["pipeline"]["row_counts"]["fct_events"] > 0
    assert out["daily_run"]["stages"], "the one-day run after the first is measured"
    table = run_bench.format_table(out)
    assert "raw floor" in table and "pipeline total" in table
    # The budgets: each measured figure is the stages it names, added up.
    budgets = {b["name"]: b for b in out["budgets"]}
    assert budgets["whole pipeline, report included"]["measured"] == out["pipeline"]["seconds"]
    assert budgets["peak memory of the bench (process tree)"]["measured"] == out["peak_rss"]
    seconds = {s["name"]: s["seconds"] for s in out["pipeline"]["stages"]}
    paths = budgets["100,000 paths (3 minutes / 5)"]
    assert paths["budget"] == 36.0
    assert paths["measured"] == pytest.approx(
        sum(seconds[f"dbt: {m}"] for m in ("int_journey_steps", "path_transitions", "top_paths",
                                           "path_drop_offs"))
    )
    assert budgets["a 5-variant test (2 minutes / 5)"]["measured"] > 0
    assert not any(b["at_budget_scale"] for b in out["budgets"])  # 2,000 persons x 8 days
    assert "against the issue's budgets (budgets are for 1M x 30 days)" in table
    json.dumps(out, default=str)  # what main() writes


def test_bench_runs_on_postgres_in_a_database_of_its_own(
    postgres_server, bench_environment, tmp_path
):
    """``--warehouse postgres``: the run's models and row counts are on the server, in a database
    the bench made for the run and dropped afterwards."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(postgres_server)
    monkeypatch = bench_environment
    monkeypatch.setenv("DBT_POSTGRES_HOST", str(info.get("host") or "127.0.0.1"))
    monkeypatch.setenv("DBT_POSTGRES_PORT", str(info.get("port") or 5432))
    monkeypatch.setenv("DBT_POSTGRES_USER", str(info.get("user") or "postgres"))
    monkeypatch.setenv("DBT_POSTGRES_PASSWORD", str(info.get("password") or ""))
    work = tmp_path / "work"
    out = run_bench.bench(2000, 8, workdir=work, daily=False, warehouse="postgres")
    database = out["postgres_database"]
    try:
        assert out["pipeline"]["success"] and out["warehouse"] == "postgres"
        assert database.startswith("bench_")
        assert not (work / "warehouse.duckdb").exists()  # nothing was built in DuckDB
        counts = out["pipeline"]["row_counts"]
        assert counts["raw.events"] == out["generate"]["records"]
        with psycopg.connect(postgres_server, dbname=database, connect_timeout=5) as con:
            on_server = {
                table: con.execute(f"select count(*) from {relation}").fetchone()[0]
                for table, relation in (("raw.events", "raw.events"),
                                        ("fct_events", "analytics.fct_events"),
                                        ("dim_users", "analytics.dim_users"))
            }
        assert on_server == {t: counts[t] for t in on_server} and on_server["fct_events"] > 0
    finally:
        run_bench._drop_postgres_database(database)  # what a run without --keep does at its end
    with psycopg.connect(postgres_server, connect_timeout=5) as con:
        left = con.execute("select 1 from pg_database where datname = %s", [database]).fetchall()
    assert left == []
