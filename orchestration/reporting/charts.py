"""The report's charts, drawn with matplotlib's Agg canvas from the marts' rows.

Each ``*_figure`` function returns the Figure so a test can read the plotted values back (bar
heights, image array, line data) before ``to_png`` turns it into bytes. Figures are built with
``matplotlib.figure.Figure`` rather than pyplot: no global state, safe in a threaded run.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping
from datetime import date, timedelta

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ACTIVE_USERS_DAYS = 56  # eight weeks up to the end of the report week
RETENTION_COHORTS = 8
RETENTION_PERIODS = 8


def _new_figure(width: float = 7.0, height: float = 3.6) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def funnel_steps(funnel_conversion: pd.DataFrame, funnel_name: str) -> pd.DataFrame:
    """The funnel's 'all' rows in step order: what the funnel chart plots."""
    rows = funnel_conversion[
        (funnel_conversion["funnel_name"] == funnel_name)
        & (funnel_conversion["segment_name"] == "all")
    ]
    return rows.sort_values("step_index").reset_index(drop=True)


def funnel_figure(funnel_conversion: pd.DataFrame, funnel_name: str) -> Figure:
    """Bars of users reaching each step, labelled with the conversion from the start."""
    steps = funnel_steps(funnel_conversion, funnel_name)
    figure = _new_figure()
    axes = figure.add_subplot()
    labels = [
        f"{int(i)}. {name}" for i, name in zip(steps["step_index"], steps["step_name"], strict=True)
    ]
    bars = axes.bar(labels, steps["users"].astype(float), color="#4c72b0")
    for bar, rate in zip(bars, steps["conversion_from_start"], strict=True):
        if pd.notna(rate):
            axes.annotate(
                f"{rate * 100:.1f}%",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    axes.set_title(f"Funnel: {funnel_name} (all data to date)")
    axes.set_ylabel("users")
    axes.tick_params(axis="x", labelrotation=20, labelsize=8)
    return figure


def retention_matrix(retention_cohorts: pd.DataFrame, week_start: date) -> pd.DataFrame:
    """Weekly cohorts (rows) by week number (columns) of ``retention_rate``; incomplete is NaN.

    The last ``RETENTION_COHORTS`` week cohorts starting before the report week ends, periods 0 to
    ``RETENTION_PERIODS - 1``.
    """
    end = pd.Timestamp(week_start + timedelta(days=7))
    rows = retention_cohorts[retention_cohorts["granularity"] == "week"].copy()
    rows["cohort_start"] = pd.to_datetime(rows["cohort_start"])
    rows = rows[(rows["cohort_start"] < end) & (rows["period_number"] < RETENTION_PERIODS)]
    rows["rate"] = rows["retention_rate"].where(rows["is_complete"].astype(bool))
    matrix = rows.pivot_table(
        index="cohort_start", columns="period_number", values="rate", aggfunc="first", dropna=False
    )
    matrix = matrix.reindex(columns=range(RETENTION_PERIODS)).sort_index().tail(RETENTION_COHORTS)
    return matrix.astype(float)


def retention_figure(retention_cohorts: pd.DataFrame, week_start: date) -> Figure:
    matrix = retention_matrix(retention_cohorts, week_start)
    figure = _new_figure(7.0, 0.45 * max(len(matrix), 1) + 1.6)
    axes = figure.add_subplot()
    values = np.ma.masked_invalid(matrix.to_numpy(dtype=float))
    image = axes.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, column), value in np.ndenumerate(matrix.to_numpy(dtype=float)):
        if not np.isnan(value):
            colour = "white" if value > 0.6 else "black"
            axes.text(
                column,
                row,
                f"{value * 100:.0f}%",
                ha="center",
                va="center",
                fontsize=7,
                color=colour,
            )
    axes.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns])
    axes.set_yticks(range(len(matrix)), [ts.strftime("%Y-%m-%d") for ts in matrix.index])
    axes.set_xlabel("weeks since first seen")
    axes.set_title("Weekly retention by cohort")
    figure.colorbar(image, ax=axes, label="retained")
    return figure


def active_users_series(active_users: pd.DataFrame, week_start: date) -> pd.DataFrame:
    """DAU/WAU/MAU for the ``ACTIVE_USERS_DAYS`` days ending with the report week."""
    end = pd.Timestamp(week_start + timedelta(days=7))
    start = end - pd.Timedelta(days=ACTIVE_USERS_DAYS)
    rows = active_users.copy()
    rows["activity_date"] = pd.to_datetime(rows["activity_date"])
    rows = rows[(rows["activity_date"] >= start) & (rows["activity_date"] < end)]
    return rows.sort_values("activity_date").reset_index(drop=True)


def active_users_figure(active_users: pd.DataFrame, week_start: date) -> Figure:
    series = active_users_series(active_users, week_start)
    figure = _new_figure()
    axes = figure.add_subplot()
    for column in ("dau", "wau", "mau"):
        axes.plot(series["activity_date"], series[column].astype(float), label=column.upper())
    axes.axvspan(
        pd.Timestamp(week_start),
        pd.Timestamp(week_start + timedelta(days=7)),
        alpha=0.1,
        color="grey",
        label="report week",
    )
    axes.set_title("Active users")
    axes.set_ylabel("persons")
    axes.legend(loc="upper left", fontsize=8)
    figure.autofmt_xdate()
    return figure


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "funnel"


def build_charts(week_start: date, marts: Mapping[str, pd.DataFrame]) -> dict[str, bytes]:
    """Every chart as PNG bytes, keyed by file name (``funnel_<name>.png``, ...)."""
    charts: dict[str, bytes] = {}
    funnels = marts["funnel_conversion"]
    names = sorted(funnels.loc[funnels["segment_name"] == "all", "funnel_name"].unique(), key=str)
    for name in names:
        file_name, n = f"funnel_{_slug(str(name))}.png", 1
        while file_name in charts:  # two funnel names with the same slug
            n += 1
            file_name = f"funnel_{_slug(str(name))}_{n}.png"
        charts[file_name] = to_png(funnel_figure(funnels, name))
    charts["retention_heatmap.png"] = to_png(
        retention_figure(marts["retention_cohorts"], week_start)
    )
    charts["active_users.png"] = to_png(active_users_figure(marts["active_users"], week_start))
    return charts
