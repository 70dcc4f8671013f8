"""The learning assets: marts in, ``ml/`` functions, result tables out, quality figures as metadata.

Each asset reads the dbt marts it lists in ``deps`` from DuckDB, calls the model functions in
``ml/`` and replaces its table in schema ``main`` (the asset key is the table name). When the data
cannot support a model (:class:`ml.errors.InsufficientDataError`) the table is written empty with
its full schema and the reason is the materialization's ``insufficient_data`` metadata, so nobody
reads a made-up number; the blocking checks in :mod:`orchestration.learning.checks` then fail.
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pandas as pd

from ml.errors import InsufficientDataError
from ml.features import (
    REVENUE_EVENT,
    EventLog,
    activity_features,
    first_day_features,
    funnel_levels,
    step_behaviour,
)
from ml.friction import friction_clusters
from ml.patterns import frequent_patterns
from ml.prediction import train_conversion_models
from ml.recommendations import evaluate, interactions_from_events, user_recommendations
from ml.segmentation import segment_users
from ml.ux_recommendations import ux_recommendations
from orchestration.learning.tables import (
    SCHEMAS,
    feature_weights,
    learning_funnel,
    once_per_run,
    read_event_log,
    read_event_sets,
    read_users,
    replace_table,
)
from orchestration.resources import WarehouseResource

GROUP = "learning"
KINDS = {"python", "scikitlearn", "duckdb"}
EVENTS = dg.AssetKey("fct_events")
USERS = dg.AssetKey("dim_users")
TOP_RULES = 10


def _spec(name: str, description: str, deps: list) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        group_name=GROUP,
        kinds=KINDS,
        deps=deps,
        description=description,
        metadata={"dagster/column_schema": SCHEMAS[name]},
    )


def _md(frame: pd.DataFrame, floatfmt: str = ".3f") -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_(none)_")
    return dg.MetadataValue.md(frame.to_markdown(index=False, floatfmt=floatfmt))


def _written(duckdb: WarehouseResource, name: str, frame: pd.DataFrame) -> dict:
    return {"dagster/row_count": replace_table(duckdb, name, frame)}


def _insufficient(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, name: str, reason: str
) -> dict:
    """An empty table with the reason, instead of a result that means nothing."""
    context.log.warning(f"{name}: insufficient data, table written empty: {reason}")
    return {
        **_written(duckdb, name, pd.DataFrame(columns=[c.name for c in SCHEMAS[name].columns])),
        "insufficient_data": dg.MetadataValue.text(reason),
    }


def _event_log(context: dg.AssetExecutionContext, duckdb: WarehouseResource) -> EventLog:
    """``fct_events`` with the purchases' properties (user_segments' revenue), once per run."""
    return once_per_run(
        context, duckdb, "event_log", lambda: read_event_log(duckdb, properties_of=[REVENUE_EVENT])
    )


def _levels(context: dg.AssetExecutionContext, duckdb: WarehouseResource, funnel) -> pd.DataFrame:
    events = _event_log(context, duckdb)
    return once_per_run(
        context,
        duckdb,
        ("funnel_levels", *funnel.steps, funnel.window),
        lambda: funnel_levels(events, funnel.steps, funnel.window),
    )


def _funnel_inputs(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    funnel = learning_funnel()
    users = once_per_run(context, duckdb, "users", lambda: read_users(duckdb))
    return funnel, _event_log(context, duckdb), users, _levels(context, duckdb, funnel)


def _funnel_metadata(funnel) -> dict:
    return {"funnel": funnel.name, "funnel_steps": " -> ".join(funnel.steps)}


@dg.multi_asset(
    pool="duckdb_writer",
    name="friction",
    specs=[
        _spec(
            "friction_clusters",
            "Each person who dropped at a funnel step, with their friction cluster at that step "
            "(k-means on behaviour before leaving; ml/friction.py).",
            [EVENTS, USERS],
        ),
        _spec(
            "friction_cluster_profiles",
            "Per step and cluster: size, a plain-words name from the traits that set it apart "
            "from the step's converters, k and silhouette.",
            [EVENTS, USERS],
        ),
        _spec(
            "ux_recommendations",
            "(Funnel step, segment) pairs that lose the most persons against the best "
            "comparable segment, ranked, each with a recommendation and its evidence, and the "
            "segment's largest friction cluster (ml/ux_recommendations.py).",
            [EVENTS, USERS, "friction_clusters", "friction_cluster_profiles"],
        ),
    ],
)
def friction(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """The friction tables and the UX recommendations are built together: all of them come from
    the behaviour of every funnel entrant at each step (a million persons' events at scale, the
    costly part), and the recommendations name the friction clusters of this same run."""
    funnel, events, users, levels = _funnel_inputs(context, duckdb)
    try:
        behaviour = step_behaviour(events, levels, users, funnel.steps, funnel.window)
    except InsufficientDataError as error:
        for name in ("friction_clusters", "friction_cluster_profiles", "ux_recommendations"):
            yield dg.MaterializeResult(
                asset_key=name,
                metadata={
                    **_insufficient(context, duckdb, name, str(error)),
                    **_funnel_metadata(funnel),
                },
            )
        return
    try:
        result = friction_clusters(behaviour, funnel.steps[1:])
    except InsufficientDataError as error:
        result = None
        for name in ("friction_clusters", "friction_cluster_profiles"):
            yield dg.MaterializeResult(
                asset_key=name,
                metadata={
                    **_insufficient(context, duckdb, name, str(error)),
                    **_funnel_metadata(funnel),
                },
            )
    else:
        yield from _friction_results(duckdb, funnel, result)
    yield _ux_result(context, duckdb, funnel, behaviour, result)


def _friction_results(duckdb: WarehouseResource, funnel, result) -> Iterator[dg.MaterializeResult]:
    by_step = result.profiles.groupby("step", sort=False).agg(
        k=("k", "first"), silhouette=("silhouette", "first"), dropped=("persons", "sum")
    )
    per_step = (
        pd.DataFrame({"step": funnel.steps[1:]})
        .merge(by_step.reset_index(), on="step", how="left")
        .assign(skipped=lambda f: [result.skipped.get(step, "") for step in f["step"]])
        .astype({"k": "Int64", "dropped": "Int64"})
    )
    quality = {
        "per_step": _md(per_step),
        **{
            f"silhouette_{step}": dg.MetadataValue.float(float(row["silhouette"]))
            for step, row in by_step.iterrows()
        },
        **{f"k_{step}": dg.MetadataValue.int(int(row["k"])) for step, row in by_step.iterrows()},
    }
    yield dg.MaterializeResult(
        asset_key="friction_clusters",
        metadata={
            **_written(duckdb, "friction_clusters", result.clusters),
            **_funnel_metadata(funnel),
            **quality,
        },
    )
    profiles = result.profiles[["step", "cluster", "persons", "share_of_dropped", "name"]]
    yield dg.MaterializeResult(
        asset_key="friction_cluster_profiles",
        metadata={
            **_written(duckdb, "friction_cluster_profiles", result.profiles),
            **_funnel_metadata(funnel),
            **quality,
            "clusters": _md(profiles),
        },
    )


def _ux_result(
    context: dg.AssetExecutionContext, duckdb: WarehouseResource, funnel, behaviour, friction
) -> dg.MaterializeResult:
    """``ux_recommendations`` from the step behaviour, naming the clusters of ``friction`` (a
    :class:`ml.friction.FrictionResult`, or None when no step could be clustered)."""
    try:
        recs = ux_recommendations(
            behaviour,
            None if friction is None else friction.clusters,
            None if friction is None else friction.profiles[["step", "cluster", "name"]],
        )
    except InsufficientDataError as error:
        return dg.MaterializeResult(
            asset_key="ux_recommendations",
            metadata={
                **_insufficient(context, duckdb, "ux_recommendations", str(error)),
                **_funnel_metadata(funnel),
            },
        )
    top = recs.head(5)[
        [
            "rank",
            "step",
            "dimension",
            "segment",
            "persons",
            "conversion_rate",
            "best_segment",
            "best_rate",
            "recoverable_persons",
            "p_value",
            "pattern",
            "recommendation",
        ]
    ]
    return dg.MaterializeResult(
        asset_key="ux_recommendations",
        metadata={
            **_written(duckdb, "ux_recommendations", recs),
            **_funnel_metadata(funnel),
            "comparisons": len(recs),
            "significant": int(recs["significant"].sum()),
            "top_recommendations": _md(top.assign(p_value=top["p_value"].map("{:.2g}".format))),
        },
    )


@dg.asset(
    pool="duckdb_writer",
    name="user_recommendations",
    group_name=GROUP,
    kinds=KINDS,
    deps=[EVENTS],
    metadata={"dagster/column_schema": SCHEMAS["user_recommendations"]},
)
def user_recommendations_asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """Top-10 features to try for each person who used one: implicit-feedback ALS, evaluated on
    a time split against the popularity baseline (ml/recommendations.py). The features and
    their weights are behaviour.features' (feature_weights)."""
    log = _event_log(context, duckdb)
    weights = feature_weights(list(log.names))
    interactions = interactions_from_events(log, weights)
    # The two fits (all interactions; before the evaluation's cutoff) are independent and each
    # runs on one core: side by side they take the time of one.
    with ThreadPoolExecutor(2) as pool:
        fitted = pool.submit(user_recommendations, interactions)
        evaluated = pool.submit(evaluate, interactions)
        try:
            recs = fitted.result()
        except InsufficientDataError as error:
            return dg.MaterializeResult(
                metadata=_insufficient(context, duckdb, "user_recommendations", str(error))
            )
    metadata = {
        **_written(duckdb, "user_recommendations", recs),
        "persons": int(recs["person_id"].nunique()),
        "feature_weights": dg.MetadataValue.json(weights),
    }
    try:
        scores = evaluated.result()
    except InsufficientDataError as error:
        # The recommendations stand; only their evaluation is missing, and we say why.
        metadata["evaluation_skipped"] = dg.MetadataValue.text(str(error))
    else:
        metadata |= {
            key: dg.MetadataValue.float(float(value)) if isinstance(value, float) else value
            for key, value in scores.items()
        }
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    pool="duckdb_writer",
    name="conversion_predictions",
    group_name=GROUP,
    kinds=KINDS,
    deps=[EVENTS, USERS],
    metadata={"dagster/column_schema": SCHEMAS["conversion_predictions"]},
)
def conversion_predictions_asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """Each funnel entrant's probability of completing the funnel, judged from their first day:
    logistic regression and a decision tree on a stratified 70/30 split (ml/prediction.py).
    The blocking check conversion_prediction_auc_above_chance scores the held-out rows."""
    funnel, events, users, levels = _funnel_inputs(context, duckdb)
    try:
        features = first_day_features(events, levels, users, funnel.steps, funnel.window)
        models = train_conversion_models(features)
    except InsufficientDataError as error:
        return dg.MaterializeResult(
            metadata={
                **_insufficient(context, duckdb, "conversion_predictions", str(error)),
                **_funnel_metadata(funnel),
            }
        )
    m = models.metrics
    metadata = {
        **_written(duckdb, "conversion_predictions", models.predictions),
        **_funnel_metadata(funnel),
        "train_persons": m["train_persons"],
        "test_persons": m["test_persons"],
        "base_rate": dg.MetadataValue.float(m["base_rate"]),
    }
    for model in ("logistic", "tree"):
        metadata |= {
            f"{model}_auc": dg.MetadataValue.float(m[f"{model}_auc"]),
            f"{model}_auc_95ci": f"[{m[f'{model}_auc_low']:.3f}, {m[f'{model}_auc_high']:.3f}]",
        }
    metadata["logistic_coefficients"] = _md(models.coefficients)
    metadata["tree_importances"] = _md(models.importances[models.importances["importance"] > 0])
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    pool="duckdb_writer",
    name="user_segments",
    group_name=GROUP,
    kinds=KINDS,
    deps=[EVENTS],
    metadata={"dagster/column_schema": SCHEMAS["user_segments"]},
)
def user_segments_asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """Behavioural segments of every person: k-means on events, sessions, active days,
    conversion and revenue, k by silhouette (ml/segmentation.py)."""
    funnel = learning_funnel()
    events = _event_log(context, duckdb)
    try:
        levels = _levels(context, duckdb, funnel)
        segmentation = segment_users(activity_features(events, levels, funnel.steps))
    except InsufficientDataError as error:
        return dg.MaterializeResult(
            metadata=_insufficient(context, duckdb, "user_segments", str(error))
        )
    names = segmentation.profiles.set_index("segment")["name"]
    segments = segmentation.segments.assign(
        segment_name=segmentation.segments["segment"].map(names)
    )
    return dg.MaterializeResult(
        metadata={
            **_written(duckdb, "user_segments", segments),
            "k": segmentation.k,
            "silhouette": dg.MetadataValue.float(segmentation.silhouette),
            "silhouette_by_k": _md(
                pd.DataFrame(
                    [(str(k), s) for k, s in sorted(segmentation.silhouette_by_k.items())],
                    columns=["k", "silhouette"],
                )
            ),
            "segments": _md(segmentation.profiles, floatfmt=".2f"),
        }
    )


