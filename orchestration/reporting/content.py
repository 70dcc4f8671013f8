"""The weekly report's numbers, worked out from the marts as plain DataFrames.

The report covers one week ``[week_start, week_start + 7 days)`` and compares it with the week
before. Every number is computed here from the marts' rows, so the tests can work the answers out
by hand and the charts, Slack blocks and email all show the same figures.

Two definitions differ from the ideal and say so in the report (``Headline.note``):

* Funnel conversion. ``funnel_conversion`` has no time column, so a week's conversion for the
  persons who entered the funnel that week cannot be read from it. The headline is the overall
  conversion (last step's ``conversion_from_start``) of the ``segment_name = 'all'`` rows, i.e.
  over all the data the mart covers, with no week-over-week change. Re-deriving funnels in pandas
  would duplicate the mart's SQL; a weekly column in the mart is the right fix.
* D7 retention. On the Monday after a week, none of that week's day cohorts has reached day 7, so
  the headline uses the report week's cohorts only when every one of them has a complete day-7 row
  and otherwise the latest earlier week whose day-7 rows are all complete, and names that week.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta

import pandas as pd

WEEK = timedelta(days=7)
RETENTION_DAY = 7
# How far back the D7 headline looks for a week whose day-7 cohorts are all complete.
RETENTION_LOOKBACK_WEEKS = 4
DEFAULT_ALPHA = 0.05


@dataclass(frozen=True)
class Headline:
    """One headline number with the previous period's value and the change between them.

    ``kind`` is ``count``, ``currency`` or ``rate`` (a fraction in [0, 1]); a rate's change is in
    percentage points, the others' in percent of the previous value.
    """

    key: str
    label: str
    value: float | None
    previous: float | None
    kind: str
    note: str | None = None

    @property
    def change(self) -> float | None:
        """Rates: difference in points (0.05 = 5 pp). Others: relative change (0.1 = +10 %)."""
        if self.value is None or self.previous is None:
            return None
        if self.kind == "rate":
            return self.value - self.previous
        if self.previous == 0:
            return None
        return (self.value - self.previous) / self.previous

    def format_value(self) -> str:
        return format_number(self.value, self.kind)

    def format_change(self) -> str:
        change = self.change
        if change is None:
            return "n/a"
        if self.kind == "rate":
            return f"{change * 100:+.1f} pp"
        return f"{change * 100:+.1f}%"


@dataclass(frozen=True)
class DropOff:
    funnel_name: str
    step_index: int
    step_name: str
    previous_step_name: str | None
    dropped_off: int
    conversion_from_previous: float | None


@dataclass(frozen=True)
class ExperimentResult:
    experiment: str
    metric: str | None
    variant: str | None
    relative_lift: float | None
    p_value: float | None


@dataclass(frozen=True)
class ReportData:
    week_start: date
    week_end: date  # exclusive
    headlines: list[Headline]
    biggest_drop_off: DropOff | None
    drop_offs_by_funnel: list[DropOff]
    ux_recommendations: list[str] = field(default_factory=list)
    experiments: list[ExperimentResult] = field(default_factory=list)

    @property
    def week_label(self) -> str:
        last_day = self.week_end - timedelta(days=1)
        return f"{self.week_start.isoformat()} to {last_day.isoformat()}"

    def headline(self, key: str) -> Headline:
        for item in self.headlines:
            if item.key == key:
                return item
        raise KeyError(key)

    def summary_metadata(self) -> dict[str, float | str | None]:
        """Flat headline values for a materialization's metadata."""
        out: dict[str, float | str | None] = {"week_start": self.week_start.isoformat()}
        for item in self.headlines:
            out[item.key] = item.value
        return out

    def to_dict(self) -> dict:
        """Plain JSON-able form: written beside the report so that delivery, which may run
        alone and later, sends exactly the numbers the report shows."""
        return {
            **asdict(self),
            "week_start": self.week_start.isoformat(),
            "week_end": self.week_end.isoformat(),
        }

    @classmethod
    def from_dict(cls, payload: Mapping) -> ReportData:
        drop = payload.get("biggest_drop_off")
        return cls(
            week_start=date.fromisoformat(payload["week_start"]),
            week_end=date.fromisoformat(payload["week_end"]),
            headlines=[Headline(**h) for h in payload["headlines"]],
            biggest_drop_off=None if drop is None else DropOff(**drop),
            drop_offs_by_funnel=[DropOff(**d) for d in payload["drop_offs_by_funnel"]],
            ux_recommendations=list(payload.get("ux_recommendations", [])),
            experiments=[ExperimentResult(**e) for e in payload.get("experiments", [])],
        )


