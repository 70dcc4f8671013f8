"""Headline numbers and charts of the behaviour marts (docs/behaviour.md): plain functions over the
marts' DataFrames, registered in :data:`orchestration.metrics.reports.REPORTS` so that the dbt asset
attaches them as metadata like the metrics marts'."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from orchestration.reporting import charts


def _figure() -> tuple[Figure, object]:
    figure = Figure(figsize=(7.0, 3.6), layout="constrained")
    return figure, figure.add_subplot()


def top_paths_summary(top_paths: pd.DataFrame) -> dict[str, dict]:
    """Per journey: the most common path, its persons and share, and how many distinct paths."""
    summary: dict[str, dict] = {}
    for journey, paths in top_paths.sort_values("path_rank").groupby("journey_name", sort=True):
        top = paths.iloc[0]
        summary[str(journey)] = {
            "top_path": str(top.path),
            "top_path_persons": int(top.persons),
            "top_path_share": round(float(top.share), 4),
            "distinct_paths": int(len(paths)),
        }
    return summary


def top_paths_figure(top_paths: pd.DataFrame, limit: int = 8) -> Figure:
    figure, axes = _figure()
    first = top_paths.sort_values("path_rank").groupby("journey_name").head(limit)
    labels = [f"{j}: {p}"[:70] for j, p in zip(first.journey_name, first.path, strict=True)]
    axes.barh(labels[::-1], first.persons.astype(float).tolist()[::-1])
    axes.set_title("Top paths (persons)")
    axes.tick_params(axis="y", labelsize=6)
    return figure


def lifecycle_summary(lifecycle: pd.DataFrame) -> dict[str, object]:
    """The latest complete-or-not week's (else day's) new, returning, resurrecting, dormant."""
    if lifecycle.empty:
        return {}
    grain = "week" if (lifecycle.granularity == "week").any() else "day"
    latest = lifecycle[lifecycle.granularity == grain].sort_values("period_start").iloc[-1]
    return {
        "granularity": grain,
        "period_start": str(pd.Timestamp(latest.period_start).date()),
        **{k: int(latest[f"{k}_persons"]) for k in ("new", "returning", "resurrecting", "dormant")},
    }


def lifecycle_figure(lifecycle: pd.DataFrame) -> Figure:
    figure, axes = _figure()
    grain = "week" if (lifecycle.granularity == "week").any() else "day"
    rows = lifecycle[lifecycle.granularity == grain].sort_values("period_start")
    x = [str(pd.Timestamp(v).date()) for v in rows.period_start]
    bottom = pd.Series(0.0, index=range(len(rows)))
    for part in ("new", "returning", "resurrecting"):
        values = rows[f"{part}_persons"].astype(float).reset_index(drop=True)
        axes.bar(x, values, bottom=bottom, label=part)
        bottom = bottom + values
    axes.bar(x, -rows.dormant_persons.astype(float), label="dormant")
    axes.set_title(f"Lifecycle per {grain} (dormant below zero, as PostHog)")
    axes.tick_params(axis="x", labelsize=6, rotation=45)
    axes.legend(fontsize=7)
    return figure


def traffic_summary(traffic_sources: pd.DataFrame) -> dict[str, dict]:
    """Per channel: persons, their share and the bounce rate."""
    per = traffic_sources.groupby("channel")[["persons", "sessions", "bounced_sessions"]].sum()
    total = per.persons.sum()
    return {
        str(channel): {
            "persons": int(row.persons),
            "share": round(float(row.persons / total), 4) if total else None,
            "bounce_rate": round(float(row.bounced_sessions / row.sessions), 4)
            if row.sessions
            else None,
        }
        for channel, row in per.iterrows()
    }


def traffic_figure(traffic_sources: pd.DataFrame) -> Figure:
    figure, axes = _figure()
    per = traffic_sources.groupby("channel").persons.sum().sort_values()
    axes.barh(per.index.astype(str), per.astype(float))
    axes.set_title("Persons by first-touch channel")
    return figure


def adoption_summary(feature_adoption: pd.DataFrame) -> dict[str, float | None]:
    """Per feature, over every cohort (segment all): adopters / cohort persons."""
    everyone = feature_adoption[feature_adoption.segment_name == "all"]
    per = everyone.groupby("feature")[["adopters", "cohort_persons"]].sum()
    return {
        str(f): round(float(r.adopters / r.cohort_persons), 4) if r.cohort_persons else None
        for f, r in per.iterrows()
    }


def adoption_figure(feature_adoption: pd.DataFrame) -> Figure:
    figure, axes = _figure()
    rates = pd.Series(adoption_summary(feature_adoption), dtype=float).sort_values()
    axes.barh(rates.index.astype(str), rates.values)
    axes.set_title("Adoption rate per feature (all signup cohorts)")
    return figure


def abandonment_summary(abandonment: pd.DataFrame) -> dict[str, dict]:
    return {
        str(r.pair_name): {
            "started": int(r.started),
            "abandonment_rate": round(float(r.abandonment_rate), 4),
            "abandoned_value": None if pd.isna(r.abandoned_value) else float(r.abandoned_value),
        }
        for r in abandonment.itertuples()
    }


def abandonment_figure(abandonment: pd.DataFrame) -> Figure:
    figure, axes = _figure()
    axes.barh(abandonment.pair_name.astype(str), abandonment.abandonment_rate.astype(float))
    axes.set_xlim(0, 1)
    axes.set_title("Abandonment rate")
    return figure


def snapshots_summary(metric_snapshots: pd.DataFrame) -> dict[str, float]:
    """The latest day's value of every metric."""
    if metric_snapshots.empty:
        return {}
    latest = metric_snapshots[metric_snapshots.metric_date == metric_snapshots.metric_date.max()]
    return {
        "date": str(pd.Timestamp(latest.metric_date.iloc[0]).date()),
        **{
            str(r.metric_name): round(float(r.metric_value), 4)
            for r in latest.itertuples()
            if pd.notna(r.metric_value)
        },
    }


def snapshots_figure(metric_snapshots: pd.DataFrame) -> Figure:
    figure, axes = _figure()
    rows = metric_snapshots[metric_snapshots.metric_name == "active_users"].sort_values(
        "metric_date"
    )
    axes.plot(pd.to_datetime(rows.metric_date), rows.metric_value.astype(float))
    axes.set_title("Active users per day (snapshots)")
    return figure


def image(figure: Figure, title: str) -> str:
    return charts.markdown_image(charts.to_png(figure), title)
