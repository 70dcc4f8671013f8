"""Blocking checks on the learning tables: a model that is no better than chance, or
recommendations that do not add up, must not reach the report built from them.

The checks read the tables as written (not the asset's metadata), so they can be re-run alone
from the UI and judge exactly what a reader would get. When a table is empty because the data
could not support the model, the check fails with the reason the asset recorded.
"""

import dagster as dg
from sklearn.metrics import roc_auc_score

from ml.errors import InsufficientDataError
from ml.prediction import auc_clearly_above_chance, auc_confidence_interval
from orchestration.jobs import WAREHOUSE_POOL
from orchestration.learning.tables import read_table
from orchestration.resources import WarehouseResource

MODELS = {"logistic": "p_logistic", "tree": "p_tree"}


def _why_empty(context: dg.AssetCheckExecutionContext, asset: str) -> str:
    """The ``insufficient_data`` reason of the asset's latest materialization, if any."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey(asset))
    metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
    reason = metadata.get("insufficient_data")
    return f": {reason.value}" if reason is not None else ""


@dg.asset_check(
    asset="conversion_predictions",
    name="conversion_prediction_auc_above_chance",
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="Both models' held-out ROC AUC is clearly above chance: the lower end of its "
    "95% Hanley-McNeil interval exceeds 0.5 (ml.prediction.auc_clearly_above_chance).",
)
def conversion_prediction_auc_above_chance(
    context: dg.AssetCheckExecutionContext, duckdb: WarehouseResource
) -> dg.AssetCheckResult:
    predictions = read_table(duckdb, "conversion_predictions")
    test = predictions[predictions["split"] == "test"]
    if test.empty:
        return dg.AssetCheckResult(
            passed=False,
            description="no held-out predictions, so no model to trust"
            + _why_empty(context, "conversion_predictions"),
        )
    y = test["converted"].astype(int)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    metadata: dict = {"test_positives": n_pos, "test_negatives": n_neg}
    failing = []
    for model, column in MODELS.items():
        try:
            auc = float(roc_auc_score(y, test[column]))
            low, high = auc_confidence_interval(auc, n_pos, n_neg)
            above = auc_clearly_above_chance(auc, n_pos, n_neg)
        except (InsufficientDataError, ValueError) as error:  # one class only in the holdout
            return dg.AssetCheckResult(
                passed=False, metadata=metadata, description=f"no held-out AUC: {error}"
            )
        metadata |= {
            f"{model}_auc": dg.MetadataValue.float(auc),
            f"{model}_auc_low": dg.MetadataValue.float(low),
            f"{model}_auc_high": dg.MetadataValue.float(high),
        }
        if not above:
            failing.append(f"{model} AUC {auc:.3f} (95% CI {low:.3f}-{high:.3f})")
    return dg.AssetCheckResult(
        passed=not failing,
        metadata=metadata,
        description="not clearly above chance: " + "; ".join(failing)
        if failing
        else "every model's AUC is clearly above chance",
    )


@dg.asset_check(
    asset="ux_recommendations",
    name="ux_recommendations_are_consistent",
    blocking=True,
    pool=WAREHOUSE_POOL,
    description="There is at least one recommendation, recoverable persons are never negative, "
    "ranks run 1..n without gaps or repeats, and every row has a recommendation.",
)
def ux_recommendations_are_consistent(
    context: dg.AssetCheckExecutionContext, duckdb: WarehouseResource
) -> dg.AssetCheckResult:
    recs = read_table(duckdb, "ux_recommendations")
    if recs.empty:
        return dg.AssetCheckResult(
            passed=False,
            description="no UX recommendation" + _why_empty(context, "ux_recommendations"),
        )
    problems = []
    negative = int((recs["recoverable_persons"] < 0).sum())
    if negative or recs["recoverable_persons"].isna().any():
        problems.append(f"{negative} rows with negative or missing recoverable_persons")
    if sorted(recs["rank"].tolist()) != list(range(1, len(recs) + 1)):
        problems.append("ranks are not unique and consecutive from 1")
    if recs["recommendation"].isna().any() or (recs["recommendation"].str.strip() == "").any():
        problems.append("rows without a recommendation")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"rows": len(recs), "significant": int(recs["significant"].sum())},
        description="; ".join(problems) if problems else f"{len(recs)} consistent recommendations",
    )


learning_checks = [conversion_prediction_auc_above_chance, ux_recommendations_are_consistent]
