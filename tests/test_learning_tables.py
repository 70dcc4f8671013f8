"""The learning tables' plumbing: the declared schema is what is written, empty or not, and the
funnel the models learn from comes from the metrics configuration."""

import dagster as dg
import pandas as pd
import pytest
from dagster_duckdb import DuckDBResource

from orchestration.learning.tables import SCHEMAS, learning_funnel, replace_table
from tests.pipeline import query


def test_an_empty_result_keeps_the_declared_schema_and_rewrites_are_idempotent(duckdb_path):
    duckdb = DuckDBResource(database=str(duckdb_path))
    assert replace_table(duckdb, "conversion_predictions", pd.DataFrame()) == 0
    described = query(duckdb_path, "describe main.conversion_predictions")
    assert [(r[0], r[1]) for r in described] == [
        (c.name, c.type) for c in SCHEMAS["conversion_predictions"].columns
    ]
    frame = pd.DataFrame(
        {
            "p_tree": [0.2],
            "person_id": ["u1"],
            "split": ["test"],
            "converted": [1],
            "p_logistic": [0.7],
            "extra": ["dropped"],
        }
    )
    for _ in range(2):
        assert replace_table(duckdb, "conversion_predictions", frame) == 1
    assert query(duckdb_path, "select * from main.conversion_predictions") == [
        ("u1", "test", 1, 0.7, 0.2)
    ]


def test_the_learning_funnel_is_the_first_configured_funnel(tmp_path, monkeypatch):
    config = tmp_path / "analytics.yml"
    config.write_text(
        "funnels:\n"
        "  - {name: trial, steps: [start, pay], conversion_window: 2d}\n"
        "  - {name: other, steps: [a, b], conversion_window: 1d}\n"
    )
    monkeypatch.setenv("ANALYTICS_CONFIG", str(config))
    funnel = learning_funnel()
    assert (funnel.name, funnel.steps, funnel.window) == (
        "trial",
        ["start", "pay"],
        pd.Timedelta(days=2),
    )

    config.write_text("funnels:\n  - {name: open, steps: [a, b], conversion_window: none}\n")
    with pytest.raises(dg.Failure, match="no conversion window"):
        learning_funnel()
