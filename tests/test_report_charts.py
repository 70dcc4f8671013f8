"""The charts plot the marts' numbers: values are read back from the figures, then PNGs checked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestration.reporting import charts
from tests.test_report_content import WEEK, report_marts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_funnel_bars_are_the_users_per_step():
    marts = report_marts()
    figure = charts.funnel_figure(marts["funnel_conversion"], "signup")
    axes = figure.axes[0]
    heights = [patch.get_height() for patch in axes.patches]
    assert heights == [100, 40, 30]  # the 'all' rows; the ios segment row is not drawn
    labels = [t.get_text() for t in axes.get_xticklabels()]
    assert labels == ["1. visit", "2. signup", "3. activate"]
    assert [t.get_text() for t in axes.texts] == ["100.0%", "40.0%", "30.0%"]


def test_retention_heatmap_is_the_weekly_cohort_matrix():
    marts = report_marts()
    figure = charts.retention_figure(marts["retention_cohorts"], week_start=WEEK)
    image = figure.axes[0].images[0].get_array()
    # Rows: cohorts 2026-08-31, 2026-09-07, 2026-09-14; incomplete cells are masked.
    assert image.shape == (3, charts.RETENTION_PERIODS)
    assert image[0, 0] == pytest.approx(1.0)
    assert image[0, 1] == pytest.approx(0.40)
    assert image[0, 2] == pytest.approx(0.25)
    assert image[1, 1] == pytest.approx(900 / 999)
    assert image[2, 0] == pytest.approx(1.0)
    assert bool(image.mask[2, 1])  # 2026-09-14 week 1 exists but is not complete
    assert bool(image.mask[0, 3])  # no row at all
    assert int((~image.mask).sum()) == 6
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["2026-08-31", "2026-09-07", "2026-09-14"]


def test_active_users_lines_are_the_mart_columns():
    marts = report_marts()
    figure = charts.active_users_figure(marts["active_users"], WEEK)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    expected = marts["active_users"].copy()
    expected["activity_date"] = pd.to_datetime(expected["activity_date"])
    window = expected[
        (expected["activity_date"] >= pd.Timestamp("2026-07-27"))
        & (expected["activity_date"] < pd.Timestamp("2026-09-21"))
    ]
    assert len(window) == charts.ACTIVE_USERS_DAYS
    for column in ("dau", "wau", "mau"):
        np.testing.assert_array_equal(lines[column.upper()].get_ydata(), window[column].to_numpy())
    xs = pd.to_datetime(lines["DAU"].get_xdata())
    assert xs.min() == pd.Timestamp("2026-07-27") and xs.max() == pd.Timestamp("2026-09-20")


def test_build_charts_returns_pngs_for_every_funnel():
    result = charts.build_charts(WEEK, report_marts())
    assert sorted(result) == [
        "active_users.png",
        "funnel_checkout.png",
        "funnel_signup.png",
        "retention_heatmap.png",
    ]
    assert all(png.startswith(PNG_MAGIC) and len(png) > 1000 for png in result.values())
