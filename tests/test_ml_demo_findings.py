"""The demo's planted findings, recovered by the model functions from mart-shaped frames.

The marts are rebuilt here in pandas from the demo's raw records with the same rules as the dbt
models (drop malformed records and re-sends, stitch anonymous ids to users, 30-minute sessions),
so that these tests need no warehouse; the end-to-end run through dbt and Dagster is the
pipeline's own test.
"""

from __future__ import annotations

import pandas as pd
import pytest

from ml.features import activity_features, first_day_features, funnel_levels, step_behaviour
from ml.friction import friction_clusters
from ml.patterns import baskets, frequent_patterns
from ml.prediction import auc_clearly_above_chance, train_conversion_models
from ml.recommendations import evaluate, interactions_from_events, user_recommendations
from ml.segmentation import segment_users
from ml.ux_recommendations import ux_recommendations
from orchestration.ingest.demo import FUNNEL, DemoConfig, generate
from orchestration.learning.tables import feature_weights


def demo_marts(persons: int = 2000, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fct_events, dim_users) shaped frames from the demo generator."""
    raw = generate(DemoConfig(persons=persons, seed=seed))
    ev = raw[raw["event_name"].notna() & (raw["user_id"].notna() | raw["anonymous_id"].notna())]
    ev = ev.assign(
        event_time=pd.to_datetime(ev["event_time"], errors="coerce", utc=True, format="ISO8601")
    )
    ev = ev[ev["event_time"].notna()].drop_duplicates("event_id").copy()
    ev["event_time"] = ev["event_time"].dt.tz_localize(None).astype("datetime64[us]")
    links = ev.dropna(subset=["user_id"]).groupby("anonymous_id")["user_id"].first()
    ev["person_id"] = ev["user_id"].fillna(ev["anonymous_id"].map(links)).fillna(ev["anonymous_id"])
    ev = ev.sort_values(["person_id", "event_time", "event_id"]).reset_index(drop=True)
    gap = ev.groupby("person_id")["event_time"].diff()
    new = (gap.isna() | (gap > pd.Timedelta(minutes=30))).astype(int)
    ev["session_id"] = ev["person_id"] + "#" + new.groupby(ev["person_id"]).cumsum().astype(str)
    first = ev.groupby("person_id").first()
    utm = ev["properties"].str.extract(r'"utm_source": "([^"]+)"')[0]
    users = pd.DataFrame(
        {
            "person_id": first.index,
            "first_platform": first["platform"].to_numpy(),
            "country": first["country"].to_numpy(),
            "first_utm_source": utm.groupby(ev["person_id"])
            .first()
            .reindex(first.index)
            .to_numpy(),
        }
    )
    cols = [
        "event_id",
        "event_name",
        "event_time",
        "person_id",
        "session_id",
        "platform",
        "country",
        "properties",
    ]
    return ev[cols], users


@pytest.fixture(scope="module")
def demo():
    events, users = demo_marts()
    levels = funnel_levels(events, FUNNEL)
    behaviour = step_behaviour(events, levels, users, FUNNEL)
    return events, users, levels, behaviour


def test_android_create_project_ranks_first_and_reruns_are_identical(demo):
    _, _, _, behaviour = demo
    friction = friction_clusters(behaviour)
    recs = ux_recommendations(behaviour, friction.clusters, friction.profiles)
    top = recs.iloc[0]
    assert (top["step"], top["dimension"], top["segment"]) == (
        "create_project",
        "platform",
        "android",
    )
    assert top["pattern"] == "errors_before_leaving" and bool(top["significant"])
    assert top["recoverable_persons"] == pytest.approx(
        top["persons"] * (top["best_rate"] - top["conversion_rate"])
    )
    assert "hit errors" in top["friction_cluster"] and "on android" in top["friction_cluster"]

    again = friction_clusters(behaviour)
    pd.testing.assert_frame_equal(friction.clusters, again.clusters)
    pd.testing.assert_frame_equal(friction.profiles, again.profiles)
    pd.testing.assert_frame_equal(
        recs, ux_recommendations(behaviour, again.clusters, again.profiles)
    )


def test_friction_clusters_at_create_project_name_the_android_error_group(demo):
    _, _, _, behaviour = demo
    friction = friction_clusters(behaviour, steps=["create_project"])
    names = friction.profiles["name"].tolist()
    assert any("hit errors" in n and "on android" in n for n in names)
    assert (
        friction.profiles["persons"].sum()
        == (~behaviour.query("step == 'create_project'")["converted"]).sum()
    )


def test_conversion_prediction_is_clearly_above_chance(demo):
    events, users, levels, _ = demo
    models = train_conversion_models(first_day_features(events, levels, users, FUNNEL))
    m = models.metrics
    assert auc_clearly_above_chance(m["logistic_auc"], m["test_positives"], m["test_negatives"])
    assert m["tree_clearly_above_chance"]


def test_segments_patterns_and_recommendations_run_and_repeat(demo):
    events, _, levels, _ = demo
    activity = activity_features(events, levels, FUNNEL)
    seg = segment_users(activity, k_range=range(2, 5))
    assert seg.profiles["persons"].sum() == len(activity) and seg.silhouette > 0.25
    paying = seg.profiles[seg.profiles["mean_revenue"] > 0]
    assert (paying["mean_converted"] > 0.9).all()

    found = frequent_patterns(baskets(events), min_support=0.05, min_confidence=0.6)
    rule = found.rules.set_index(["antecedents", "consequents"]).loc[("error", "view_help")]
    assert rule["confidence"] > 0.6 and rule["lift"] > 3

    interactions = interactions_from_events(events, feature_weights(events["event_name"].unique()))
    metrics = evaluate(interactions)
    assert {"als_precision_at_10", "popularity_recall_at_10"} <= set(metrics)
    assert evaluate(interactions) == metrics
    recs = user_recommendations(interactions, persons=["user-0000004", "nobody"])
    assert recs.loc[recs["person_id"] == "nobody", "source"].eq("popular").all()
