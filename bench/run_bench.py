"""``make bench``: time the real pipeline on demo data at scale, stage by stage, with peak memory.

1. **generate**: the demo generator's compact columns for ``--scale`` persons over ``--days`` days
   at ``--activity`` (default 27: about 40 events per person in 30 days, so 1M persons x 30 days
   is about 40M records, the issue's volume), written to Parquet (one file per day) for the raw
   floor.
2. **raw floor**: DuckDB reads that Parquet and runs one grouped scan over it: the least any
   pipeline over this data could cost here, so that the pipeline's cost can be quoted as a ratio.
3. **pipeline**: the ``analytics_pipeline`` job (the same assets and dbt models ``python -m
   orchestration.run`` runs) over every day, in this process, with a temporary ``DAGSTER_HOME`` and
   DuckDB file. Stage times come from Dagster's step events and, inside the dbt step, from dbt's
   ``run_results.json`` (per model, tests attributed to the model they test).
4. **daily run**: the job again over the last day only (what the daily schedule does for one day).

Peak memory is the resident set of this process plus its children (dbt runs as a subprocess),
sampled every 50 ms from /proc; per stage it is the peak within the stage's wall-clock window.
Prints a table, then the figures against the issue's budgets (:func:`budgets`), and writes
everything as JSON to ``bench/results/<timestamp>.json``. ``--warehouse postgres`` runs it all
on a PostgreSQL server (:func:`bench`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"
# The demo's activity that gives the volume: about 40 events per person in 30 days.
BENCH_ACTIVITY = 27.0

# dbt models -> bench stages (models not listed are reported under their own name, as marts).
MODEL_STAGES = {
    "stg_raw__events": "staging",
    "stg_raw__quarantined_events": "staging",
    "int_identity_links": "stitching",
    "int_events_stitched": "stitching",
    "int_events_sessionized": "sessions",
}
# Dagster asset groups -> bench stages, for the steps outside dbt.
GROUP_STAGES = {
    "ingest": "ingest",
    "learning": "ML",
    "experiments": "experiments",
    "reporting": "report",
    "report": "report",
}


# --- memory ------------------------------------------------------------------------------------


def _rss_of_tree(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, from /proc (0 where unreadable)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1]: ppid
        rss[pid] = int(fields[21]) * page  # fields[21]: rss in pages
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


class MemorySampler(threading.Thread):
    """Samples the process tree's RSS every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        pid = os.getpid()
        while not self._halt.is_set():
            self.samples.append((time.time(), _rss_of_tree(pid)))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, start: float | None = None, end: float | None = None) -> int:
        window = [
            r
            for t, r in self.samples
            if (start is None or t >= start - self.interval)
            and (end is None or t <= end + self.interval)
        ]
        return max(window, default=0)


# --- stages ------------------------------------------------------------------------------------


@dataclass
class Stage:
    name: str
    seconds: float
    start: float
    end: float
    peak_rss: int = 0
    detail: dict = field(default_factory=dict)


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=UTC).timestamp()


def dbt_stages(run_results: dict, manifest: dict) -> list[Stage]:
    """One stage per bench stage of the dbt build: models by :data:`MODEL_STAGES` (else the mart's
    own name), each dbt test attributed to the stage of the model it tests."""
    nodes = manifest.get("nodes", {})
    stage_of: dict[str, str] = {}
    for unique_id, node in nodes.items():
        if node.get("resource_type") == "model":
            stage_of[unique_id] = MODEL_STAGES.get(node["name"], node["name"])
    grouped: dict[str, Stage] = {}
    for result in run_results.get("results", []):
        unique_id = result["unique_id"]
        if unique_id in stage_of:
            stage = stage_of[unique_id]
        else:
            models = [
                d
                for d in nodes.get(unique_id, {}).get("depends_on", {}).get("nodes", [])
                if d in stage_of
            ]
            stage = stage_of[models[0]] if models else "dbt tests (sources)"
        times = [
            _ts(t[k])
            for t in result.get("timing", [])
            for k in ("started_at", "completed_at")
            if t.get(k)
        ]
        start, end = (min(times), max(times)) if times else (0.0, 0.0)
        entry = grouped.setdefault(stage, Stage(stage, 0.0, start or float("inf"), end, detail={}))
        entry.seconds += float(result.get("execution_time") or 0.0)
        if times:
            entry.start, entry.end = min(entry.start, start), max(entry.end, end)
        kind = "models" if unique_id.startswith("model.") else "tests"
        entry.detail[kind] = entry.detail.get(kind, 0.0) + float(
            result.get("execution_time") or 0.0
        )
    return list(grouped.values())


