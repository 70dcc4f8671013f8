"""The charts of the funnel, retention and active-users marts, drawn with matplotlib's Agg canvas.

One module serves both readers of these charts: the weekly report (one funnel per chart, the
retention heatmap and active users windowed on the report week) and the metrics marts' UI
metadata (every funnel, every cohort, the whole active-users history), through the optional
``funnel_name`` / ``week_start`` arguments.

Each ``*_figure`` function returns the Figure so a test can read the plotted values back (bar
heights, image array, line data) before ``to_png`` turns it into bytes. Figures are built with
``matplotlib.figure.Figure`` rather than pyplot: no global state, safe in a threaded run.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Mapping
from datetime import date, timedelta

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
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


def markdown_image(png: bytes, title: str) -> str:
    """A PNG inlined as Markdown, for Dagster's ``MetadataValue.md``."""
    return f"![{title}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def drawn_bar_heights(figure: Figure) -> list[list[float]]:
    """What a funnel figure shows: the bar heights of each funnel's axes (colorbars excluded)."""
    return [[patch.get_height() for patch in axes.patches] for axes in figure.axes]


def drawn_heatmap(figure: Figure) -> np.ndarray:
    """The retention heatmap's cells as floats (masked cells read as NaN)."""
    return np.ma.filled(np.ma.asarray(figure.axes[0].images[0].get_array(), dtype=float), np.nan)


# -- funnels ----------------------------------------------------------------------------------


def funnel_names(funnel_conversion: pd.DataFrame) -> list[str]:
    """The funnels of the 'all' rows, in the order the mart lists them."""
    everyone = funnel_conversion[funnel_conversion["segment_name"] == "all"]
    return [str(name) for name in dict.fromkeys(everyone["funnel_name"])]


def funnel_steps(funnel_conversion: pd.DataFrame, funnel_name: str) -> pd.DataFrame:
    """The funnel's 'all' rows in step order: what the funnel chart plots."""
    rows = funnel_conversion[
        (funnel_conversion["funnel_name"] == funnel_name)
        & (funnel_conversion["segment_name"] == "all")
    ]
    return rows.sort_values("step_index").reset_index(drop=True)


def _draw_funnel(axes: Axes, funnel_conversion: pd.DataFrame, funnel_name: str) -> None:
    steps = funnel_steps(funnel_conversion, funnel_name)
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


def funnel_figure(funnel_conversion: pd.DataFrame, funnel_name: str | None = None) -> Figure:
    """Bars of users reaching each step, labelled with the conversion from the start.

    One funnel when ``funnel_name`` is given (the report), else one axes per funnel (the mart's
    UI chart).
    """
    names = [funnel_name] if funnel_name is not None else funnel_names(funnel_conversion)
    figure = _new_figure(7.0, 3.6 * max(len(names), 1))
    for position, name in enumerate(names, 1):
        _draw_funnel(figure.add_subplot(len(names), 1, position), funnel_conversion, name)
    return figure


# -- retention --------------------------------------------------------------------------------


def retention_matrix(
    retention_cohorts: pd.DataFrame, granularity: str = "week", *, week_start: date | None = None
) -> pd.DataFrame:
    """Cohorts (rows) by period number (columns) of ``retention_rate``; incomplete is NaN.

    With ``week_start`` (the report): the last ``RETENTION_COHORTS`` cohorts starting before the
    report week ends, periods 0 to ``RETENTION_PERIODS - 1``. Without: every cohort, periods 0 to
    the last one the mart has.
    """
    rows = retention_cohorts[retention_cohorts["granularity"] == granularity].copy()
    rows["cohort_start"] = pd.to_datetime(rows["cohort_start"])
    rows["rate"] = rows["retention_rate"].where(rows["is_complete"].astype(bool))
    if week_start is not None:
        end = pd.Timestamp(week_start + timedelta(days=7))
        rows = rows[(rows["cohort_start"] < end) & (rows["period_number"] < RETENTION_PERIODS)]
        periods = range(RETENTION_PERIODS)
    else:
        periods = range(int(rows["period_number"].max()) + 1 if len(rows) else 0)
    matrix = rows.pivot_table(
        index="cohort_start", columns="period_number", values="rate", aggfunc="first", dropna=False
    )
    matrix = matrix.reindex(columns=periods).sort_index()
    if week_start is not None:
        matrix = matrix.tail(RETENTION_COHORTS)
    return matrix.astype(float)


