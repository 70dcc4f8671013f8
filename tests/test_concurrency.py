"""DuckDB has one writer, so the instance's concurrency settings (dagster.yaml) must make parallel
work safe: every step that opens the warehouse is in the pool ``duckdb_writer``, which has one
slot, and the run queue starts one run of the warehouse jobs at a time (docs/production.md,
"Concurrency").

The backfill test launches several daily partitions of the real ``raw_events`` at once, each in its
own process (as the daemon's run launcher or a UI re-execution would), against a real instance under
a temporary DAGSTER_HOME that holds the repository's dagster.yaml, and one DuckDB file: all of them
succeed, their steps take turns, and the later ones say they waited for the pool. The negative
shows why: a second process cannot open a DuckDB file another process has open.

Dagster's pool can let two steps through when they ask at the same instant (a check-then-claim race
in its SQL storage; see WarehouseResource in orchestration/resources.py). The warehouse's file lock
covers that case: a step that overlaps another must have waited for it, and says so in its log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path

import dagster as dg
import pytest
import yaml

from orchestration.jobs import WAREHOUSE_POOL, WAREHOUSE_RUN_TAGS
from orchestration.resources import (
    WAREHOUSE_LOCK_WAIT,
    WarehouseLockTimeout,
    WarehouseResource,
)
from tests.pipeline import query

REPO = Path(__file__).resolve().parent.parent
DAYS = ["2026-09-01", "2026-09-02", "2026-09-03"]
WORKER_TIMEOUT = 180  # seconds, for the whole backfill: each process is killed after it
BLOCKED = f"Step blocked by limit for pool {WAREHOUSE_POOL}"

def _warehouse_nodes() -> list[tuple[str, str | None]]:
    from orchestration.definitions import defs

    nodes = [*defs.assets, *(defs.asset_checks or [])]
    return sorted(
        (node.node_def.name, node.node_def.pool)
        for node in nodes
        if {"duckdb", "dbt"} & set(node.required_resource_keys)
    )


@pytest.mark.parametrize(
    ("name", "pool"),
    [
        pytest.param(name, pool, id=name) for name, pool in _warehouse_nodes()
    ],
)
def test_every_step_that_opens_the_warehouse_is_in_the_pool(name, pool):
    assert pool == WAREHOUSE_POOL, f"{name} opens DuckDB: give it pool={WAREHOUSE_POOL!r}"


@pytest.mark.parametrize("template", ["dagster.yaml", "dagster.postgres.yaml"])
def test_the_instance_templates_limit_the_pool_and_the_warehouse_runs(template):
    config = yaml.safe_load((REPO / template).read_text())
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}
    ((key, value),) = WAREHOUSE_RUN_TAGS.items()
    assert config["concurrency"]["runs"]["tag_concurrency_limits"] == [
        {"key": key, "value": value, "limit": 1}
    ]
    assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0


def test_the_pipeline_runs_carry_the_warehouse_tag():
    from orchestration.jobs import analytics_pipeline

    assert WAREHOUSE_RUN_TAGS.items() <= analytics_pipeline.tags.items()


def test_the_run_queue_starts_one_warehouse_run_at_a_time(instance_home):
    """The daemon's queue, with the instance's limits: while one run of the pipeline is in
    progress, the next partition's run stays queued; a run without the tag is not held back."""
    from dagster._utils.tags import TagConcurrencyLimitsCounter

    from orchestration.jobs import analytics_pipeline

    def run(job_name: str, tags: dict) -> dg.DagsterRun:
        return dg.DagsterRun(job_name=job_name, tags=tags)

    # What a job backfill (one run per partition) or the schedule submits: the job's tags and more.
    day_1, day_2 = (
        run("analytics_pipeline", {**analytics_pipeline.tags, "dagster/partition": day})
        for day in DAYS[:2]
    )
    other = run("weekly_report_job", {"dagster/partition": "2026-09-07"})
    with dg.DagsterInstance.get() as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert not TagConcurrencyLimitsCounter(limits, []).is_blocked(day_1)
    in_progress = TagConcurrencyLimitsCounter(limits, [day_1])
    assert in_progress.is_blocked(day_2)
    assert not in_progress.is_blocked(other)