def _latest_run_results(target: Path, since: float, run_id: str = "") -> dict:
    """The run_results.json of this run's dbt invocation (dagster-dbt writes it under
    ``target/<op>-<run id[:7]>-<hash>/``); else the one that finished last after ``since``. Others'
    dbt runs (tests on the same checkout) write there too, so the run id comes first."""
    if run_id:
        own = list(target.glob(f"*-{run_id[:7]}-*/run_results.json"))
        if own:
            return json.loads(max(own, key=lambda p: p.stat().st_mtime).read_text())
    found = [p for p in target.glob("*/run_results.json") if p.stat().st_mtime >= since]
    found += [p for p in [target / "run_results.json"] if p.exists() and p.stat().st_mtime >= since]
    if not found:
        return {}
    return json.loads(max(found, key=lambda p: p.stat().st_mtime).read_text())


def step_stages(instance, run_id: str, group_of_step: dict[str, str]) -> list[Stage]:
    """Wall time of each Dagster step, from its STEP_START and STEP_SUCCESS/FAILURE events."""
    starts: dict[str, float] = {}
    stages = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.step_key:
            continue
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = record.timestamp
        elif (
            event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and event.step_key in starts
        ):
            start = starts[event.step_key]
            stages.append(
                Stage(
                    event.step_key,
                    record.timestamp - start,
                    start,
                    record.timestamp,
                    detail={
                        "group": group_of_step.get(event.step_key, ""),
                        "status": event.event_type_value,
                    },
                )
            )
    return stages


# --- the bench ---------------------------------------------------------------------------------


def generate(
    scale: int,
    days: int,
    seed: int,
    start: date,
    parquet_dir: Path,
    activity: float,
    keep_simulation: bool,
) -> dict:
    """Simulates the demo and writes a Parquet file per day. ``keep_simulation``: keep the
    simulated arrays cached for a demo source in this process; otherwise they are let go (about
    1 GB at 40M records), so that the pipeline's peak memory does not carry them."""
    import pyarrow.parquet as pq

    from orchestration.ingest.demo import DemoConfig, DemoSource, _generated, event_count

    config = DemoConfig(persons=scale, days=days, start=start, seed=seed, activity=activity)
    source = DemoSource(config)
    began = time.time()
    records = event_count(config)  # simulates (cached for the pipeline's own reads)
    simulated = time.time() - began
    parquet_dir.mkdir(parents=True, exist_ok=True)
    for day in source.available_days():
        pq.write_table(source.fetch_table(day), parquet_dir / f"{day.isoformat()}.parquet")
    if not keep_simulation:
        _generated.cache_clear()
    return {
        "records": records,
        "simulate_seconds": simulated,
        "parquet_bytes": sum(p.stat().st_size for p in parquet_dir.glob("*.parquet")),
    }


def raw_floor(parquet_dir: Path) -> dict:
    """DuckDB reading the generated Parquet and one grouped scan over it."""
    import duckdb

    began = time.time()
    with duckdb.connect() as con:
        rows = con.execute(
            "select event_name, count(*) as n, count(distinct anonymous_id) as persons, "
            "min(event_time), max(event_time) from read_parquet(?) group by event_name",
            [str(parquet_dir / "*.parquet")],
        ).fetchall()
    return {"seconds": time.time() - began, "groups": len(rows), "rows": sum(r[1] for r in rows)}


def run_pipeline(defs, first: str, last: str, instance) -> tuple[object, list[Stage]]:
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    from orchestration.resources import EventSourceResource

    # The job's own assets, checks and resources; only the source is set here. `file`: the file
    # source reads the Parquet that `generate` wrote, as a user's daily exports would be read.
    # `demo`: the generator runs inside the ingest step (sized as config, not DEMO_* variables,
    # which the resource reads as strings), so the ingest also pays for making the records.
    if os.environ["ANALYTICS_SOURCE"] == "file":
        source = EventSourceResource(kind="file", path=os.environ["ANALYTICS_SOURCE_PATH"])
    else:
        source = EventSourceResource(
            kind="demo",
            demo_persons=int(os.environ["BENCH_PERSONS"]),
            demo_days=int(os.environ["BENCH_DAYS"]),
            demo_start=os.environ["BENCH_START"],
            demo_activity=os.environ["BENCH_ACTIVITY"],
        )
    since = time.time()
    job = defs.get_job_def("analytics_pipeline")
    result = job.execute_in_process(
        resources={**defs.resources, "event_source": source},
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
        raise_on_error=False,
    )
    return result, _stages(defs, instance, result, since)