def retention_figure(
    retention_cohorts: pd.DataFrame, granularity: str = "week", *, week_start: date | None = None
) -> Figure:
    """A heatmap of ``retention_matrix``: one row per cohort, one column per period."""
    matrix = retention_matrix(retention_cohorts, granularity, week_start=week_start)
    figure = _new_figure(7.0, 0.45 * max(len(matrix), 1) + 1.6)
    axes = figure.add_subplot()
    cells = matrix.to_numpy(dtype=float)
    image = axes.imshow(
        np.ma.masked_invalid(cells), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto"
    )
    for (row, column), value in np.ndenumerate(cells):
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
    axes.set_xlabel(f"{granularity}s since first seen")
    axes.set_title(f"Retention by {granularity}ly cohort")
    figure.colorbar(image, ax=axes, label="retained")
    return figure


# -- active users -----------------------------------------------------------------------------


def active_users_series(active_users: pd.DataFrame, week_start: date | None = None) -> pd.DataFrame:
    """DAU/WAU/MAU by day: the ``ACTIVE_USERS_DAYS`` days ending with the report week when
    ``week_start`` is given, else every day."""
    rows = active_users.copy()
    rows["activity_date"] = pd.to_datetime(rows["activity_date"])
    if week_start is not None:
        end = pd.Timestamp(week_start + timedelta(days=7))
        start = end - pd.Timedelta(days=ACTIVE_USERS_DAYS)
        rows = rows[(rows["activity_date"] >= start) & (rows["activity_date"] < end)]
    return rows.sort_values("activity_date").reset_index(drop=True)


def active_users_figure(active_users: pd.DataFrame, week_start: date | None = None) -> Figure:
    """DAU, WAU and MAU, one line each; the report week shaded when ``week_start`` is given."""
    series = active_users_series(active_users, week_start)
    figure = _new_figure()
    axes = figure.add_subplot()
    for column in ("dau", "wau", "mau"):
        axes.plot(series["activity_date"], series[column].astype(float), label=column.upper())
    if week_start is not None:
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


# -- the report's set -------------------------------------------------------------------------


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "funnel"


def build_charts(week_start: date, marts: Mapping[str, pd.DataFrame]) -> dict[str, bytes]:
    """Every chart of the weekly report as PNG bytes, keyed by file name (``funnel_<name>.png``,
    ``retention_heatmap.png``, ``active_users.png``, and ``experiment_<name>.png``: each
    experiment's lifts with their CIs, when ``marts`` holds ``experiment_results``)."""
    charts: dict[str, bytes] = {}
    funnels = marts["funnel_conversion"]
    for name in sorted(funnel_names(funnels)):
        file_name, n = f"funnel_{slug(name)}.png", 1
        while file_name in charts:  # two funnel names with the same slug
            n += 1
            file_name = f"funnel_{slug(name)}_{n}.png"
        charts[file_name] = to_png(funnel_figure(funnels, name))
    charts["retention_heatmap.png"] = to_png(
        retention_figure(marts["retention_cohorts"], week_start=week_start)
    )
    charts["active_users.png"] = to_png(active_users_figure(marts["active_users"], week_start))
    experiments = marts.get("experiment_results")
    if experiments is not None:
        from orchestration.experiments.charts import lift_figure

        for name in sorted(experiments["experiment_name"].unique()):
            charts[f"experiment_{slug(name)}.png"] = to_png(lift_figure(experiments, name))
    return charts
