"""Which headline numbers and chart go with which metrics mart (keyed by the dbt model's name)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from orchestration.metrics import summaries
from orchestration.reporting import charts


@dataclass(frozen=True)
class MartReport:
    headline: dict
    chart_markdown: str


def _funnel(frame: pd.DataFrame) -> MartReport:
    return MartReport(
        summaries.funnel_summary(frame),
        charts.markdown_image(charts.to_png(charts.funnel_figure(frame)), "funnels"),
    )


def _retention(frame: pd.DataFrame) -> MartReport:
    grains = set(frame.granularity)
    grain = "week" if "week" in grains else (sorted(grains)[0] if grains else "week")
    return MartReport(
        summaries.retention_summary(frame),
        charts.markdown_image(
            charts.to_png(charts.retention_figure(frame, grain)), f"{grain}ly retention"
        ),
    )


def _active(frame: pd.DataFrame) -> MartReport:
    return MartReport(
        summaries.active_users_summary(frame),
        charts.markdown_image(charts.to_png(charts.active_users_figure(frame)), "active users"),
    )


REPORTS: dict[str, Callable[[pd.DataFrame], MartReport]] = {
    "funnel_conversion": _funnel,
    "retention_cohorts": _retention,
    "active_users": _active,
}


def _behaviour(summary: Callable, figure: Callable, title: str) -> Callable:
    from orchestration.metrics import behaviour_reports as b

    return lambda frame: MartReport(summary(frame), b.image(figure(frame), title))


def _register_behaviour_reports() -> None:
    """The behaviour marts (docs/behaviour.md), from orchestration/metrics/behaviour_reports.py."""
    from orchestration.metrics import behaviour_reports as b

    REPORTS.update(
        {
            "top_paths": _behaviour(b.top_paths_summary, b.top_paths_figure, "top paths"),
            "lifecycle": _behaviour(b.lifecycle_summary, b.lifecycle_figure, "lifecycle"),
            "traffic_sources": _behaviour(b.traffic_summary, b.traffic_figure, "channels"),
            "feature_adoption": _behaviour(b.adoption_summary, b.adoption_figure, "adoption"),
            "abandonment": _behaviour(b.abandonment_summary, b.abandonment_figure, "abandonment"),
            "metric_snapshots": _behaviour(b.snapshots_summary, b.snapshots_figure, "snapshots"),
        }
    )


_register_behaviour_reports()


def missing_steps_message(rows: list[tuple]) -> str:
    """A failed build's explanation from int_funnel_step_occurrences rows (funnel, index, step)."""
    return "; ".join(
        f"funnel {f!r}: step {i} ({s!r}) never occurs in the events" for f, i, s in rows
    )


def headline_entries(headline: dict, prefix: str = "") -> dict[str, object]:
    """The headline flattened to one metadata entry per number (`onboarding / overall_conversion`),
    so that the UI shows each at a glance and plots it across materializations."""
    entries: dict[str, object] = {}
    for key, value in headline.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            entries.update(headline_entries(value, prefix=f"{name} / "))
        elif value is not None:
            entries[name] = value
    return entries