def run_report(defs, last: str, instance) -> tuple[object | None, list[Stage]]:
    """What ``make run`` does after the pipeline (orchestration/run.py): the weekly report of the
    last complete week up to ``last``, its assets only (no Slack or SMTP settings here, so the
    deliveries say they were skipped). ``(None, [])`` when the days hold no complete week."""
    from orchestration.run import execute_weekly_report, report_week

    week = report_week(date.fromisoformat(last))
    if week is None:
        return None, []
    since = time.time()
    result = execute_weekly_report(defs, instance, week)
    return result, _stages(defs, instance, result, since)


def _stages(defs, instance, result, since: float) -> list[Stage]:
    """The run's steps as bench stages; the dbt step split by model (``dbt_stages``)."""
    import dagster as dg

    group_of_step = {}
    for assets_def in defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.group_names_by_key:
            groups = set(assets_def.group_names_by_key.values())
            group_of_step[assets_def.node_def.name] = (
                "dbt" if len(groups) > 1 else next(iter(groups))
            )
    stages = []
    for step in step_stages(instance, result.run_id, group_of_step):
        group = step.detail["group"]
        if group == "dbt":
            manifest = json.loads((REPO / "dbt_project" / "target" / "manifest.json").read_text())
            run_results = _latest_run_results(REPO / "dbt_project" / "target", since, result.run_id)
            inner = dbt_stages(run_results, manifest)
            stages += [
                Stage(f"dbt: {s.name}", s.seconds, s.start, s.end, detail=s.detail) for s in inner
            ]
            # What the step costs outside dbt's node timings: before the first node (dbt start-up,
            # parse) and after the last (Dagster's row counts, previews and mart reports).
            first = min((s.start for s in inner), default=step.start)
            last = max((s.end for s in inner), default=step.start)
            startup = max(min(first, step.end) - step.start, 0.0)
            after = max(step.end - max(last, step.start), 0.0)
            between = step.seconds - sum(s.seconds for s in inner) - startup - after
            stages.append(
                Stage(
                    "dbt: start-up (before the first node)",
                    startup,
                    step.start,
                    max(first, step.start),
                )
            )
            stages.append(Stage("dbt: gaps between nodes", max(between, 0.0), step.start, step.end))
            stages.append(
                Stage(
                    "dbt: metadata after the build (counts, previews, reports)",
                    after,
                    min(last, step.end),
                    step.end,
                )
            )
        else:
            label = GROUP_STAGES.get(group, group or "check")
            stages.append(
                Stage(
                    f"{label}: {step.name}", step.seconds, step.start, step.end, detail=step.detail
                )
            )
    return stages


