"""The experiment tables' column schemas, and reading / writing them in DuckDB.

The schemas are shown in the UI as each asset's column schema and are what is written: every
column is cast to its declared type, so a table has the same shape whether or not any experiment
produced rows (orchestration/warehouse.py writes them).
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from ml.experiment_analysis import HEALTH_COLUMNS, RESULT_COLUMNS, SEGMENT_COLUMNS
from orchestration import warehouse
from orchestration.resources import WarehouseResource

_TYPES = {
    "experiment_name": ("VARCHAR", "experiment (config/analytics.yml experiments[].name)"),
    "segment_name": ("VARCHAR", "breakdown (config breakdowns), e.g. platform, properties.plan"),
    "segment_value": ("VARCHAR", "the exposure event's value of the breakdown; (none) if missing"),
    "metric_name": ("VARCHAR", "metric of the experiment"),
    "metric_type": ("VARCHAR", "conversion, revenue or retention"),
    "is_guardrail": ("BOOLEAN", "guardrail: reported, never picks a winner (own Holm family)"),
    "variant": ("VARCHAR", "variant"),
    "is_control": ("BOOLEAN", "the control variant (lift columns are null on its rows)"),
    "persons": ("BIGINT", "persons analysed: exposed to this variant only, metric window elapsed"),
    "persons_window_open": ("BIGINT", "exposed persons left out: window not elapsed by data end"),
    "conversions": ("BIGINT", "persons converted / retained (null for revenue)"),
    "value_sum": ("DOUBLE", "sum of the outcome: conversions, or revenue"),
    "mean": ("DOUBLE", "value_sum / persons: the rate, or revenue per person"),
    "std_dev": ("DOUBLE", "sample standard deviation of the per-person outcome"),
    "absolute_lift": ("DOUBLE", "mean - control's mean"),
    "relative_lift": ("DOUBLE", "absolute_lift / control's mean (null when that is 0)"),
    "ci_low": ("DOUBLE", "95% CI of absolute_lift, low (Wald; Welch for revenue)"),
    "ci_high": ("DOUBLE", "95% CI of absolute_lift, high"),
    "p_value": ("DOUBLE", "two-sided: pooled two-proportion z-test, or Welch's t-test"),
    "p_value_adjusted": ("DOUBLE", "Holm over the family (docs/experiments.md)"),
    "is_significant": ("BOOLEAN", "p_value_adjusted < the experiment's alpha"),
    "prob_beats_control": ("DOUBLE", "P(variant > control): Beta(1,1)-Binomial, or normal approx"),
    "cuped_absolute_lift": ("DOUBLE", "CUPED-adjusted lift (covariate: pre-exposure events)"),
    "cuped_ci_low": ("DOUBLE", "95% CI of the CUPED lift, low"),
    "cuped_ci_high": ("DOUBLE", "95% CI of the CUPED lift, high"),
    "cuped_p_value": ("DOUBLE", "Welch's test on the CUPED-adjusted outcome (not adjusted)"),
    "cuped_variance_reduction": ("DOUBLE", "share of within-arm variance CUPED removes"),
    "note": ("VARCHAR", "why a value is null, or a caveat (empty variant, zero variance, ...)"),
    "comparisons_in_family": ("BIGINT", "p-values in the Holm family of this row"),
    "expected_share": ("DOUBLE", "planned share of traffic (weights, or equal)"),
    "observed_share": ("DOUBLE", "persons / all persons of the planned variants"),
    "expected_persons": ("DOUBLE", "planned share x all persons"),
    "srm_chi_square": ("DOUBLE", "sample-ratio-mismatch chi-square statistic (experiment-wide)"),
    "srm_p_value": ("DOUBLE", "its p-value (experiment-wide); SRM below 0.001"),
    "srm_detected": ("BOOLEAN", "srm_p_value < 0.001: the results must not be trusted"),
    "multi_variant_persons": ("BIGINT", "persons exposed to more than one variant (excluded)"),
    "unplanned_variant_persons": ("BIGINT", "persons in a variant not in the plan (excluded)"),
    "first_exposure_at": ("TIMESTAMP", "first exposure in the variant (UTC)"),
    "last_exposure_at": ("TIMESTAMP", "last exposure in the variant (UTC)"),
}
_HEALTH_OVERRIDES = {
    "persons": ("BIGINT", "persons exposed to this variant only"),
    "note": ("VARCHAR", "caveats: multi-variant or unplanned persons, small expected counts"),
}


def _schema(columns: list[str], overrides: dict | None = None) -> dg.TableSchema:
    types = {**_TYPES, **(overrides or {})}
    return dg.TableSchema(columns=[dg.TableColumn(c, types[c][0], types[c][1]) for c in columns])


SCHEMAS: dict[str, dg.TableSchema] = {
    "experiment_results": _schema(RESULT_COLUMNS),
    "experiment_results_by_segment": _schema(SEGMENT_COLUMNS),
    "experiment_health": _schema(HEALTH_COLUMNS, _HEALTH_OVERRIDES),
}


def replace_table(duckdb: WarehouseResource, name: str, frame: pd.DataFrame) -> int:
    """Replace ``main.<name>`` with ``frame`` cast to the experiment table's schema."""
    return warehouse.replace_table(duckdb, name, frame, SCHEMAS[name])


read = warehouse.read_sql