@dg.asset(
    pool="duckdb_writer",
    name="event_patterns",
    group_name=GROUP,
    kinds=KINDS,
    deps=[EVENTS],
    metadata={"dagster/column_schema": SCHEMAS["event_patterns"]},
)
def event_patterns_asset(context: dg.AssetExecutionContext, duckdb: WarehouseResource):
    """Association rules between the events persons do (FP-growth over each person's set of
    events; ml/patterns.py), strongest lift first."""
    try:
        event_sets, persons = read_event_sets(duckdb)
        patterns = frequent_patterns(event_sets, weights=persons)
    except InsufficientDataError as error:
        return dg.MaterializeResult(
            metadata=_insufficient(context, duckdb, "event_patterns", str(error))
        )
    metadata = {
        **_written(duckdb, "event_patterns", patterns.rules),
        "baskets": patterns.baskets,
        "frequent_itemsets": len(patterns.itemsets),
        "top_rules_by_lift": _md(patterns.rules.head(TOP_RULES)),
    }
    if patterns.reason:
        metadata["insufficient_data"] = dg.MetadataValue.text(patterns.reason)
    return dg.MaterializeResult(metadata=metadata)


learning_assets = [
    friction,
    user_recommendations_asset,
    conversion_predictions_asset,
    user_segments_asset,
    event_patterns_asset,
]
