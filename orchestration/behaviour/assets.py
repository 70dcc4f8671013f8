"""``feature_revenue_impact``: the person-level dbt model in, ``ml/revenue_impact.py``, a table out.

The SQL side (``int_feature_revenue_persons``) fixes the population, the adoption and the outcome
windows; the estimator is plain functions. The result is observational (docs/behaviour.md), and the
asset's metadata says so next to the numbers.
"""

import dagster as dg
import pandas as pd

from ml.revenue_impact import RESULT_COLUMNS, feature_revenue_impact
from orchestration import metrics_config, warehouse
from orchestration.behaviour_config import BehaviourConfig
from orchestration.resources import WarehouseResource

GROUP = "behaviour"
PERSONS = dg.AssetKey("int_feature_revenue_persons")
CAVEAT = (
    "Observational: adopters chose to adopt. Stratifying by signup cohort week and segment removes "
    "only those differences; whatever else makes persons adopt (activation, engagement, need) is "
    "still in the difference. An association, not the feature's causal effect."
)
_TYPES = {
    "feature": ("VARCHAR", "feature event (behaviour.features)"),
    "persons": ("BIGINT", "signed-up persons whose adoption and outcome windows both elapsed"),
    "adopters": ("BIGINT", "of them, used the feature within adoption_window after signup"),
    "adoption_rate": ("DOUBLE", "adopters / persons"),
    "strata_used": ("BIGINT", "cohort week x segment strata with 2+ adopters and 2+ non-adopters"),
    "strata_dropped": ("BIGINT", "strata without 2+ persons in each group (not compared)"),
    "adopters_used": ("BIGINT", "adopters in the used strata"),
    "non_adopters_used": ("BIGINT", "non-adopters in the used strata"),
    "conversion_adopters": ("DOUBLE", "share of adopters (used strata) with revenue > 0 in the "
                            "outcome window"),
    "conversion_non_adopters": ("DOUBLE", "the same for non-adopters, weighted to the adopters' "
                                "strata mix"),
    "conversion_difference": ("DOUBLE", "stratified (ATT) difference of conversion"),
    "conversion_ci_low": ("DOUBLE", "95% CI of conversion_difference, low"),
    "conversion_ci_high": ("DOUBLE", "95% CI of conversion_difference, high"),
    "conversion_p_value": ("DOUBLE", "two-sided, normal"),
    "revenue_per_person_adopters": ("DOUBLE", "adopters' mean revenue in the outcome window"),
    "revenue_per_person_non_adopters": ("DOUBLE", "comparable non-adopters' mean revenue, "
                                        "weighted to the adopters' strata mix"),
    "revenue_difference": ("DOUBLE", "stratified (ATT) difference of revenue per person"),
    "ci_low": ("DOUBLE", "95% CI of revenue_difference, low"),
    "ci_high": ("DOUBLE", "95% CI of revenue_difference, high"),
    "p_value": ("DOUBLE", "two-sided, normal"),
    "raw_revenue_difference": ("DOUBLE", "unstratified adopters minus non-adopters (for contrast)"),
    "current_adopters": ("BIGINT", "persons whose adoption window elapsed who used the feature in "
                         "it (recent cohorts included)"),
    "implied_revenue": ("DOUBLE", "revenue_difference x current_adopters, per outcome window"),
    "note": ("VARCHAR", "why a value is null, or a caveat"),
}  # fmt: skip
SCHEMA = dg.TableSchema(
    columns=[
        dg.TableColumn(name, _TYPES[name][0], description=_TYPES[name][1])
        for name in RESULT_COLUMNS
    ]
)


def _md(frame: pd.DataFrame) -> dg.MetadataValue:
    if frame.empty:
        return dg.MetadataValue.md("_(none)_")
    return dg.MetadataValue.md(frame.to_markdown(index=False, floatfmt=".4g"))


@dg.asset(
    pool="duckdb_writer",  # DuckDB has one writer (docs/production.md, "Concurrency")
    name="feature_revenue_impact",
    group_name=GROUP,
    kinds={"python", "duckdb"},
    deps=[PERSONS],
    metadata={"dagster/column_schema": SCHEMA},
)
def feature_revenue_impact_asset(duckdb: WarehouseResource) -> dg.MaterializeResult:
    """Per feature: persons who used it in their first adoption_window days against comparable
    persons who did not (same signup cohort week and segment), their conversion and revenue per
    person over the following outcome_window, the stratified difference with its 95% CI, and the
    revenue it implies at the current adoption. Observational (docs/behaviour.md)."""
    config = metrics_config.load_config()
    # Through Arrow: twice as fast as .df() on text.
    with duckdb.reading("int_feature_revenue_persons") as con:
        persons = (
            con.sql(
                "select feature, cohort_week, segment, in_population, adopted, converted, revenue"
                " from main.int_feature_revenue_persons order by feature, person_id"
            )
            .to_arrow_table()
            .to_pandas()
        )
    behaviour = config.behaviour or BehaviourConfig()
    table = feature_revenue_impact(persons, behaviour.features.events)
    impact = behaviour.revenue_impact
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": warehouse.replace_table(
                duckdb, "feature_revenue_impact", table, SCHEMA
            ),
            "adoption_window_days": impact.adoption_window_seconds / 86400,
            "outcome_window_days": impact.outcome_window_seconds / 86400,
            "differences": _md(
                table[
                    [
                        "feature",
                        "persons",
                        "adopters",
                        "revenue_difference",
                        "ci_low",
                        "ci_high",
                        "p_value",
                        "implied_revenue",
                    ]
                ]
            ),
            "caveat": dg.MetadataValue.text(CAVEAT),
        }
    )


behaviour_assets = [feature_revenue_impact_asset]