def format_number(value: float | None, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "currency":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def build_report_data(
    week_start: date,
    marts: Mapping[str, pd.DataFrame],
    *,
    ux_recommendations: pd.DataFrame | Sequence[str] | None = None,
    experiments: pd.DataFrame | None = None,
    top_recommendations: int = 3,
    alpha: float = DEFAULT_ALPHA,
) -> ReportData:
    """The week's report numbers.

    ``marts`` holds ``fct_events``, ``dim_users``, ``funnel_conversion`` and ``retention_cohorts``
    (``active_users`` is only needed by the charts). ``week_start`` must be a Monday; times in the
    marts are naive UTC, so the week is a UTC week.

    ``ux_recommendations``: strings, or a frame with a ``recommendation`` column (ordered by
    ``rank``/``priority`` ascending or ``score``/``impact`` descending when present).
    ``experiments``: a frame with ``experiment`` and ``p_value`` (and optionally ``metric``,
    ``variant``, ``relative_lift``, ``significant``); a row is significant when ``significant``
    is true or, without that column, when ``p_value < alpha``. Either may be None or empty.
    """
    if week_start.weekday() != 0:
        raise ValueError(f"week_start must be a Monday, got {week_start} ({week_start:%A})")
    previous_start = week_start - WEEK
    events = marts["fct_events"]
    users = marts["dim_users"]
    funnels = marts["funnel_conversion"]
    retention = marts["retention_cohorts"]

    headlines = [
        Headline(
            "active_users",
            "Active users",
            float(active_persons(events, week_start)),
            float(active_persons(events, previous_start)),
            "count",
        ),
        Headline(
            "new_persons",
            "New persons",
            float(new_persons(users, week_start)),
            float(new_persons(users, previous_start)),
            "count",
        ),
    ]
    headlines.extend(funnel_headlines(funnels))
    headlines.append(d7_retention_headline(retention, week_start))
    headlines.append(
        Headline(
            "revenue",
            "Revenue",
            revenue(events, week_start),
            revenue(events, previous_start),
            "currency",
        )
    )
    by_funnel = drop_offs(funnels)
    return ReportData(
        week_start=week_start,
        week_end=week_start + WEEK,
        headlines=headlines,
        biggest_drop_off=biggest_drop_off(by_funnel),
        drop_offs_by_funnel=by_funnel,
        ux_recommendations=top_ux_recommendations(ux_recommendations, top_recommendations),
        experiments=significant_experiments(experiments, alpha),
    )


def _week_bounds(week_start: date) -> tuple[datetime, datetime]:
    start = datetime.combine(week_start, time.min)
    return start, start + WEEK


def _in_week(times: pd.Series, week_start: date) -> pd.Series:
    start, end = _week_bounds(week_start)
    times = pd.to_datetime(times)
    return (times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))


def active_persons(fct_events: pd.DataFrame, week_start: date) -> int:
    """Distinct persons with at least one event in the week."""
    rows = fct_events[_in_week(fct_events["event_time"], week_start)]
    return int(rows["person_id"].nunique())


def new_persons(dim_users: pd.DataFrame, week_start: date) -> int:
    """Persons first seen in the week."""
    return int(_in_week(dim_users["first_seen_at"], week_start).sum())


def _revenue_of(properties: object) -> float:
    if properties is None or (isinstance(properties, float) and math.isnan(properties)):
        return 0.0
    parsed = json.loads(properties) if isinstance(properties, str) else properties
    if not isinstance(parsed, dict):
        return 0.0
    value = parsed.get("revenue")
    if value is None or isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def revenue(fct_events: pd.DataFrame, week_start: date) -> float:
    """Sum of ``properties.revenue`` on ``purchase`` events in the week (missing counts as 0)."""
    rows = fct_events[
        _in_week(fct_events["event_time"], week_start) & (fct_events["event_name"] == "purchase")
    ]
    return float(sum(_revenue_of(p) for p in rows["properties"]))


def _all_segment(funnel_conversion: pd.DataFrame) -> pd.DataFrame:
    return funnel_conversion[funnel_conversion["segment_name"] == "all"]


def funnel_headlines(funnel_conversion: pd.DataFrame) -> list[Headline]:
    """Each funnel's overall conversion: the last step's ``conversion_from_start`` ('all' rows)."""
    out = []
    rows = _all_segment(funnel_conversion)
    for name, steps in sorted(rows.groupby("funnel_name"), key=lambda item: str(item[0])):
        last = steps.sort_values("step_index").iloc[-1]
        value = last["conversion_from_start"]
        out.append(
            Headline(
                key=f"funnel_conversion:{name}",
                label=f"{name} conversion",
                value=None if pd.isna(value) else float(value),
                previous=None,
                kind="rate",
                note="all data to date (funnel_conversion has no week column)",
            )
        )
    return out


