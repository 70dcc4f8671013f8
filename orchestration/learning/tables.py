"""The learning result tables: their columns, and reading marts from / writing tables to DuckDB.

Each result table has one :class:`dagster.TableSchema` here. It is shown in the UI as the asset's
column schema and is also what is written: every column is cast to its declared type, so a table
has the same shape whether the model produced rows or an empty result (insufficient data).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import dagster as dg
import numpy as np
import pandas as pd

from ml.errors import InsufficientDataError
from ml.features import EventLog
from orchestration import metrics_config, warehouse
from orchestration.behaviour_config import BehaviourConfig, funnel_steps
from orchestration.resources import TableSlice, WarehouseResource, sql_text

SCHEMA = warehouse.SCHEMA
WORD_BITS = 63  # event names per BIGINT bit mask (the sign bit stays clear)


def _schema(*columns: tuple[str, str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, type_, description) for name, type_, description in columns]
    )


_STEP_MEANS = [
    (f"mean_{col}", "DOUBLE", f"mean {col.replace('_', ' ')} in the cluster")
    for col in (
        "minutes_at_step",
        "events_at_step",
        "errors_at_step",
        "help_views_at_step",
        "sessions_before",
    )
]

SCHEMAS: dict[str, dg.TableSchema] = {
    "friction_clusters": _schema(
        ("person_id", "VARCHAR", "a person who dropped at the step"),
        ("step", "VARCHAR", "the funnel step they did not reach"),
        ("cluster", "INTEGER", "cluster within the step (0 = largest)"),
    ),
    "friction_cluster_profiles": _schema(
        ("step", "VARCHAR", "funnel step"),
        ("cluster", "INTEGER", "cluster within the step (0 = largest)"),
        ("persons", "BIGINT", "persons in the cluster"),
        ("share_of_dropped", "DOUBLE", "share of the step's droppers"),
        ("name", "VARCHAR", "plain-words name from the distinctive traits"),
        ("traits", "VARCHAR", "strongest distinctive traits with their lift against converters"),
        ("k", "INTEGER", "clusters chosen at the step (by silhouette)"),
        ("silhouette", "DOUBLE", "mean silhouette of the step's clustering"),
        *_STEP_MEANS,
    ),
    "ux_recommendations": _schema(
        ("rank", "INTEGER", "1 = act first (significant first, then recoverable persons)"),
        ("step", "VARCHAR", "funnel step"),
        ("dimension", "VARCHAR", "platform, country or channel"),
        ("segment", "VARCHAR", "the segment that converts worse"),
        ("persons", "BIGINT", "persons of the segment who attempted the step"),
        ("conversions", "BIGINT", "of whom passed it"),
        ("conversion_rate", "DOUBLE", "conversions / persons"),
        ("best_segment", "VARCHAR", "best-converting segment of the same dimension"),
        ("best_rate", "DOUBLE", "its conversion rate"),
        ("recoverable_persons", "DOUBLE", "persons x (best_rate - conversion_rate)"),
        ("p_value", "DOUBLE", "two-proportion z-test against the best segment"),
        ("significant", "BOOLEAN", "p_value below 0.05 / comparisons (Bonferroni)"),
        ("pattern", "VARCHAR", "first matching catalogue pattern (docs/learning.md)"),
        ("recommendation", "VARCHAR", "what to do"),
        ("friction_cluster", "VARCHAR", "largest friction cluster among the segment's droppers"),
        ("evidence", "VARCHAR", "the numbers behind the row (JSON text)"),
    ),
    "user_recommendations": _schema(
        ("person_id", "VARCHAR", "person"),
        ("rank", "INTEGER", "1 = best"),
        ("item", "VARCHAR", "recommended feature"),
        ("score", "DOUBLE", "ALS score, or persons with the item for popular picks"),
        ("source", "VARCHAR", "als, or popular for persons without interactions"),
    ),
    "conversion_predictions": _schema(
        ("person_id", "VARCHAR", "person who entered the funnel (window closed)"),
        ("split", "VARCHAR", "train or test (held out, scored by the AUC check)"),
        ("converted", "INTEGER", "1 when the person completed the funnel"),
        ("p_logistic", "DOUBLE", "logistic regression's probability of converting"),
        ("p_tree", "DOUBLE", "decision tree's probability of converting"),
    ),
    "user_segments": _schema(
        ("person_id", "VARCHAR", "person"),
        ("segment", "INTEGER", "behavioural segment (0 = largest)"),
        ("segment_name", "VARCHAR", "plain-words name of the segment"),
    ),
    "event_patterns": _schema(
        ("antecedents", "VARCHAR", "events (comma-separated) a person did"),
        ("consequents", "VARCHAR", "events they then also did"),
        ("support", "DOUBLE", "share of persons with all of them"),
        ("confidence", "DOUBLE", "support(all) / support(antecedents)"),
        ("lift", "DOUBLE", "confidence / support(consequents); > 1 = together more than chance"),
    ),
}


def replace_table(duckdb: WarehouseResource, name: str, frame: pd.DataFrame) -> int:
    """Replace ``main.<name>`` with ``frame`` cast to the learning table's schema."""
    return warehouse.replace_table(duckdb, name, frame, SCHEMAS[name])


