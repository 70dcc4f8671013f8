"""Charts and headline numbers are drawn from the marts' own numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.metrics import summaries
from orchestration.metrics.reports import REPORTS, headline_entries
from orchestration.reporting import charts

FUNNEL = pd.DataFrame(
    {
        "funnel_name": ["a"] * 3 + ["b"] * 2 + ["a"] * 3,
        "step_index": [1, 2, 3, 1, 2, 1, 2, 3],
        "step_name": ["s1", "s2", "s3", "x", "y", "s1", "s2", "s3"],
        "segment_name": ["all"] * 5 + ["platform"] * 3,
        "segment_value": ["all"] * 5 + ["web"] * 3,
        "users": [10, 6, 3, 4, 1, 5, 2, 1],
        "conversion_from_start": [1, 0.6, 0.3, 1, 0.25, 1, 0.4, 0.2],
    }
)
RETENTION = pd.DataFrame(
    {
        "granularity": ["week"] * 5 + ["day"] * 4,
        "cohort_start": pd.to_datetime(
            ["2026-03-02"] * 3 + ["2026-03-09"] * 2 + ["2026-03-02"] * 4
        ),
        "period_number": [0, 1, 2, 0, 1, 0, 1, 7, 30],
        "cohort_users": [4, 4, 4, 2, 2, 4, 4, 4, 4],
        "retained_users": [4, 2, 1, 2, 1, 4, 1, 2, 0],
        "retention_rate": [1, 0.5, 0.25, 1, 0.5, 1, 0.25, 0.5, 0],
        "is_complete": [True, True, True, True, False, True, True, True, False],
    }
)
ACTIVE = pd.DataFrame(
    {
        "activity_date": pd.to_datetime(["2026-03-01", "2026-03-02", "2026-03-03"]),
        "dau": [1, 3, 2],
        "wau": [1, 4, 4],
        "mau": [1, 4, 5],
        "stickiness": [1, 0.75, 0.4],
    }
)


def test_funnel_bars_are_the_users_of_everyone():
    fig = charts.funnel_figure(FUNNEL)
    assert charts.drawn_bar_heights(fig) == [[10, 6, 3], [4, 1]]


def test_retention_heatmap_cells_are_the_complete_rates():
    fig = charts.retention_figure(RETENTION, "week")
    np.testing.assert_array_equal(
        charts.drawn_heatmap(fig), np.array([[1, 0.5, 0.25], [1, np.nan, np.nan]])
    )


def test_active_users_lines_are_the_mart():
    fig = charts.active_users_figure(ACTIVE)
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
    assert lines == {"DAU": [1, 3, 2], "WAU": [1, 4, 4], "MAU": [1, 4, 5]}


def test_headlines():
    assert summaries.funnel_summary(FUNNEL) == {
        "a": {"step_users": {"s1": 10, "s2": 6, "s3": 3}, "overall_conversion": 0.3},
        "b": {"step_users": {"x": 4, "y": 1}, "overall_conversion": 0.25},
    }
    assert summaries.retention_summary(RETENTION) == {"D1": 0.25, "D7": 0.5, "D30": None}
    assert summaries.active_users_summary(ACTIVE) == {
        "date": "2026-03-03",
        "dau": 2,
        "wau": 4,
        "mau": 5,
        "stickiness": 0.4,
    }
    assert headline_entries(summaries.funnel_summary(FUNNEL))["a / overall_conversion"] == 0.3


def test_every_report_renders_an_inline_png():
    for name, frame in [
        ("funnel_conversion", FUNNEL),
        ("retention_cohorts", RETENTION),
        ("active_users", ACTIVE),
    ]:
        assert REPORTS[name](frame).chart_markdown.startswith("![")
        assert "data:image/png;base64,iVBOR" in REPORTS[name](frame).chart_markdown
