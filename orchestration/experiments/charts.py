"""Experiment charts, drawn with matplotlib's Agg canvas (no pyplot state, safe in threaded runs).

:func:`lift_figure` is the chart of each variant's lift with its 95 % CI, one panel per metric,
for the UI metadata and the weekly report; :func:`exposure_figure` shows cumulative exposures per
variant. Each returns the Figure, so a test can read back what was drawn; PNG and Markdown come
from ``orchestration.reporting.charts`` (``to_png``, ``markdown_image``).
"""

from __future__ import annotations

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SIGNIFICANT = "#2a9d8f"
NOT_SIGNIFICANT = "#8d99ae"


def _figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def lift_figure(results: pd.DataFrame, experiment: str) -> Figure:
    """Per metric of ``experiment`` (primary first, then guardrails), each treatment variant's
    absolute lift over control as a point with its 95 % CI as a horizontal bar, coloured when
    significant after Holm; a vertical line marks no effect. Variants without an estimate (empty,
    or every window still open) are listed with "n/a"."""
    rows = results[(results["experiment_name"] == experiment) & ~results["is_control"].astype(bool)]
    metrics = list(dict.fromkeys(rows.sort_values("is_guardrail", kind="stable")["metric_name"]))
    figure = _figure(7.0, 1.0 + 1.6 * max(len(metrics), 1))
    axes = figure.subplots(max(len(metrics), 1), 1, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics, strict=False):
        mine = rows[rows["metric_name"] == metric].reset_index(drop=True)
        guardrail = bool(mine["is_guardrail"].iloc[0])
        for y, row in mine.iterrows():
            if row["absolute_lift"] is None or pd.isna(row["absolute_lift"]):
                ax.text(0, y, "n/a", va="center", ha="center", fontsize=8)
                continue
            colour = SIGNIFICANT if bool(row["is_significant"]) else NOT_SIGNIFICANT
            lift = float(row["absolute_lift"])
            if row["ci_low"] is not None and pd.notna(row["ci_low"]):
                low, high = float(row["ci_low"]), float(row["ci_high"])
                ax.errorbar(
                    lift, y, xerr=[[lift - low], [high - lift]], fmt="o", color=colour, capsize=4
                )
            else:
                ax.plot([lift], [y], "o", color=colour)
        ax.axvline(0.0, color="#333333", linewidth=0.8)
        ax.set_yticks(range(len(mine)), [str(v) for v in mine["variant"]])
        ax.set_ylim(-0.6, len(mine) - 0.4)
        kind = str(mine["metric_type"].iloc[0])
        unit = "revenue per person" if kind == "revenue" else "rate, percentage points / 100"
        ax.set_title(f"{metric}{' (guardrail)' if guardrail else ''}: lift vs control", fontsize=9)
        ax.set_xlabel(f"difference in {unit}, 95% CI", fontsize=8)
    figure.suptitle(f"Experiment {experiment}", fontsize=10)
    return figure


def drawn_lifts(figure: Figure) -> list[list[tuple[float, float, float]]]:
    """What a lift figure shows: per panel, (lift, ci_low, ci_high) of each drawn interval."""
    panels = []
    for ax in figure.axes:
        drawn = []
        for container in ax.containers:
            (line, _caps, (bars,)) = container.lines[0], container.lines[1], container.lines[2]
            x = float(line.get_xdata()[0])
            segment = bars.get_segments()[0]
            drawn.append((x, float(segment[0][0]), float(segment[1][0])))
        panels.append(drawn)
    return panels


def exposure_figure(daily: pd.DataFrame, experiment: str) -> Figure:
    """Cumulative persons exposed per variant by UTC day (experiment_exposures_daily)."""
    mine = daily[daily["experiment_name"] == experiment]
    figure = _figure(7.0, 3.2)
    ax = figure.subplots()
    for variant, rows in mine.groupby("variant", sort=True):
        rows = rows.sort_values("exposure_date")
        ax.plot(pd.to_datetime(rows["exposure_date"]), rows["cumulative_persons"], label=variant)
    ax.set_title(f"Experiment {experiment}: persons exposed (cumulative)", fontsize=10)
    ax.set_ylabel("persons")
    if len(mine):
        ax.legend(fontsize=8)
    figure.autofmt_xdate()
    return figure