def _d7_for_week(day_cohorts: pd.DataFrame, week_start: date) -> tuple[float, int] | None:
    """(retention, cohorts used) when every cohort starting in the week has a complete day-7 row."""
    in_week = day_cohorts[_in_week(day_cohorts["cohort_start"], week_start)]
    if in_week.empty:
        return None
    cohorts = in_week.groupby("cohort_start")["cohort_users"].max()
    day7 = in_week[in_week["period_number"] == RETENTION_DAY].set_index("cohort_start")
    complete = day7[day7["is_complete"].astype(bool)]
    if set(complete.index) != set(cohorts.index):
        return None
    total = cohorts.sum()
    if total == 0:
        return None
    return float(complete["retained_users"].sum() / total), len(cohorts)


def d7_retention_headline(retention_cohorts: pd.DataFrame, week_start: date) -> Headline:
    """Day-7 retention of the day cohorts of one week, weighted by cohort size.

    Uses the report week when its cohorts are all complete at day 7, else the latest earlier
    week (up to ``RETENTION_LOOKBACK_WEEKS`` back) that is; compared with the week before that.
    """
    day_cohorts = retention_cohorts[retention_cohorts["granularity"] == "day"]
    for back in range(RETENTION_LOOKBACK_WEEKS + 1):
        cohort_week = week_start - back * WEEK
        current = _d7_for_week(day_cohorts, cohort_week)
        if current is None:
            continue
        previous = _d7_for_week(day_cohorts, cohort_week - WEEK)
        last_day = cohort_week + WEEK - timedelta(days=1)
        note = f"cohorts of {cohort_week.isoformat()} to {last_day.isoformat()}"
        if back:
            note += " (latest week whose day 7 is complete)"
        return Headline(
            "d7_retention",
            "D7 retention",
            current[0],
            None if previous is None else previous[0],
            "rate",
            note=note,
        )
    return Headline(
        "d7_retention", "D7 retention", None, None, "rate", note="no week with complete day 7"
    )


def drop_offs(funnel_conversion: pd.DataFrame) -> list[DropOff]:
    """Per funnel ('all' rows), the step with the largest ``dropped_off`` (earliest on a tie)."""
    out = []
    rows = _all_segment(funnel_conversion)
    for name, steps in sorted(rows.groupby("funnel_name"), key=lambda item: str(item[0])):
        steps = steps.sort_values("step_index").reset_index(drop=True)
        dropped = steps["dropped_off"].fillna(0)
        if dropped.max() <= 0:
            continue
        position = int(dropped.idxmax())  # first occurrence: the earliest step on a tie
        row = steps.iloc[position]
        conversion = row["conversion_from_previous"]
        out.append(
            DropOff(
                funnel_name=str(name),
                step_index=int(row["step_index"]),
                step_name=str(row["step_name"]),
                previous_step_name=str(steps.iloc[position - 1]["step_name"]) if position else None,
                dropped_off=int(row["dropped_off"]),
                conversion_from_previous=None if pd.isna(conversion) else float(conversion),
            )
        )
    return out


def biggest_drop_off(by_funnel: Sequence[DropOff]) -> DropOff | None:
    if not by_funnel:
        return None
    return max(by_funnel, key=lambda d: d.dropped_off)  # max keeps the first on a tie


def top_ux_recommendations(
    recommendations: pd.DataFrame | Sequence[str] | None, limit: int
) -> list[str]:
    if recommendations is None:
        return []
    if isinstance(recommendations, pd.DataFrame):
        frame = recommendations
        if frame.empty:
            return []
        ascending = [c for c in ("rank", "priority") if c in frame.columns]
        if ascending:  # ml.ux_recommendations ranks from 1 (best)
            frame = frame.sort_values(ascending[0], kind="stable")
        elif "score" in frame.columns:
            frame = frame.sort_values("score", ascending=False, kind="stable")
        elif "impact" in frame.columns:
            frame = frame.sort_values("impact", ascending=False, kind="stable")
        texts = [str(t) for t in frame["recommendation"].dropna()]
    else:
        texts = [str(t) for t in recommendations if t]
    return texts[:limit]


def _optional(row: pd.Series, column: str) -> object | None:
    if column not in row.index or pd.isna(row[column]):
        return None
    return row[column]


def significant_experiments(
    experiments: pd.DataFrame | None, alpha: float = DEFAULT_ALPHA
) -> list[ExperimentResult]:
    if experiments is None or experiments.empty:
        return []
    if "significant" in experiments.columns:
        rows = experiments[experiments["significant"].fillna(False).astype(bool)]
    else:
        rows = experiments[experiments["p_value"].notna() & (experiments["p_value"] < alpha)]
    out = []
    for _, row in rows.iterrows():
        lift, p_value = _optional(row, "relative_lift"), _optional(row, "p_value")
        metric, variant = _optional(row, "metric"), _optional(row, "variant")
        out.append(
            ExperimentResult(
                experiment=str(row["experiment"]),
                metric=None if metric is None else str(metric),
                variant=None if variant is None else str(variant),
                relative_lift=None if lift is None else float(lift),
                p_value=None if p_value is None else float(p_value),
            )
        )
    return out