@pytest.fixture
def instance_home(tmp_path, monkeypatch) -> Path:
    """A DAGSTER_HOME holding the repository's dagster.yaml, as `make install` writes it."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("DAGSTER_PG_URL", raising=False)
    with dg.DagsterInstance.get() as instance:
        config = instance.get_concurrency_config()
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert config.pool_config.default_pool_limit == 1
        assert config.run_queue_config.tag_concurrency_limits
    return home


def _worker(day: str, go: str) -> None:
    """One partition's run, in its own process: wait for ``go`` so that every worker reaches the
    step at the same moment, then materialize ``raw_events`` for ``day`` through the instance."""
    from orchestration import settings

    settings.apply_defaults()
    from orchestration.definitions import defs  # noqa: F401  (what a run worker loads)
    from orchestration.ingest.assets import raw_events
    from orchestration.resources import EventSourceResource

    print("ready", flush=True)
    deadline = time.monotonic() + WORKER_TIMEOUT
    while not Path(go).exists():
        if time.monotonic() > deadline:
            raise SystemExit("never told to go")
        time.sleep(0.05)
    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [raw_events],
            partition_key=day,
            resources={
                "duckdb": WarehouseResource(database=os.environ["DUCKDB_DATABASE"]),
                "event_source": EventSourceResource(kind="demo", demo_persons=200, demo_days=4),
            },
            instance=instance,
            tags=WAREHOUSE_RUN_TAGS,
            raise_on_error=False,
        )
        errors = [
            e.event_specific_data.error.to_string() for e in result.all_events if e.is_step_failure
        ]
    print(json.dumps({"run_id": result.run_id, "success": result.success, "errors": errors}))


def _launch(day: str, go: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_concurrency", day, str(go)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def test_a_backfill_of_several_partitions_at_once_takes_turns(instance_home, duckdb_path, tmp_path):
    go = tmp_path / "go"
    workers = {day: _launch(day, go, tmp_path / f"{day}.log") for day in DAYS}
    deadline = time.monotonic() + WORKER_TIMEOUT
    outcomes = {}
    try:
        for day, worker in workers.items():  # every worker has loaded the definitions ...
            log = tmp_path / f"{day}.log"
            assert worker.stdout.readline().strip() == "ready", log.read_text()
        go.touch()  # ... and they all start their run now
        for day, worker in workers.items():
            out, _ = worker.communicate(timeout=max(deadline - time.monotonic(), 1))
            assert worker.returncode == 0, (tmp_path / f"{day}.log").read_text()[-3000:]
            outcomes[day] = json.loads(out.strip().splitlines()[-1])
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.wait()

    # Every partition's run succeeded: none met DuckDB's "Could not set lock on file".
    for day, outcome in outcomes.items():
        assert outcome["success"] and not outcome["errors"], (day, outcome["errors"])
    assert query(
        duckdb_path, "select distinct partition_date::varchar from raw.events order by 1"
    ) == [(day,) for day in DAYS]

    with dg.DagsterInstance.get() as instance:
        windows, blocked = [], 0
        for outcome in outcomes.values():
            logs = instance.all_logs(outcome["run_id"])
            times = {
                e.dagster_event.event_type_value: e.timestamp
                for e in logs
                if e.is_dagster_event and e.step_key == "raw_events"
            }
            waited = any(e.user_message.startswith(WAREHOUSE_LOCK_WAIT) for e in logs)
            windows.append((times["STEP_START"], times["STEP_SUCCESS"], waited))
            blocked += any(e.message == BLOCKED for e in logs)
        # The pool's one slot: no two steps ran at the same time, or, where Dagster's race let two
        # start together, the later one waited for the warehouse lock before it touched DuckDB ...
        for (_, end_a, waited_a), (start_b, _, waited_b) in combinations(sorted(windows), 2):
            assert end_a <= start_b or waited_a or waited_b, sorted(windows)
        # ... and the runs that came later waited for the pool (they all started at once).
        assert blocked >= 1, "no run waited for the pool: were the runs really concurrent?"
        # Every slot was given back.
        info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
        assert info.slot_count == 1 and not info.claimed_slots and not info.pending_steps


HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("create table if not exists t (x int)")
    print("holding", flush=True)
    time.sleep(60)
    """
)


