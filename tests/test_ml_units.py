"""The model functions in ``ml/`` on tiny hand-made inputs whose answers are known."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from ml.clustering import choose_k, scale_features
from ml.errors import InsufficientDataError
from ml.features import activity_features, first_day_features, funnel_levels, step_behaviour
from ml.friction import cluster_step, describe_cluster, lift
from ml.patterns import baskets, frequent_patterns
from ml.prediction import (
    auc_clearly_above_chance,
    auc_confidence_interval,
    train_conversion_models,
)
from ml.recommendations import (
    evaluate,
    fit_als,
    interactions_from_events,
    popularity,
    precision_recall_at_k,
    time_split,
    user_recommendations,
)
from ml.segmentation import segment_name, segment_users
from ml.ux_recommendations import match_pattern, two_proportion_p_value, ux_recommendations

STEPS = ("signup", "verify", "create")
T0 = pd.Timestamp("2026-01-01 10:00")


def _ev(rows):
    """rows: (person, event_name, minutes after T0[, session])."""
    return pd.DataFrame(
        [
            {
                "person_id": p,
                "event_name": e,
                "event_time": T0 + pd.Timedelta(minutes=m),
                "session_id": s[0] if s else f"{p}#1",
                "properties": "{}",
            }
            for p, e, m, *s in rows
        ]
    )


def _users(persons, platform="web"):
    return pd.DataFrame(
        {
            "person_id": persons,
            "first_platform": platform,
            "country": "US",
            "first_utm_source": None,
        }
    )


# --- clustering -------------------------------------------------------------------------------


def _blobs(centers, n=20, seed=1):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, 0.05, size=(n, 2)) for c in centers])


def test_two_obvious_blobs_give_k_2():
    fit = choose_k(_blobs([(0, 0), (5, 5)]), range(2, 6))
    assert fit.k == 2
    assert fit.silhouette > 0.9
    assert set(fit.labels[:20]) != set(fit.labels[20:])
    assert len(set(fit.labels[:20])) == 1


def test_three_blobs_give_k_3():
    assert choose_k(_blobs([(0, 0), (5, 5), (0, 5)]), range(2, 6)).k == 3


def test_too_few_distinct_points_is_an_error():
    with pytest.raises(InsufficientDataError):
        choose_k(np.zeros((10, 2)), range(2, 5))


def test_scale_features_standardises_and_one_hots():
    frame = pd.DataFrame({"n": [0.0, 2.0], "c": ["a", "b"]})
    x, names = scale_features(frame, ["n"], ["c"])
    assert names == ["n", "c=a", "c=b"]
    np.testing.assert_allclose(x[:, 0], [-1, 1])
    # two persons differing only in the categorical column are one unit apart
    assert np.linalg.norm(x[0, 1:] - x[1, 1:]) == pytest.approx(1.0)


# --- features ---------------------------------------------------------------------------------


def test_funnel_levels_window_order_and_best_start():
    events = _ev(
        [
            ("a", "signup", 0),
            ("a", "verify", 5),
            ("a", "create", 10),
            ("b", "verify", 0),
            ("b", "signup", 5),  # wrong order
            ("c", "signup", 0),
            ("c", "verify", 8 * 24 * 60),  # outside a 7-day window
            ("d", "signup", 0),
            ("d", "signup", 20 * 24 * 60),
            ("d", "verify", 20 * 24 * 60 + 1),
            ("e", "page_view", 0),
        ]
    )
    levels = funnel_levels(events, STEPS).set_index("person_id")
    assert levels["level"].to_dict() == {"a": 3, "b": 1, "c": 1, "d": 2, "e": 0}
    assert levels.loc["d", "signup_at"] == T0 + pd.Timedelta(days=20)
    assert pd.isna(levels.loc["c", "verify_at"])


def _tiny_funnel():
    events = _ev(
        [
            ("p1", "signup", 0),
            ("p1", "verify", 2),
            ("p1", "error", 4),
            ("p1", "error", 6),
            ("p1", "view_help", 7),
            ("p2", "signup", 0),
            ("p2", "verify", 1),
            ("p2", "page_view", 2),
            ("p2", "create", 3),
            ("p2", "create", 2 * 24 * 60, "p2#2"),
            ("p3", "signup", 0),
        ]
    )
    events = pd.concat(
        [events, _ev([("late", "signup", 0)]).assign(event_time=T0 + pd.Timedelta(days=9))],
        ignore_index=True,
    )
    # data end: ten days after T0, so everyone's 7-day window but "late"'s has closed
    return events, funnel_levels(events, STEPS), _users(["p1", "p2", "p3", "late"])


def test_step_behaviour_counts_the_step_window():
    events, levels, users = _tiny_funnel()
    out = step_behaviour(events, levels, users, STEPS).set_index(["person_id", "step"])
    assert sorted(out.index) == [
        ("p1", "create"),
        ("p1", "verify"),
        ("p2", "create"),
        ("p2", "verify"),
        ("p3", "verify"),
    ]
    p1 = out.loc[("p1", "create")]
    assert not p1["converted"]
    assert (p1["errors_at_step"], p1["help_views_at_step"], p1["events_at_step"]) == (2, 1, 3)
    assert p1["minutes_at_step"] == pytest.approx(5.0)  # verify at 2 -> last event at 7
    assert p1["events_before"] == 5 and p1["sessions_before"] == 1
    p2 = out.loc[("p2", "create")]
    assert p2["converted"] and p2["events_at_step"] == 1 and p2["minutes_at_step"] == 2.0
    assert out.loc[("p3", "verify"), "minutes_at_step"] == 0.0
    assert out.loc[("p1", "create"), "channel"] == "none"


def test_first_day_features_exclude_funnel_events_and_the_last_step():
    events, levels, users = _tiny_funnel()
    out = first_day_features(events, levels, users, STEPS).set_index("person_id")
    assert "late" not in out.index  # window still open
    assert out.loc["p1", "errors"] == 2 and out.loc["p1", "events"] == 3
    assert out.loc["p2", "events"] == 1  # the page_view; funnel steps not counted
    assert out.loc["p2", "funnel_steps"] == 2  # signup and verify, never the last step
    assert out["converted"].to_dict() == {"p1": 0, "p2": 1, "p3": 0}


def test_activity_features_sum_revenue():
    events = _ev(
        [
            ("a", "page_view", 0),
            ("a", "purchase", 1),
            ("a", "purchase", 60 * 30, "a#2"),
            ("b", "page_view", 0),
        ]
    )
    events.loc[events["event_name"] == "purchase", "properties"] = [
        json.dumps({"revenue": 29.0}),
        json.dumps({"revenue": 499.0}),
    ]
    out = activity_features(events).set_index("person_id")
    assert out.loc["a", "revenue"] == 528.0 and out.loc["b", "revenue"] == 0.0
    assert out.loc["a", "sessions"] == 2 and out.loc["a", "events"] == 3


# --- friction ---------------------------------------------------------------------------------


def _behaviour(groups):
    """groups: (n, step, converted, platform, errors, help) -> step_behaviour-like rows."""
    rows, i = [], 0
    for n, step, converted, platform, errors, helps in groups:
        for _ in range(n):
            i += 1
            rows.append(
                dict(
                    person_id=f"p{i:04d}",
                    step=step,
                    step_index=1,
                    converted=converted,
                    minutes_at_step=3.0,
                    events_at_step=errors + helps,
                    errors_at_step=errors,
                    help_views_at_step=helps,
                    events_before=3,
                    sessions_before=1,
                    platform=platform,
                    country="US",
                    channel="none",
                )
            )
    return pd.DataFrame(rows)


def test_lift_and_its_floor():
    assert lift(0.8, 0.2, 100) == pytest.approx(4.0)
    assert lift(0.5, 0.0, 10) == pytest.approx(0.5 / 0.05)
    assert lift(0.0, 0.0, 10) == 1.0


def test_friction_clusters_find_the_error_group_and_name_it():
    behaviour = _behaviour(
        [
            (30, "create", False, "android", 2, 1),
            (30, "create", False, "web", 0, 0),
            (100, "create", True, "web", 0, 0),
        ]
    )
    result = cluster_step(behaviour, "create", range(2, 5))
    assert result.profiles["persons"].tolist() == [30, 30]
    named = result.profiles.set_index("cluster")["name"]
    android = result.clusters.merge(behaviour, on="person_id").query("platform == 'android'")
    assert android["cluster"].nunique() == 1
    name = named[android["cluster"].iloc[0]]
    assert "hit errors" in name and "on android" in name and "opened help" in name
    traits = result.traits.set_index(["cluster", "trait"])
    row = traits.loc[(android["cluster"].iloc[0], "platform=android")]
    assert row["lift"] == pytest.approx(1.0 / (0.5 / 100))  # nobody converting is on android


def test_describe_cluster_without_distinctive_traits():
    same = _behaviour([(10, "s", False, "web", 0, 0)])
    name, _ = describe_cluster(same, same.assign(converted=True), "s")
    assert name == "Left at s: no distinctive trait"


def test_no_dropped_persons_is_an_error():
    with pytest.raises(InsufficientDataError, match="dropped"):
        cluster_step(_behaviour([(50, "create", True, "web", 0, 0)]), "create")


# --- UX recommendations -----------------------------------------------------------------------


def _gap_behaviour():
    return pd.concat(
        [
            _behaviour(
                [(70, "create", False, "android", 2, 1), (30, "create", True, "android", 0, 0)]
            ),
            _behaviour([(50, "create", False, "web", 0, 0), (150, "create", True, "web", 0, 0)]),
            _behaviour([(30, "create", False, "ios", 0, 0), (70, "create", True, "ios", 0, 0)]),
        ]
    ).assign(person_id=lambda f: [f"q{i}" for i in range(len(f))])


def test_recoverable_persons_against_the_best_segment():
    out = ux_recommendations(_gap_behaviour(), dimensions=("platform",))
    assert out["segment"].tolist() == ["android", "ios"]
    first = out.iloc[0]
    assert first["best_segment"] == "web" and first["rank"] == 1
    assert first["recoverable_persons"] == pytest.approx(100 * (0.75 - 0.30))
    assert out.iloc[1]["recoverable_persons"] == pytest.approx(100 * (0.75 - 0.70))
    assert first["pattern"] == "errors_before_leaving"
    assert out.iloc[1]["pattern"] == "platform_gap"
    evidence = json.loads(first["evidence"])
    assert evidence["error_share_dropped"] == 1.0 and evidence["best_rate"] == 0.75
    # pooled two-proportion z-test by hand
    pooled = (30 + 150) / 300
    z = (0.3 - 0.75) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 200))
    assert first["p_value"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))


def test_pattern_catalogue_order():
    base = dict(
        dimension="country",
        error_share_dropped=0.0,
        best_error_share_dropped=0.0,
        help_share_dropped=0.0,
        median_minutes=3.0,
        best_median_minutes=3.0,
    )
    assert match_pattern(base).key == "country_gap"
    assert match_pattern(base | {"median_minutes": 7.0}).key == "long_time_to_convert"
    assert match_pattern(base | {"error_share_dropped": 0.5}).key == "errors_before_leaving"
    assert match_pattern(base | {"dimension": "x"}).key == "conversion_gap"


def test_two_proportion_p_value_identical_groups():
    assert two_proportion_p_value(0, 10, 0, 20) == 1.0


def test_no_comparable_segments_is_an_error():
    with pytest.raises(InsufficientDataError):
        ux_recommendations(_behaviour([(10, "s", True, "web", 0, 0)]), dimensions=("platform",))


# --- recommendations --------------------------------------------------------------------------


def test_precision_recall_at_k_by_hand():
    # a: 1 of its 2 relevant items in the top 2; b: 0 of 1; c has nothing relevant (not counted)
    assert precision_recall_at_k([1, 0, 0], [2, 1, 0], k=2) == (0.25, 0.25)
    with pytest.raises(InsufficientDataError):
        precision_recall_at_k([0], [0], k=2)


def _two_tribes(seed=3):
    """10 persons use items a0..a9, 30 use b0..b9: six items before the cutoff, one after."""
    rng = np.random.default_rng(seed)
    rows = []
    for tribe, n in (("a", 10), ("b", 30)):
        for p in range(n):
            items = rng.permutation(10)[:7]
            for j, item in enumerate(items):
                day = 1 if j < 6 else 10
                rows.append((f"{tribe}{p:02d}", f"{tribe}{item}", T0 + pd.Timedelta(days=day), 3.0))
    return pd.DataFrame(rows, columns=["person_id", "item", "event_time", "weight"])


def test_als_beats_popularity_on_two_tribes_and_is_deterministic():
    data = _two_tribes()
    cutoff = T0 + pd.Timedelta(days=5)
    result = evaluate(data, k=3, cutoff=cutoff, factors=4, iterations=20)
    assert result["evaluated_persons"] == 40
    assert result["als_recall_at_3"] > result["popularity_recall_at_3"]
    assert result["als_precision_at_3"] > result["popularity_precision_at_3"]
    assert evaluate(data, k=3, cutoff=cutoff, factors=4, iterations=20) == result


def test_als_inputs_are_the_pairs_sums_however_the_rows_are_chunked(monkeypatch):
    """The ALS matrix holds each (person, item)'s summed weight, popularity counts distinct
    persons per item, and the holdout's counts follow the cutoff, all checked against pandas on
    the rows; summing the rows a few at a time (so that a pair's rows fall in several chunks)
    changes nothing."""
    import ml.recommendations as recommendations

    data = _two_tribes()
    # a second interaction on some pairs, with other weights, on the other side of the cutoff
    data = pd.concat(
        [data, data.iloc[::3].assign(weight=1.5, event_time=T0 + pd.Timedelta(days=12))],
        ignore_index=True,
    ).sample(frac=1, random_state=3)
    cutoff = T0 + pd.Timedelta(days=5)
    whole = (
        fit_als(data, factors=4),
        evaluate(data, k=3, cutoff=cutoff, factors=4),
        user_recommendations(data, k=3, factors=4),
    )
    monkeypatch.setattr(recommendations, "_CHUNK", 7)
    model = fit_als(data, factors=4)
    expected = data.groupby(["person_id", "item"])["weight"].sum().unstack(fill_value=0.0)
    assert model.persons == list(expected.index) and model.items == list(expected.columns)
    np.testing.assert_array_equal(model.user_items.toarray(), expected.to_numpy(np.float32))
    np.testing.assert_array_equal(model.person_factors, whole[0].person_factors)
    persons = data.groupby("item")["person_id"].nunique()
    assert model.ranking == sorted(persons.index, key=lambda i: (-persons[i], i))
    scores = evaluate(data, k=3, cutoff=cutoff, factors=4)
    assert scores == whole[1]
    assert scores["train_interactions"] == int((data["event_time"] < cutoff).sum())
    assert scores["test_interactions"] == int((data["event_time"] >= cutoff).sum())
    pd.testing.assert_frame_equal(user_recommendations(data, k=3, factors=4), whole[2])


def test_time_split_popularity_and_cold_start():
    data = _two_tribes()
    train, test, cutoff = time_split(data, holdout_fraction=40 / 280)
    assert len(test) == 40 and train["event_time"].max() < cutoff
    ranking = popularity(train)
    assert ranking[0].startswith("b")
    model = fit_als(data, factors=4)
    a00 = model.persons.index("a00")
    mine = set(data.loc[data["person_id"] == "a00", "item"])
    # the baseline: the most popular items a00 does not have, in popularity order
    assert [model.items[i] for i in model.top_popular(np.array([a00]), k=3)[0]] == [
        item for item in model.ranking if item not in mine
    ][:3]
    recs = user_recommendations(data, persons=["a00", "newcomer"], k=3, factors=4)
    cold = recs[recs["person_id"] == "newcomer"]
    assert cold["source"].eq("popular").all() and cold["item"].tolist() == popularity(data)[:3]
    warm = recs[recs["person_id"] == "a00"]
    assert warm["source"].eq("als").all() and len(warm) == 3
    assert not set(warm["item"]) & set(data.loc[data["person_id"] == "a00", "item"])


def test_interactions_use_event_weights():
    events = _ev([("a", "view_dashboard", 0), ("a", "use_integration", 1), ("a", "signup", 2)])
    out = interactions_from_events(events, {"view_dashboard": 1.0, "use_integration": 3.0})
    assert out[["item", "weight"]].values.tolist() == [
        ["view_dashboard", 1.0],
        ["use_integration", 3.0],
    ]


def test_interactions_from_an_event_log_match_those_from_its_frame():
    """The event log's path (codes straight to categoricals, for scale) and the frame's path give
    the same interactions: persons, items, times and weights, row for row."""
    from ml.features import EventLog

    events = _ev(
        [
            ("b", "use_integration", 5),
            ("a", "view_dashboard", 0),
            ("c", "signup", 1),
            ("a", "use_integration", 1),
            ("b", "view_dashboard", 3),
        ]
    )
    weights = {"view_dashboard": 1.0, "use_integration": 3.0, "never_seen": 9.0}
    from_log = interactions_from_events(EventLog.from_frame(events), weights)
    from_frame = interactions_from_events(events, weights)
    assert list(from_log.columns) == list(from_frame.columns)
    assert isinstance(from_log["person_id"].dtype, pd.CategoricalDtype)
    assert from_log.astype({"person_id": str, "item": str}).values.tolist() == (
        from_frame.astype({"person_id": str, "item": str}).values.tolist()
    )


# --- prediction -------------------------------------------------------------------------------


def _separable(n=100):
    x = np.arange(n, dtype=float) + np.where(np.arange(n) >= n / 2, 1000.0, 0.0)  # a wide gap
    return pd.DataFrame(
        {
            "person_id": [f"p{i:03d}" for i in range(n)],
            "x": x,
            "plat": np.where(x % 2 == 0, "web", "ios"),
            "converted": (x >= 1000).astype(int),
        }
    )


def test_auc_of_a_perfectly_separable_set_is_one():
    models = train_conversion_models(_separable(), numeric=["x"], categorical=["plat"])
    assert models.metrics["logistic_auc"] == 1.0 and models.metrics["tree_auc"] == 1.0
    assert models.metrics["test_positives"] == 15 and models.metrics["test_negatives"] == 15
    assert models.coefficients.iloc[0]["feature"] == "x"
    assert models.coefficients.iloc[0]["coefficient"] > 0
    assert models.importances.iloc[0]["feature"] == "x"
    assert models.metrics["logistic_clearly_above_chance"]
    again = train_conversion_models(_separable(), numeric=["x"], categorical=["plat"])
    pd.testing.assert_frame_equal(models.predictions, again.predictions)


def test_auc_interval_by_hand():
    a, n1, n0 = 0.8, 50, 100
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = math.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    low, high = auc_confidence_interval(a, n1, n0)
    assert low == pytest.approx(a - 1.959964 * se) and high == pytest.approx(a + 1.959964 * se)
    assert auc_clearly_above_chance(0.8, 50, 100)
    assert not auc_clearly_above_chance(0.5, 1000, 1000)
    assert not auc_clearly_above_chance(0.6, 10, 10)


def test_one_class_only_is_an_error():
    frame = _separable().assign(converted=0)
    with pytest.raises(InsufficientDataError, match="positives"):
        train_conversion_models(frame, numeric=["x"], categorical=["plat"])


# --- segmentation -----------------------------------------------------------------------------


def test_segments_on_two_obvious_groups():
    rows = [
        dict(person_id=f"l{i:02d}", events=2, sessions=1, active_days=1, converted=0, revenue=0.0)
        for i in range(20)
    ]
    rows += [
        dict(
            person_id=f"h{i:02d}",
            events=200 + i,
            sessions=30,
            active_days=20,
            converted=1,
            revenue=499.0,
        )
        for i in range(10)
    ]
    seg = segment_users(pd.DataFrame(rows))
    assert seg.k == 2 and seg.silhouette > 0.8
    profiles = seg.profiles.set_index("segment")
    assert profiles.loc[0, "persons"] == 20  # segment 0 is the largest
    assert profiles.loc[1, "name"].startswith("paying onboarded heavy returning")
    assert profiles.loc[0, "name"] == "not onboarded light one-off users"
    assert (
        segment_name(
            pd.Series(
                {
                    "revenue": 1.0,
                    "converted": 1.0,
                    "events": 1.0,
                    "active_days": 1.0,
                    "sessions": 1.0,
                }
            ),
            pd.Series(
                {
                    "revenue": 1.0,
                    "converted": 1.0,
                    "events": 1.0,
                    "active_days": 1.0,
                    "sessions": 1.0,
                }
            ),
        )
        == "typical users"
    )


def test_segmenting_too_few_persons_is_an_error():
    with pytest.raises(InsufficientDataError):
        segment_users(
            pd.DataFrame(
                {
                    "person_id": ["a", "b"],
                    "events": [1, 2],
                    "sessions": [1, 1],
                    "active_days": [1, 1],
                    "converted": [0, 1],
                    "revenue": [0.0, 0.0],
                }
            )
        )


# --- patterns ---------------------------------------------------------------------------------


def test_fpgrowth_support_confidence_lift_by_hand():
    events = _ev(
        [
            ("1", "bread", 0),
            ("1", "butter", 0),
            ("2", "bread", 0),
            ("2", "butter", 0),
            ("2", "milk", 0),
            ("3", "bread", 0),
            ("4", "milk", 0),
            ("5", "butter", 0),
            ("5", "bread", 0),
            ("5", "bread", 1),
        ]
    )
    found = frequent_patterns(baskets(events), min_support=0.4, min_confidence=0.7)
    support = dict(zip(found.itemsets["itemset"], found.itemsets["support"], strict=True))
    assert support == pytest.approx(
        {"bread": 0.8, "butter": 0.6, "bread, butter": 0.6, "milk": 0.4}
    )
    rules = found.rules.set_index(["antecedents", "consequents"])
    assert len(rules) == 2
    assert rules.loc[("butter", "bread"), "confidence"] == pytest.approx(1.0)
    assert rules.loc[("butter", "bread"), "lift"] == pytest.approx(1.0 / 0.8)
    assert rules.loc[("bread", "butter"), "confidence"] == pytest.approx(0.75)
    assert rules.loc[("bread", "butter"), "lift"] == pytest.approx(0.75 / 0.6)
    assert found.reason is None


def test_fpgrowth_without_frequent_itemsets_says_why():
    events = _ev([("1", "a", 0), ("2", "b", 0), ("3", "c", 0)])
    found = frequent_patterns(baskets(events), min_support=0.5)
    assert found.itemsets.empty and found.rules.empty and "support" in found.reason


def test_kmeans_above_the_fit_sample_fits_a_sample_and_assigns_every_row(monkeypatch):
    """Above KMEANS_FIT_SAMPLE rows, k-means is fitted on a fixed-seed sample and every row is
    assigned: two well-separated blobs are still split exactly, the same way on every run."""
    import ml.clustering as clustering

    monkeypatch.setattr(clustering, "KMEANS_FIT_SAMPLE", 200)
    rng = np.random.default_rng(3)
    x = np.vstack([rng.normal(0, 0.1, (600, 2)), rng.normal(5, 0.1, (400, 2))])
    labels = clustering.kmeans(x, 2, seed=0)
    assert len(labels) == 1000
    assert (labels[:600] == 0).all() and (labels[600:] == 1).all()  # 0 = the larger cluster
    assert (clustering.kmeans(x, 2, seed=0) == labels).all()


def test_silhouettes_are_sklearns_on_the_same_sample(monkeypatch):
    """choose_k computes the sample's distances once for every k; the scores are still exactly
    sklearn's silhouette_score on that fixed-seed sample."""
    from sklearn.metrics import silhouette_score

    import ml.clustering as clustering

    monkeypatch.setattr(clustering, "SILHOUETTE_SAMPLE", 150)
    x = _blobs([(0, 0), (3, 3), (0, 3)], n=100, seed=4)
    fit = clustering.choose_k(x, range(2, 6), seed=1)
    for k, score in fit.silhouette_by_k.items():
        labels = clustering.kmeans(x, k, seed=1)
        assert score == silhouette_score(x, labels, sample_size=150, random_state=1)


def test_frequent_itemsets_are_fpgrowths_with_and_without_weights():
    """The distinct-basket count gives mlxtend's FP-growth itemsets and supports to the bit; a
    row with weight w counts as w baskets."""
    from mlxtend.frequent_patterns import fpgrowth

    from ml.patterns import frequent_itemsets

    rng = np.random.default_rng(5)
    items = [f"e{i:02d}" for i in range(9)]
    rows = pd.DataFrame(rng.random((400, len(items))) < np.linspace(0.05, 0.7, 9), columns=items)
    for min_support, max_len in ((0.05, None), (0.1, 2), (0.3, 4)):
        ours = frequent_itemsets(rows, min_support, max_len)
        theirs = fpgrowth(rows, min_support=min_support, use_colnames=True, max_len=max_len)
        assert dict(zip(ours["itemsets"], ours["support"], strict=True)) == dict(
            zip(theirs["itemsets"], theirs["support"], strict=True)
        )
    weights = rng.integers(1, 4, len(rows))
    weighted = frequent_itemsets(rows, 0.1, 3, weights=weights)
    written_out = frequent_itemsets(rows.loc[rows.index.repeat(weights)], 0.1, 3)
    assert dict(zip(weighted["itemsets"], weighted["support"], strict=True)) == dict(
        zip(written_out["itemsets"], written_out["support"], strict=True)
    )


def test_als_above_the_fit_sample_fits_a_sample_and_scores_everyone(monkeypatch):
    """Above ALS_FIT_SAMPLE persons the item factors come from a fixed-seed sample and every
    person's factors are solved against them: the two tribes still get their own items first,
    the same way on every run."""
    import ml.recommendations as recommendations

    monkeypatch.setattr(recommendations, "ALS_FIT_SAMPLE", 25)
    data = _two_tribes()
    model = recommendations.fit_als(data, factors=4, iterations=20)
    assert len(model.persons) == 40 and model.person_factors.shape == (40, 4)
    again = recommendations.fit_als(data, factors=4, iterations=20)
    np.testing.assert_array_equal(model.person_factors, again.person_factors)
    rows = np.arange(len(model.persons))
    best, _ = model.top_items(rows, k=1)
    first = [model.items[i][0] for i in best[:, 0]]
    assert first == [p[0] for p in model.persons]  # a-tribe persons get an a-item first