def bench(
    scale: int,
    days: int,
    start: date = date(2026, 9, 1),
    workdir: Path | None = None,
    daily: bool = True,
    activity: float = BENCH_ACTIVITY,
    source: str = "demo",
    warehouse: str = "duckdb",
) -> dict:
    """Run the whole bench; returns the results (also what is written as JSON). The seed is the
    demo's default (the event source resource has no seed setting), so runs are reproducible.

    ``warehouse="postgres"``: the dbt target and the assets' tables are on the PostgreSQL server
    that ``DBT_POSTGRES_HOST``, ``_PORT``, ``_USER`` and ``_PASSWORD`` name, in a database the
    bench creates for the run (``bench_<random>``) and drops afterwards, or keeps with ``workdir``
    (its name is in the results). Dagster's own storage stays SQLite in the work folder."""
    from orchestration.ingest.demo import DemoConfig

    seed = DemoConfig().seed
    own_workdir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="bench-"))
    database = _create_postgres_database() if warehouse == "postgres" else None
    for name in (
        "DEMO_PERSONS",
        "DEMO_DAYS",
        "DEMO_START",
        "DEMO_SEED",
        "DEMO_ACTIVITY",
        "ANALYTICS_SOURCE_PATH",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "ANALYTICS_SOURCE": source,
            "BENCH_PERSONS": str(scale),
            "BENCH_DAYS": str(days),
            "BENCH_START": start.isoformat(),
            "BENCH_ACTIVITY": repr(float(activity)),
            "DUCKDB_DATABASE": str(workdir / "warehouse.duckdb"),
            "DAGSTER_HOME": str(workdir / "dagster_home"),
            "REPORTS_DIR": str(workdir / "reports"),
            # The file source's day index lives with the run's other state, so that each bench
            # starts without one and its daily run reads what a deployment's would.
            "ANALYTICS_SOURCE_INDEX": str(workdir / "file_source_days.index"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1"),
        }
    )
    if source == "file":
        os.environ["ANALYTICS_SOURCE_PATH"] = str(workdir / "parquet")
    os.environ["DBT_TARGET"] = warehouse
    if database:
        os.environ["DBT_POSTGRES_DBNAME"] = database
    (workdir / "dagster_home").mkdir(parents=True, exist_ok=True)
    (workdir / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    sampler = MemorySampler()
    sampler.start()
    try:
        try:
            import dagster as dg

            t0 = time.time()
            generated = generate(
                scale, days, seed, start, workdir / "parquet", activity, source == "demo"
            )
            t1 = time.time()
            floor = raw_floor(workdir / "parquet")
            # What a deploy does once (make manifest): dbt parse in the runs' environment, so
            # that each run's dbt build reuses it. Timed, but not part of the pipeline.
            from orchestration.transform.parse import parse_manifest

            t_floor = time.time()
            parse_manifest()
            t2 = time.time()
            # The definitions with resources from this bench's environment: `definitions.defs` was
            # built when first imported, maybe for another warehouse (an earlier bench in the same
            # process, as in the tests).
            from orchestration.definitions import build_definitions

            defs = build_definitions()
            with dg.DagsterInstance.from_config(str(workdir / "dagster_home")) as instance:
                last = (start + timedelta(days=days - 1)).isoformat()
                result, stages = run_pipeline(defs, start.isoformat(), last, instance)
                # Then the weekly report, as `make run` does after a good pipeline run.
                report, report_stages = (
                    run_report(defs, last, instance) if result.success else (None, [])
                )
                stages += report_stages
                t3 = time.time()
                daily_result, daily_stages = (
                    run_pipeline(defs, last, last, instance) if daily else (None, [])
                )
                t4 = time.time()
        finally:
            sampler.stop()
        counts = _row_counts(defs.resources["duckdb"])
    finally:
        if database and own_workdir:
            _drop_postgres_database(database)
    for stage in stages + daily_stages:
        stage.peak_rss = sampler.peak(stage.start, stage.end)
    failed_steps = [s.name for s in stages if s.detail.get("status") == "STEP_FAILURE"]
    out = {
        "scale": scale,
        "days": days,
        "activity": activity,
        "source": source,
        "warehouse": warehouse,
        "postgres_database": database,
        "seed": seed,
        "started": datetime.fromtimestamp(t0, UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count()},
        "generate": {**generated, "seconds": t1 - t0, "peak_rss": sampler.peak(t0, t1)},
        "raw_floor": {**floor, "peak_rss": sampler.peak(t1, t_floor)},
        "prepare": {"seconds": t2 - t_floor, "peak_rss": sampler.peak(t_floor, t2)},
        "pipeline": {
            "success": bool(result.success) and (report is None or bool(report.success)),
            "report_built": report is not None,
            "seconds": t3 - t2,
            "peak_rss": sampler.peak(t2, t3),
            "stages": [stage.__dict__ for stage in stages],
            "row_counts": counts,
            "failed_steps": failed_steps,
        },
        "daily_run": {
            "success": bool(daily_result.success) if daily_result else None,
            "seconds": t4 - t3,
            "peak_rss": sampler.peak(t3, t4) if daily_result else 0,
            "stages": [stage.__dict__ for stage in daily_stages],
        },
        "peak_rss": sampler.peak(),
        "ru_maxrss_self_bytes": _ru_maxrss("RUSAGE_SELF"),
        "ru_maxrss_children_bytes": _ru_maxrss("RUSAGE_CHILDREN"),
    }
    out["pipeline"]["ratio_to_raw_floor"] = out["pipeline"]["seconds"] / max(floor["seconds"], 1e-9)
    out["budgets"] = budgets(out)
    if own_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return out


# The budgets (issue 9, "Benchmark"), for 1M persons x 30 days on a 2-core machine: the
# whole pipeline, its memory, and the seed budgets each beaten 5x. Each names the stages it adds up.
PIPELINE_BUDGET_SECONDS = 90.0
MEMORY_BUDGET_BYTES = 8e9
SEED_BUDGETS = {
    # name: (the seed budget in seconds, the stages timed against a fifth of it)
    "30 days of 1M persons (10 minutes / 5)": (600.0, None),  # None: the whole pipeline
    "a 5-variant test (2 minutes / 5)": (
        120.0,
        (
            "dbt: int_experiment_exposures",
            "dbt: int_experiment_outcomes",
            "dbt: experiment_exposures_daily",
            "experiments: experiment_health",
            "check: experiment_health_experiment_health_srm",
            "experiments: experiment_analysis",
        ),
    ),
    "100,000 paths (3 minutes / 5)": (
        180.0,
        (
            "dbt: int_journey_steps",
            "dbt: path_transitions",
            "dbt: top_paths",
            "dbt: path_drop_offs",
        ),
    ),
}


def budgets(out: dict) -> list[dict]:
    """The run's figures against the issue's budgets: name, budget, measured, met. The budgets are
    for the default scale (1M persons x 30 days); at another scale they are printed all the same,
    and say so. The 10-segment budget needs ten breakdowns configured: bench/README.md says how it
    was measured by hand."""
    pipeline = out["pipeline"]
    seconds = {stage["name"]: stage["seconds"] for stage in pipeline["stages"]}
    rows = [
        {
            "name": "whole pipeline, report included",
            "budget": PIPELINE_BUDGET_SECONDS,
            "measured": pipeline["seconds"],
            "unit": "s",
        },
        {
            "name": "peak memory of the bench (process tree)"
            + (", not the Postgres server's" if out.get("warehouse") == "postgres" else ""),
            "budget": MEMORY_BUDGET_BYTES,
            "measured": float(out["peak_rss"]),
            "unit": "bytes",
        },
    ]
    for name, (seed_seconds, stages) in SEED_BUDGETS.items():
        measured = (
            pipeline["seconds"] if stages is None else sum(seconds.get(s, 0.0) for s in stages)
        )
        rows.append({"name": name, "budget": seed_seconds / 5, "measured": measured, "unit": "s"})
    for row in rows:
        row["met"] = bool(pipeline["success"]) and row["measured"] < row["budget"]
        row["at_budget_scale"] = out["scale"] >= 1_000_000 and out["days"] >= 30
    return rows


def _postgres_admin():
    """A connection to the ``DBT_POSTGRES_*`` server's maintenance database (autocommit, as
    ``create database`` needs)."""
    import psycopg

    from orchestration import settings

    return psycopg.connect(
        host=settings.get("DBT_POSTGRES_HOST"),
        port=int(settings.get("DBT_POSTGRES_PORT")),
        user=settings.get("DBT_POSTGRES_USER"),
        password=os.environ.get("DBT_POSTGRES_PASSWORD") or None,
        dbname="postgres",
        autocommit=True,
        connect_timeout=5,
    )


def _create_postgres_database() -> str:
    name = f"bench_{uuid.uuid4().hex[:12]}"
    with _postgres_admin() as con:
        con.execute(f'create database "{name}"')
    return name


def _drop_postgres_database(name: str) -> None:
    with _postgres_admin() as con:
        con.execute(f'drop database if exists "{name}" with (force)')


def _row_counts(warehouse_resource) -> dict[str, int | None]:
    """The core tables' row counts, from the runs' warehouse resource (DuckDB or Postgres); None
    for a table the run did not get to build."""
    import dagster as dg

    counts: dict[str, int | None] = {}
    with dg.build_resources({"warehouse": warehouse_resource}) as resources:
        warehouse = resources.warehouse
        with warehouse.querying() as query:
            for table in ("raw.events", "fct_events", "fct_sessions", "dim_users"):
                relation = table if "." in table else f"{warehouse.models_schema}.{table}"
                try:
                    counts[table] = int(query(f"select count(*) as n from {relation}").iloc[0, 0])
                except Exception:  # noqa: BLE001 - either engine's error for a missing table
                    counts[table] = None
    return counts


def _ru_maxrss(who: str) -> int:
    import resource

    return resource.getrusage(getattr(resource, who)).ru_maxrss * 1024


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f}"