def test_without_the_limit_a_second_writer_hits_duckdbs_lock(tmp_path):
    """What the pool prevents: while one process has the warehouse open (a step landing a day, a dbt
    build), another process cannot open it at all."""
    import duckdb

    path = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.IOException, match="Could not set lock on file"):
            duckdb.connect(str(path))
    finally:
        holder.kill()
        holder.wait()
    # Once the other writer is gone the file opens: the error is about the concurrent writer only.
    with duckdb.connect(str(path)) as con:
        assert con.execute("select count(*) from t").fetchone() == (0,)


HOLD_WAREHOUSE = textwrap.dedent(
    """
    import sys, time, duckdb
    from orchestration.resources import WarehouseResource
    # As the dbt step does: hold the lock while another program (dbt) has the file, and a moment
    # after it let go.
    with WarehouseResource(database=sys.argv[1]).exclusive():
        with duckdb.connect(sys.argv[1]) as con:
            con.execute("create table t as select 1 as x")
        print("holding", flush=True)
        time.sleep(float(sys.argv[2]))
        with duckdb.connect(sys.argv[1]) as con:
            con.execute("insert into t values (2)")
    """
)


@contextmanager
def _holding_the_warehouse(path: Path, seconds: float) -> Iterator[subprocess.Popen]:
    """Another process holding the warehouse's lock (HOLD_WAREHOUSE) for ``seconds``, from the
    moment this yields; killed on the way out if it is still running."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WAREHOUSE, str(path), str(seconds)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


def test_a_step_that_gets_past_the_pool_waits_for_the_warehouse_lock(tmp_path, caplog):
    """What covers Dagster's race: while another process holds the warehouse (a dbt build, or a
    connection of another step), a step's connection waits for it to let go and says so, instead of
    failing on DuckDB's lock; then it sees everything the other process wrote."""
    path = tmp_path / "warehouse.duckdb"
    hold_seconds = 2.0
    with _holding_the_warehouse(path, hold_seconds) as holder:
        held_since = time.monotonic()
        with caplog.at_level("INFO"), WarehouseResource(database=str(path)).get_connection() as con:
            waited = time.monotonic() - held_since
            rows = con.execute("select x from t order by x").fetchall()
        assert holder.wait(timeout=30) == 0
    assert rows == [(1,), (2,)]
    assert waited >= hold_seconds * 0.8, waited
    assert any(m.startswith(WAREHOUSE_LOCK_WAIT) for m in caplog.messages), caplog.messages
    # Nested connections in one process do not wait on themselves (the lock is re-entrant).
    warehouse = WarehouseResource(database=str(path))
    with warehouse.exclusive(), warehouse.get_connection() as con:
        assert con.execute("select count(*) from t").fetchone() == (2,)


def test_a_lock_that_is_never_let_go_fails_the_wait_with_a_clear_error(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with _holding_the_warehouse(path, 30):
        began = time.monotonic()
        with pytest.raises(WarehouseLockTimeout, match="WAREHOUSE_LOCK_TIMEOUT"):
            with WarehouseResource(database=str(path), lock_timeout_seconds=0.5).get_connection():
                pass
        assert 0.5 <= time.monotonic() - began < 10
    # The wait that failed took nothing: once the holder is gone the lock is free.
    with WarehouseResource(database=str(path), lock_timeout_seconds=0).get_connection() as con:
        assert con.execute("select x from t").fetchall() == [(1,)]


if __name__ == "__main__":
    _worker(*sys.argv[1:3])
