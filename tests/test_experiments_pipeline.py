"""The demo's planted experiment through the real graph: raw extract -> dbt (exposures, outcomes)
-> experiment_health (SRM check) -> experiment_results, on 5,000 persons x 28 days.

The demo draws with a fixed seed, so the numbers below are deterministic; they were checked to be
what chance allows (the 95% CI covers the true effect, the null variants are not significant after
Holm). If the generator's draws change, a 95% CI misses the truth in 1 run of 20: look at the
numbers before blaming the analysis."""

from datetime import date

import dagster as dg
import pytest

from orchestration.experiments.tables import SCHEMAS
from orchestration.ingest.demo import StepRates, expected_activation_rate
from orchestration.resources import EventSourceResource
from tests.pipeline import CORE, check_evaluations, materialize_days, materialized_keys, query

pytestmark = pytest.mark.e2e

EXPERIMENTS = CORE | dg.AssetSelection.groups("experiments").upstream()
FIRST, LAST = date(2026, 9, 1), date(2026, 9, 28)


def test_demo_experiment_finds_guided_tour_with_the_true_effect_in_its_ci(duckdb_path):
    source = EventSourceResource(kind="demo", demo_persons=5000, demo_days=28)
    result = materialize_days(FIRST, LAST, source, EXPERIMENTS)
    assert result.success
    assert set(SCHEMAS) <= materialized_keys(result)
    srm = check_evaluations(result)["experiment_health_srm"]
    assert srm.passed, srm.description

    rows = query(
        duckdb_path,
        "select variant, persons, absolute_lift, ci_low, ci_high, p_value_adjusted, "
        "is_significant from experiment_results "
        "where metric_name = 'activated' and not is_control order by variant",
    )
    by_variant = {row[0]: row[1:] for row in rows}
    assert set(by_variant) == {"short_form", "guided_tour", "video_intro", "checklist"}
    true_effect = expected_activation_rate(StepRates(), "guided_tour") - expected_activation_rate(
        StepRates(), "control"
    )
    persons, lift, low, high, p_adjusted, significant = by_variant["guided_tour"]
    assert significant and p_adjusted < 0.05 and lift > 0
    assert low <= true_effect <= high, (low, true_effect, high)
    for null_variant in ("short_form", "video_intro", "checklist"):
        assert not by_variant[null_variant][-1], (null_variant, by_variant[null_variant])

    # Persons exposed in the last 14 days have an open 14d window: left out and counted.
    open_windows = query(
        duckdb_path,
        "select sum(persons_window_open), sum(persons) from experiment_results "
        "where metric_name = 'activated'",
    )[0]
    assert open_windows[0] > 0 and open_windows[1] > 0
    # The 30d revenue window cannot have elapsed in 28 days of data: no estimate, a reason, no NaN.
    revenue = query(
        duckdb_path,
        "select count(*), sum(persons), count(p_value), min(note) from experiment_results "
        "where metric_name = 'revenue' and not is_control",
    )[0]
    assert revenue[:3] == (4, 0, 0) and revenue[3].startswith("empty variant")
    for table in SCHEMAS:
        doubles = [c.name for c in SCHEMAS[table].columns if c.type == "DOUBLE"]
        nans = " + ".join(f"count(*) filter (where isnan({c}))" for c in doubles)
        assert query(duckdb_path, f"select {nans} from {table}")[0][0] == 0, table

    health = query(
        duckdb_path,
        "select count(*), sum(persons), max(srm_p_value), bool_or(srm_detected), "
        "max(multi_variant_persons) from experiment_health",
    )[0]
    assert health[0] == 5 and health[2] >= 0.001 and not health[3] and health[4] == 0
    segments = query(
        duckdb_path,
        "select count(distinct segment_name), max(comparisons_in_family) "
        "from experiment_results_by_segment",
    )[0]
    assert segments[0] == 3 and segments[1] > 4
