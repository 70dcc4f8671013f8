"""The learning result tables: their columns, and reading marts from / writing tables to DuckDB.

Each result table has one :class:`dagster.TableSchema` here. It is shown in the UI as the asset's
column schema and is also what is written: every column is cast to its declared type, so a table
has the same shape whether the model produced rows or an empty result (insufficient data).
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import pandas as pd
from dagster_duckdb import DuckDBResource

from orchestration import metrics_config, warehouse

SCHEMA = warehouse.SCHEMA


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


def replace_table(duckdb: DuckDBResource, name: str, frame: pd.DataFrame) -> int:
    """Replace ``main.<name>`` with ``frame`` cast to the learning table's schema."""
    return warehouse.replace_table(duckdb, name, frame, SCHEMAS[name])


def read_table(duckdb: DuckDBResource, name: str) -> pd.DataFrame:
    with duckdb.get_connection() as con:
        return con.execute(f"select * from {SCHEMA}.{warehouse.quote(name)}").df()


def read_events(duckdb: DuckDBResource, with_properties: bool = False) -> pd.DataFrame:
    """``fct_events``' person, event, time and session (and ``properties`` if asked), in a stable
    order so that every model sees the same rows in the same order on every run."""
    properties = ", properties" if with_properties else ""
    with duckdb.get_connection() as con:
        return con.execute(
            "select person_id, event_name, event_time, session_id"
            f"{properties} from {SCHEMA}.fct_events order by person_id, event_time, event_id"
        ).df()


def read_users(duckdb: DuckDBResource) -> pd.DataFrame:
    with duckdb.get_connection() as con:
        return con.execute(
            "select person_id, first_platform, country, first_utm_source"
            f" from {SCHEMA}.dim_users order by person_id"
        ).df()


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