def read_table(duckdb: WarehouseResource, name: str) -> pd.DataFrame:
    with duckdb.reading(name) as con:
        return con.execute(f"select * from {SCHEMA}.{warehouse.quote(name)}").df()


_RUN_INPUTS: dict = {}


def forget_run_inputs() -> None:
    """Let go of what :func:`once_per_run` holds (the warehouse resource calls this when a run
    ends)."""
    _RUN_INPUTS.clear()


def once_per_run(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, name: Hashable, read: Callable
):
    """``read()`` the first time a run asks for ``name`` from this warehouse; the same object
    when another asset of the run asks again.

    The learning assets of a run read the same marts, and those are final by then (they are
    upstream in the run); reading a million persons' event log takes seconds, and so does their
    funnel. The pipeline runs in one process, so its assets share; an asset run alone reads for
    itself. Only the latest run's inputs are kept, until the run ends (:func:`forget_run_inputs`),
    and nobody may modify what this returns.
    """
    run = (context.run.run_id, duckdb.identity)
    if _RUN_INPUTS.get("run") != run:
        _RUN_INPUTS.clear()
        _RUN_INPUTS["run"] = run
    if name not in _RUN_INPUTS:
        _RUN_INPUTS[name] = read()
    return _RUN_INPUTS[name]


def _event_names(con) -> list[str]:
    """The distinct event names of ``fct_events``, sorted: the codes both readers below use."""
    query = f"select distinct event_name from {SCHEMA}.fct_events order by 1"
    return [name for (name,) in con.execute(query).fetchall()]


def read_event_log(duckdb: WarehouseResource, properties_of: Sequence[str] = ()) -> EventLog:
    """``fct_events`` as an :class:`ml.features.EventLog`, with the JSON properties of the events
    called one of ``properties_of`` (the models read no others).

    Persons are numbered in SQL, so no per-event id becomes a Python string, and the events are
    not sorted: every feature is order-free. Sessions are numbered in SQL too: the sessions of
    the persons before (in person order), plus the session's ``session_number`` (1, 2, ... per
    person, fct_events), so that each (person_id, session_id) has its own number.
    """
    # The properties only of the events the models read them of: one expression, which Postgres
    # runs while copying (the others would be most of the bytes) and DuckDB in the query below.
    kept = ", ".join(map(sql_text, properties_of))
    picked = f"case when event_name in ({kept}) then properties end" if kept else "null"
    properties = f"cast({picked} as text)"
    # On a Postgres warehouse only the columns read here are copied.
    read = ("person_id", "event_name", "event_time", "session_number", ("properties", properties))
    with duckdb.reading(TableSlice("fct_events", read)) as con:
        con.execute(
            "create temp table learning_persons as select person_id,"
            " (row_number() over (order by person_id) - 1)::integer as person,"
            " coalesce(sum(sessions) over (order by person_id"
            " rows between unbounded preceding and 1 preceding), 0)::bigint as first_session"
            f" from (select person_id, max(session_number) as sessions from {SCHEMA}.fct_events"
            " group by person_id)"
        )
        persons = con.execute(
            "select person_id from learning_persons order by person"
        ).fetchnumpy()["person_id"]
        names = _event_names(con)
        columns = con.execute(
            "select learning_persons.person,"
            " list_position($names, event_name)::integer - 1 as name,"
            " epoch_us(event_time) as time,"
            " coalesce(learning_persons.first_session + session_number - 1, -1)::bigint as session,"
            f" {properties} as properties"
            f" from {SCHEMA}.fct_events join learning_persons using (person_id)",
            {"names": names},
        ).fetchnumpy()
    return EventLog(
        persons=pd.Index(persons),
        names=pd.Index(names),
        person=columns["person"],
        name=columns["name"],
        time=columns["time"],
        session=columns["session"],
        properties=_objects(columns["properties"]) if properties_of else None,
    )


