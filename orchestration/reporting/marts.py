"""Reading what the weekly report needs from the warehouse (a DuckDB connection in, DataFrames out).

The event-level marts are read for the two weeks the report compares only; the aggregate marts
are small and read whole. ``ux_recommendations`` (learning) and ``experiment_results``
(experiments) are read when the table exists: the report says "none available" otherwise, so a
report is still built when those stages did not run.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pandas as pd

from orchestration.resources import TableSlice

SCHEMA = "main"
WEEK = timedelta(days=7)
# Every table the readers below use: the report's upstream assets, and what is copied from a
# Postgres warehouse.
REPORT_TABLES = (
    "fct_events",
    "dim_users",
    "funnel_conversion",
    "retention_cohorts",
    "active_users",
    "ux_recommendations",
    "experiment_results",
)

# Optional tables: the report's column -> the candidate columns of the table, first found wins.
EXPERIMENT_COLUMNS = {
    "experiment": ("experiment_name", "experiment"),
    "metric": ("metric_name", "metric"),
    "variant": ("variant",),
    "relative_lift": ("relative_lift", "lift_relative", "relative_uplift"),
    "p_value": ("p_value_adjusted", "p_value"),
    "significant": ("is_significant", "significant"),
}


def table_exists(con, name: str) -> bool:
    # fetchall, not fetchone: DuckDB 2 keeps a result that was not read to its end open, and
    # refuses the connection's next relation (`con.sql`) until it is.
    [(count,)] = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ?",
        [SCHEMA, name],
    ).fetchall()
    return bool(count)


def _window(week_start: date) -> tuple[datetime, datetime]:
    """The report week and the week before: [start, end)."""
    start = datetime.combine(week_start - WEEK, time.min)
    return start, start + 2 * WEEK


# What the report reads of fct_events, column -> expression: the properties of purchases only
# (their revenue is all it reads them for), so that the others stay in the warehouse.
EVENT_EXPRESSIONS = {
    "event_name": "event_name",
    "event_time": "event_time",
    "person_id": "person_id",
    "properties": "case when event_name = 'purchase' then properties end",
}
USER_COLUMNS = ("person_id", "first_seen_at")


def _week_slices(week_start: date) -> tuple[TableSlice, TableSlice]:
    """The parts of ``fct_events`` and ``dim_users`` the report reads: the report week and the
    week before, as SQL that DuckDB and Postgres both run."""
    start, end = (f"timestamp '{moment.isoformat(sep=' ')}'" for moment in _window(week_start))
    in_window = "{column} >= " + start + " and {column} < " + end
    return (
        TableSlice(
            "fct_events", tuple(EVENT_EXPRESSIONS.items()), in_window.format(column="event_time")
        ),
        TableSlice("dim_users", USER_COLUMNS, in_window.format(column="first_seen_at")),
    )


def report_slices(week_start: date) -> list[TableSlice]:
    """What :func:`read_marts` and the other readers below read of each of ``REPORT_TABLES``:
    on a Postgres warehouse only that is copied (of ``fct_events``, two weeks of four columns)."""
    sliced = {part.table: part for part in _week_slices(week_start)}
    return [sliced.get(name, TableSlice(name)) for name in REPORT_TABLES]


def read_marts(con, week_start: date) -> dict[str, pd.DataFrame]:
    """``fct_events`` and ``dim_users`` for the report week and the week before, and the
    ``funnel_conversion``, ``retention_cohorts`` and ``active_users`` marts; and
    ``experiment_results`` as it is, when the experiments stage has written it."""
    events, users = _week_slices(week_start)
    optional = {
        name: con.execute(f"select * from main.{name}").df()
        for name in ("experiment_results",)
        if table_exists(con, name)
    }
    event_columns = ", ".join(f"{sql} as {name}" for name, sql in EVENT_EXPRESSIONS.items())
    return {
        **optional,
        # Through Arrow: DuckDB's own DataFrame conversion of the two weeks' text columns took
        # 14.5 s at 40M events (24M rows), Arrow's 0.75 s.
        "fct_events": _frame(
            con, f"select {event_columns} from main.fct_events where {events.where}"
        ),
        "dim_users": _frame(
            con, f"select {', '.join(USER_COLUMNS)} from main.dim_users where {users.where}"
        ),
        "funnel_conversion": con.execute("select * from main.funnel_conversion").df(),
        "retention_cohorts": con.execute("select * from main.retention_cohorts").df(),
        "active_users": con.execute("select * from main.active_users").df(),
    }


def _frame(con, sql: str) -> pd.DataFrame:
    return con.sql(sql).to_arrow_table().to_pandas()


def read_ux_recommendations(con) -> pd.DataFrame | None:
    if not table_exists(con, "ux_recommendations"):
        return None
    return con.execute("select * from main.ux_recommendations order by rank").df()


def read_experiments(con) -> pd.DataFrame | None:
    """``experiment_results`` with its columns renamed to what ``build_report_data`` reads."""
    if not table_exists(con, "experiment_results"):
        return None
    frame = con.execute("select * from main.experiment_results").df()
    renamed = {}
    for target, candidates in EXPERIMENT_COLUMNS.items():
        found = next((c for c in candidates if c in frame.columns), None)
        if found is not None:
            renamed[target] = frame[found]
    if "experiment" not in renamed or "p_value" not in renamed:
        return None
    return pd.DataFrame(renamed)
