"""The numbers a person wants at a glance from each metrics mart, from the mart's DataFrame."""

from __future__ import annotations

import pandas as pd


def funnel_summary(funnel_conversion: pd.DataFrame) -> dict[str, dict]:
    """Per funnel (everyone): users at each step and the overall conversion (last step / first)."""
    everyone = funnel_conversion[funnel_conversion.segment_name == "all"]
    summary: dict[str, dict] = {}
    for name, steps in everyone.sort_values("step_index").groupby("funnel_name", sort=False):
        first, last = int(steps.users.iloc[0]), int(steps.users.iloc[-1])
        summary[name] = {
            "step_users": {
                str(s): int(u) for s, u in zip(steps.step_name, steps.users, strict=True)
            },
            "overall_conversion": round(last / first, 4) if first else None,
        }
    return summary


def retention_summary(retention_cohorts: pd.DataFrame, days=(1, 7, 30)) -> dict[str, float | None]:
    """D1/D7/D30: over every daily cohort whose period N is complete, persons retained in day N
    exactly / persons in those cohorts (None when no cohort has reached day N yet)."""
    daily = retention_cohorts[
        (retention_cohorts.granularity == "day") & retention_cohorts.is_complete.astype(bool)
    ]
    result: dict[str, float | None] = {}
    for n in days:
        cells = daily[daily.period_number == n]
        users = int(cells.cohort_users.sum())
        result[f"D{n}"] = round(int(cells.retained_users.sum()) / users, 4) if users else None
    return result


def active_users_summary(active_users: pd.DataFrame) -> dict[str, object]:
    """The latest day's DAU, WAU, MAU and stickiness."""
    if active_users.empty:
        return {}
    latest = active_users.sort_values("activity_date").iloc[-1]
    return {
        "date": str(pd.Timestamp(latest.activity_date).date()),
        "dau": int(latest.dau),
        "wau": int(latest.wau),
        "mau": int(latest.mau),
        "stickiness": round(float(latest.stickiness), 4) if pd.notna(latest.stickiness) else None,
    }
