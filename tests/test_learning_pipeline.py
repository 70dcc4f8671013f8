"""The learning assets through the real graph: raw extract -> core dbt marts -> learning tables,
on small demo data (the planted findings come out, reruns are identical) and on a file where
conversion is a coin flip (the blocking AUC check fails and stops what is downstream)."""

import json
from datetime import date, datetime, timedelta

import dagster as dg
import numpy as np
import pytest
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from orchestration.learning.tables import SCHEMAS
from orchestration.resources import EventSourceResource
from tests.pipeline import check_evaluations, materialized_keys, query

pytestmark = pytest.mark.e2e

CORE_AND_LEARNING = dg.AssetSelection.assets(
    "fct_events", "dim_users", "fct_sessions"
).upstream() | dg.AssetSelection.groups("learning")
TABLES = sorted(SCHEMAS)


@dg.asset(deps=["conversion_predictions"], group_name="test_probe")
def report_probe() -> None:
    """Stands in for the report built from the predictions: it must not build from a bad model."""


def materialize(first: date, last: date, source, selection, instance=None):
    """Like tests.pipeline.materialize_days, with the definitions' asset checks and the probe."""
    from orchestration.definitions import defs
    from orchestration.resources import build_resources

    return dg.materialize(
        [*defs.assets, *defs.asset_checks, report_probe],
        resources={**build_resources(), "event_source": source},
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.isoformat(),
            ASSET_PARTITION_RANGE_END_TAG: last.isoformat(),
        },
        selection=selection,
        instance=instance,
        raise_on_error=False,
    )


def tables(path) -> dict[str, list[tuple]]:
    return {t: query(path, f"select * from main.{t} order by all") for t in TABLES}


def metadata(instance, key: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def test_demo_learning_finds_the_planted_friction_and_reruns_identically(duckdb_path):
    source = EventSourceResource(kind="demo", demo_persons=1500, demo_days=21)
    instance = dg.DagsterInstance.ephemeral()
    first, last = date(2026, 9, 1), date(2026, 9, 21)
    result = materialize(
        first, last, source, CORE_AND_LEARNING | dg.AssetSelection.assets("report_probe"), instance
    )
    assert result.success
    assert set(TABLES) | {"report_probe"} <= materialized_keys(result)
    checks = check_evaluations(result)
    assert checks["conversion_prediction_auc_above_chance"].passed
    assert checks["ux_recommendations_are_consistent"].passed

    top = query(
        duckdb_path,
        "select step, dimension, segment, pattern, significant "
        "from ux_recommendations where rank = 1",
    )
    assert top == [("create_project", "platform", "android", "errors_before_leaving", True)]
    for table in TABLES:
        columns = [r[0] for r in query(duckdb_path, f"describe main.{table}")]
        assert columns == [c.name for c in SCHEMAS[table].columns], table
        assert query(duckdb_path, f"select count(*) from main.{table}")[0][0] > 0, table

    ux = metadata(instance, "ux_recommendations")
    assert "android" in ux["top_recommendations"].splitlines()[2]
    prediction = metadata(instance, "conversion_predictions")
    assert prediction["logistic_auc"] > 0.75 and prediction["tree_auc"] > 0.75
    assert {"logistic_auc_95ci", "logistic_coefficients", "tree_importances"} <= set(prediction)
    friction = metadata(instance, "friction_cluster_profiles")
    assert 2 <= friction["k_create_project"] <= 6 and 0 < friction["silhouette_create_project"] <= 1
    recs = metadata(instance, "user_recommendations")
    assert {
        "als_precision_at_10",
        "als_recall_at_10",
        "popularity_precision_at_10",
        "popularity_recall_at_10",
    } <= set(recs)
    assert "error" in metadata(instance, "event_patterns")["top_rules_by_lift"]

    before = tables(duckdb_path)
    again = materialize(first, last, source, dg.AssetSelection.groups("learning"), instance)
    assert again.success
    assert tables(duckdb_path) == before


def _event(event_id, name, time, person, platform, country):
    return {
        "event_id": event_id,
        "event_name": name,
        "event_time": time.isoformat() + "Z",
        "user_id": person,
        "anonymous_id": None,
        "platform": platform,
        "country": country,
        "properties": {},
    }


@pytest.fixture
def coin_flip_file(tmp_path):
    """Everyone does the first four onboarding steps on day one and browses a random amount;
    whether they then activate is a fair coin, unrelated to anything the model sees."""
    rng = np.random.default_rng(7)
    start = datetime(2026, 9, 1, 8)
    events = []
    for i in range(600):
        person = f"p{i:03d}"
        platform = ["web", "ios", "android"][rng.integers(3)]
        country = ["DE", "US", "FR"][rng.integers(3)]
        t = start + timedelta(days=int(rng.integers(10)), minutes=int(rng.integers(600)))
        names = ["signup", "verify_email", "create_project", "invite_teammate"]
        names += ["page_view"] * int(rng.integers(1, 6))
        for n, name in enumerate(names):
            events.append(
                _event(
                    f"{person}-{n}", name, t + timedelta(minutes=2 * n), person, platform, country
                )
            )
        if rng.random() < 0.5:
            events.append(
                _event(f"{person}-a", "activate", t + timedelta(days=2), person, platform, country)
            )
    # A last event after everyone's 7-day window has closed, so every outcome is known.
    events.append(_event("last", "page_view", datetime(2026, 9, 20, 12), "p000", "web", "DE"))
    path = tmp_path / "coin_flip.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return path


def test_auc_check_blocks_what_is_downstream_when_conversion_is_random(duckdb_path, coin_flip_file):
    source = EventSourceResource(kind="file", path=str(coin_flip_file))
    instance = dg.DagsterInstance.ephemeral()
    result = materialize(
        date(2026, 9, 1),
        date(2026, 9, 20),
        source,
        dg.AssetSelection.assets("fct_events", "dim_users", "fct_sessions").upstream()
        | dg.AssetSelection.assets(
            "conversion_predictions", "user_recommendations", "report_probe"
        ),
        instance,
    )
    assert not result.success
    check = check_evaluations(result)["conversion_prediction_auc_above_chance"]
    assert check.passed is False
    assert "not clearly above chance" in check.description
    built = materialized_keys(result)
    assert "conversion_predictions" in built
    assert "report_probe" not in built, "a blocking check failed: nothing downstream builds"
    assert query(duckdb_path, "select count(*) from conversion_predictions")[0][0] == 600

    # No feature events at all: the recommender says so instead of inventing a number.
    assert query(duckdb_path, "select count(*) from user_recommendations")[0][0] == 0
    assert "interactions" in metadata(instance, "user_recommendations")["insufficient_data"]