def format_table(out: dict) -> str:
    lines = [
        f"Bench: {out['scale']:,} persons x {out['days']} days, "
        f"{out['generate']['records']:,} records at activity {out['activity']}, "
        f"ingested from the {out['source']} source "
        f"(seed {out['seed']}, {out['machine']['cpus']} cpus)",
        "",
        f"{'stage':<58} {'seconds':>9} {'peak MB':>9}",
        "-" * 78,
    ]

    def row(name: str, seconds: float, rss: int) -> None:
        lines.append(f"{name:<58} {seconds:>9.2f} {_mb(rss):>9}")

    row(
        "generate (simulate + write Parquet)",
        out["generate"]["seconds"],
        out["generate"]["peak_rss"],
    )
    row(
        "raw floor (DuckDB: read Parquet + one grouped scan)",
        out["raw_floor"]["seconds"],
        out["raw_floor"]["peak_rss"],
    )
    row(
        "prepare (dbt parse, once per deploy: make manifest)",
        out["prepare"]["seconds"],
        out["prepare"]["peak_rss"],
    )
    lines.append(
        "pipeline (analytics_pipeline job, all days; then the weekly report of the last complete"
        " week, as make run does):"
    )
    for stage in out["pipeline"]["stages"]:
        row("  " + stage["name"], stage["seconds"], stage["peak_rss"])
    p = out["pipeline"]
    row(
        f"pipeline total ({'ok' if p['success'] else 'FAILED'}; "
        f"{p['ratio_to_raw_floor']:.1f}x the raw floor)",
        p["seconds"],
        p["peak_rss"],
    )
    d = out["daily_run"]
    if d["stages"]:
        lines.append("daily run (the last day landed again, after the first run):")
        for stage in d["stages"]:
            row("  " + stage["name"], stage["seconds"], stage["peak_rss"])
        row(f"daily run total ({'ok' if d['success'] else 'FAILED'})", d["seconds"], d["peak_rss"])
    scale_note = "" if out["budgets"][0]["at_budget_scale"] else " (budgets are for 1M x 30 days)"
    lines += ["-" * 78, f"against the issue's budgets{scale_note}:"]
    for budget in out["budgets"]:
        if budget["unit"] == "bytes":
            figures = f"{budget['measured'] / 1e9:.2f} GB < {budget['budget'] / 1e9:.0f} GB"
        else:
            figures = f"{budget['measured']:.1f} s < {budget['budget']:.0f} s"
        verdict = "met" if budget["met"] else "MISSED"
        lines.append(f"  {budget['name']:<50} {figures:>20}  {verdict}")
    lines += [
        "-" * 78,
        f"peak RSS of the whole bench (process tree): {_mb(out['peak_rss'])} MB",
        f"rows: {out['pipeline']['row_counts']}",
        f"failed steps: {', '.join(out['pipeline']['failed_steps']) or 'none'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        type=int,
        default=int(os.environ.get("SCALE", 1_000_000)),
        help="persons (default 1,000,000; env SCALE)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=int(os.environ.get("DAYS", 30)),
        help="days (default 30; env DAYS)",
    )
    parser.add_argument(
        "--activity",
        type=float,
        default=float(os.environ.get("ACTIVITY", BENCH_ACTIVITY)),
        help=f"the demo's DEMO_ACTIVITY (default {BENCH_ACTIVITY:g}: about 40 events per person"
        " in 30 days; 1 is the demo's own, about 5.7; env ACTIVITY)",
    )
    parser.add_argument(
        "--source",
        choices=("file", "demo"),
        default=os.environ.get("SOURCE", "demo"),
        help="what the ingest reads: 'demo' (default, as every earlier run), the generator"
        " itself, run again inside the ingest; 'file', the generated Parquet through the file"
        " source, as a user's daily exports (env SOURCE)",
    )
    parser.add_argument(
        "--warehouse",
        choices=("duckdb", "postgres"),
        default=os.environ.get("WAREHOUSE", "duckdb"),
        help="the dbt target and the assets' tables: 'duckdb' (default), or 'postgres': a new"
        " database on the DBT_POSTGRES_* server, dropped afterwards unless --keep (env"
        " WAREHOUSE)",
    )
    parser.add_argument(
        "--no-daily", action="store_true", help="skip the one-day run after the first"
    )
    parser.add_argument(
        "--keep", type=Path, help="work in this folder and keep it (warehouse, Parquet)"
    )
    parser.add_argument(
        "--output", type=Path, help="JSON path (default bench/results/<timestamp>.json)"
    )
    args = parser.parse_args(argv)
    out = bench(
        args.scale,
        args.days,
        workdir=args.keep,
        daily=not args.no_daily,
        activity=args.activity,
        source=args.source,
        warehouse=args.warehouse,
    )
    print(format_table(out))
    path = args.output or RESULTS_DIR / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwritten: {path}")
    return 0 if out["pipeline"]["success"] else 1


if __name__ == "__main__":
    sys.exit(main())