def _objects(column: np.ndarray) -> np.ndarray:
    """A text column from ``fetchnumpy`` with None where SQL has null. (``np.ma.filled(column,
    None)`` would not do: None there means the array's default fill value, "?" for objects.)"""
    return np.where(np.ma.getmaskarray(column), None, np.ma.getdata(column))


def read_event_sets(duckdb: WarehouseResource) -> tuple[pd.DataFrame, np.ndarray]:
    """Each person's set of event names in ``fct_events``, as the distinct sets (one boolean
    column per event name, sorted) with the number of persons who have each: the baskets of
    :func:`ml.patterns.frequent_patterns`. The sets are built in SQL as bit masks, one BIGINT
    word per 63 event names, so no per-person row leaves DuckDB."""
    with duckdb.reading(TableSlice("fct_events", ("person_id", "event_name"))) as con:
        names = _event_names(con)
        if not names:
            raise InsufficientDataError("no events to build baskets from")
        words = range((len(names) + WORD_BITS - 1) // WORD_BITS)
        masks = ", ".join(
            f"bit_or(case when code // $bits = {word} then 1::bigint << (code % $bits)"
            f" else 0 end) as word_{word}"
            for word in words
        )
        columns = con.execute(
            f"select *, count(*) as persons from (select {masks} from"
            f" (select person_id, list_position($names, event_name) - 1 as code"
            f" from {SCHEMA}.fct_events) group by person_id) group by all",
            {"names": names, "bits": WORD_BITS},
        ).fetchnumpy()
    bits = np.arange(WORD_BITS)
    onehot = np.hstack([(columns[f"word_{word}"][:, None] >> bits & 1) == 1 for word in words])
    return (
        pd.DataFrame(onehot[:, : len(names)], columns=pd.Index(names, name="event_name")),
        columns["persons"],
    )


def read_users(duckdb: WarehouseResource) -> pd.DataFrame:
    """``dim_users``' segment columns, in person order (through Arrow: DuckDB's own DataFrame
    conversion of a million strings takes three times as long)."""
    columns = ("person_id", "first_platform", "country", "first_utm_source")
    with duckdb.reading(TableSlice("dim_users", columns)) as con:
        return (
            con.sql(
                f"select {', '.join(columns)} from {SCHEMA}.dim_users order by person_id"
            )
            .to_arrow_table()
            .to_pandas()
        )


@dataclass(frozen=True)
class LearningFunnel:
    name: str
    steps: list[str]
    window: pd.Timedelta


def learning_funnel() -> LearningFunnel:
    """The funnel the models learn from: the first funnel in the metrics configuration
    (config/analytics.yml or ANALYTICS_CONFIG), the product's main funnel by convention.

    The models follow windowFunnel's ordered semantics (ml.features.funnel_levels) whatever the
    funnel's ``order``/``granularity``; they need a bounded conversion window, because a person's
    outcome is only known once their window has closed.
    """
    config = metrics_config.load_config()
    if not config.funnels:
        raise dg.Failure(f"{config.path} declares no funnel: the learning assets need one")
    funnel = config.funnels[0]
    if funnel.conversion_window_seconds is None:
        raise dg.Failure(
            f"funnel {funnel.name!r} in {config.path} has no conversion window: the learning "
            "assets need a bounded one (e.g. 7d) to know when a person's outcome is final"
        )
    return LearningFunnel(
        funnel.name, list(funnel.steps), pd.Timedelta(seconds=funnel.conversion_window_seconds)
    )


def feature_weights(event_names: Sequence[str]) -> dict[str, float]:
    """The feature recommendations' items and the weight of a use of each: the events of
    ``behaviour.features.events`` (without that list, every one of ``event_names`` that is not a
    step of a configured funnel, as the feature marts take them), weighted by
    ``behaviour.features.weights`` (1 when unlisted)."""
    config = metrics_config.load_config()
    features = (config.behaviour or BehaviourConfig()).features
    events = features.events
    if events is None:
        steps = set(funnel_steps(config.funnels))
        events = [name for name in event_names if name not in steps]
    return {event: features.weights.get(event, 1.0) for event in events}
