"""Per-person feature frames built from the marts, shared by the models in ``ml/``.

Input frames (column names as in the dbt marts; extra columns are ignored):

* ``events`` (``fct_events``): ``person_id``, ``event_name``, ``event_time`` (naive UTC),
  ``session_id``; :func:`activity_features` also reads ``properties`` (JSON text, ``revenue`` on
  purchases).
* ``users`` (``dim_users``): ``person_id``, ``first_platform``, ``country``, ``first_utm_source``.
* ``levels`` (the per-person funnel level table, see :func:`funnel_levels`): ``person_id``,
  ``level`` (int, 0..n: how many steps of the funnel the person reached in order inside the
  window; 0 = never did the first step) and one column ``<step>_at`` per step with the time the
  person reached it (NaT beyond ``level``). A ``funnel_conversion`` mart with the same
  windowFunnel semantics can be passed instead once pivoted to this shape.

The funnel's step names are always passed in (``steps``); nothing here knows the demo's funnel.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ml.errors import InsufficientDataError

DEFAULT_WINDOW = pd.Timedelta(days=7)
FIRST_DAY = pd.Timedelta(days=1)
ERROR_EVENTS = ("error",)
HELP_EVENTS = ("view_help",)
SEGMENT_COLUMNS = ("platform", "country", "channel")
NO_CHANNEL = "none"


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def _times(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).astype("datetime64[us]")


def step_column(step: str) -> str:
    return f"{step}_at"


def funnel_levels(
    events: pd.DataFrame, steps: Sequence[str], window: pd.Timedelta = DEFAULT_WINDOW
) -> pd.DataFrame:
    """The deepest funnel step each person reached, with ClickHouse ``windowFunnel`` semantics.

    A chain starts at any occurrence of ``steps[0]``; each next step is the earliest occurrence of
    that event at or after the previous step's time and no later than ``start + window``. A
    person's level is the longest chain over all starts (ties: the earliest start).

    Returns one row per person in ``events``: ``person_id``, ``level``, ``<step>_at`` per step.
    """
    _require(events, ["person_id", "event_name", "event_time"], "events")
    if len(steps) < 2:
        raise ValueError("a funnel needs at least two steps")
    ev = events[["person_id", "event_name", "event_time"]].copy()
    ev["event_time"] = _times(ev["event_time"])
    cols = [step_column(s) for s in steps]
    chains = (
        ev.loc[ev["event_name"] == steps[0], ["person_id", "event_time"]]
        .rename(columns={"event_time": cols[0]})
        .reset_index(drop=True)
    )
    deadline = chains[cols[0]] + window
    for prev, step, col in zip(cols, steps[1:], cols[1:], strict=False):
        found = pd.Series(pd.NaT, index=chains.index, dtype="datetime64[us]")
        live = chains[prev].notna()
        if live.any():
            left = chains.loc[live, ["person_id", prev]].reset_index().sort_values(prev)
            right = (
                ev.loc[ev["event_name"] == step, ["person_id", "event_time"]]
                .sort_values("event_time")
                .reset_index(drop=True)
            )
            merged = pd.merge_asof(
                left,
                right,
                left_on=prev,
                right_on="event_time",
                by="person_id",
                direction="forward",
                allow_exact_matches=True,
            ).set_index("index")
            found.loc[merged.index] = merged["event_time"].to_numpy()
        chains[col] = found.where(found <= deadline)
    chains["level"] = chains[cols].notna().sum(axis=1).astype(int)
    best = chains.sort_values(
        ["person_id", "level", cols[0]], ascending=[True, False, True]
    ).drop_duplicates("person_id")
    persons = pd.DataFrame({"person_id": sorted(ev["person_id"].unique())})
    out = persons.merge(best[["person_id", "level", *cols]], on="person_id", how="left")
    out["level"] = out["level"].fillna(0).astype(int)
    return out[["person_id", "level", *cols]]


def _segments(users: pd.DataFrame) -> pd.DataFrame:
    _require(users, ["person_id", "first_platform", "country", "first_utm_source"], "users")
    seg = users[["person_id"]].copy()
    seg["platform"] = users["first_platform"].fillna("unknown").astype(str)
    seg["country"] = users["country"].fillna("unknown").astype(str)
    seg["channel"] = users["first_utm_source"].fillna(NO_CHANNEL).astype(str)
    return seg


def _decided(levels: pd.DataFrame, steps: Sequence[str], window: pd.Timedelta, as_of) -> pd.Series:
    """Persons whose funnel window has closed by ``as_of`` (their outcome is known)."""
    start = _times(levels[step_column(steps[0])])
    return start.notna() & (start + window <= pd.Timestamp(as_of))


def _decided_entrants(
    events: pd.DataFrame,
    levels: pd.DataFrame,
    steps: Sequence[str],
    window: pd.Timedelta,
    as_of,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The events (typed) and the funnel entrants (level >= 1, step times typed) whose funnel
    window has closed by ``as_of`` (default: the last event): the population of the step and
    first-day features."""
    _require(events, ["person_id", "event_name", "event_time", "session_id"], "events")
    _require(levels, ["person_id", "level", *map(step_column, steps)], "levels")
    ev = events[["person_id", "event_name", "event_time", "session_id"]].copy()
    ev["event_time"] = _times(ev["event_time"])
    as_of = ev["event_time"].max() if as_of is None else pd.Timestamp(as_of)
    lv = levels[levels["level"] >= 1].copy()
    for s in steps:
        lv[step_column(s)] = _times(lv[step_column(s)])
    return ev, lv[_decided(lv, steps, window, as_of)]


def step_behaviour(
    events: pd.DataFrame,
    levels: pd.DataFrame,
    users: pd.DataFrame,
    steps: Sequence[str],
    window: pd.Timedelta = DEFAULT_WINDOW,
    as_of: pd.Timestamp | None = None,
    error_events: Sequence[str] = ERROR_EVENTS,
    help_events: Sequence[str] = HELP_EVENTS,
) -> pd.DataFrame:
    """Behaviour at each funnel step of every person who attempted it (reached the step before).

    One row per (person, step) for ``step = steps[1:]``; a person attempted ``steps[i]`` when
    their level is at least ``i``. ``converted`` says whether they reached it. The *step window*
    runs from the previous step's time (exclusive) to the step's time (exclusive) for converters,
    or to the end of the funnel window (``steps[0]`` time + ``window``, inclusive) for persons who
    dropped. Persons whose funnel window has not closed by ``as_of`` (default: the last event)
    are left out, since whether they drop is not known yet.

    Columns: ``person_id``, ``step``, ``step_index`` (1..n-1), ``converted`` (bool),
    ``minutes_at_step`` (previous step -> the step for converters, previous step -> last event in
    the step window for droppers, 0 when they did nothing more), ``events_at_step``,
    ``errors_at_step``, ``help_views_at_step`` (events in the step window), ``events_before`` and
    ``sessions_before`` (all the person's events/sessions up to leaving or converting),
    ``platform``, ``country``, ``channel`` (first utm_source, ``"none"`` without one).
    """
    ev, lv = _decided_entrants(events, levels, steps, window, as_of)
    parts = []
    for i in range(1, len(steps)):
        att = lv[lv["level"] >= i]
        parts.append(
            pd.DataFrame(
                {
                    "person_id": att["person_id"].to_numpy(),
                    "step": steps[i],
                    "step_index": i,
                    "converted": (att["level"] >= i + 1).to_numpy(),
                    "prev_at": att[step_column(steps[i - 1])].to_numpy(),
                    "step_at": att[step_column(steps[i])].to_numpy(),
                    "deadline": (att[step_column(steps[0])] + window).to_numpy(),
                }
            )
        )
    att = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if att.empty:
        raise InsufficientDataError("no person attempted any funnel step after the first")
    att["key"] = np.arange(len(att))
    joined = att.merge(ev, on="person_id", how="inner")
    in_window = (joined["event_time"] > joined["prev_at"]) & np.where(
        joined["converted"],
        joined["event_time"] < joined["step_at"],
        joined["event_time"] <= joined["deadline"],
    )
    win = joined[in_window]
    grouped = win.groupby("key")
    att["events_at_step"] = grouped.size().reindex(att["key"], fill_value=0).to_numpy()
    for col, names in (("errors_at_step", error_events), ("help_views_at_step", help_events)):
        counts = win[win["event_name"].isin(list(names))].groupby("key").size()
        att[col] = counts.reindex(att["key"], fill_value=0).to_numpy()
    last = grouped["event_time"].max().reindex(att["key"]).to_numpy()
    leave = np.where(att["converted"], att["step_at"], last)
    leave = pd.Series(leave, dtype="datetime64[us]").fillna(att["prev_at"])
    att["leave_at"] = leave.to_numpy()
    att["minutes_at_step"] = (att["leave_at"] - att["prev_at"]).dt.total_seconds() / 60.0
    joined = joined.merge(att[["key", "leave_at"]], on="key")
    before = joined[
        np.where(
            joined["converted"],
            joined["event_time"] < joined["leave_at"],
            joined["event_time"] <= joined["leave_at"],
        )
    ].groupby("key")
    att["events_before"] = before.size().reindex(att["key"], fill_value=0).to_numpy()
    att["sessions_before"] = (
        before["session_id"].nunique().reindex(att["key"], fill_value=0).to_numpy()
    )
    out = att.merge(_segments(users), on="person_id", how="left")
    for col in SEGMENT_COLUMNS:
        out[col] = out[col].fillna("unknown")
    cols = [
        "person_id",
        "step",
        "step_index",
        "converted",
        "minutes_at_step",
        "events_at_step",
        "errors_at_step",
        "help_views_at_step",
        "events_before",
        "sessions_before",
        *SEGMENT_COLUMNS,
    ]
    return out[cols].sort_values(["step_index", "person_id"], kind="stable").reset_index(drop=True)


def first_day_features(
    events: pd.DataFrame,
    levels: pd.DataFrame,
    users: pd.DataFrame,
    steps: Sequence[str],
    window: pd.Timedelta = DEFAULT_WINDOW,
    as_of: pd.Timestamp | None = None,
    horizon: pd.Timedelta = FIRST_DAY,
    error_events: Sequence[str] = ERROR_EVENTS,
    help_events: Sequence[str] = HELP_EVENTS,
) -> pd.DataFrame:
    """Behaviour in the first ``horizon`` after entering the funnel, and whether the person went
    on to complete it (``converted``: level == n).

    Population: persons who did ``steps[0]`` and whose funnel window closed by ``as_of``.
    The funnel's own step events are **excluded** from the event counts, and the last step is
    never a feature: it is the label (a person who activates on day one is a converter by
    definition). How far the person got through the other steps on day one is a feature
    (``funnel_steps``, 1..n-1): early progress is legitimate behaviour, not the outcome.

    Columns: ``person_id``, ``funnel_steps``, ``events``, ``sessions``, ``distinct_events``,
    ``errors``, ``help_views``, ``active_minutes`` (first to last counted event), ``platform``,
    ``country``, ``channel``, ``converted`` (0/1).
    """
    ev, lv = _decided_entrants(events, levels, steps, window, as_of)
    day_end = lv[step_column(steps[0])] + horizon
    lv["funnel_steps"] = sum((lv[step_column(s)] < day_end).astype(int) for s in steps[:-1])
    if lv.empty:
        raise InsufficientDataError("no person entered the funnel with a closed window")
    start = lv[["person_id", step_column(steps[0])]].rename(
        columns={step_column(steps[0]): "start"}
    )
    joined = ev[~ev["event_name"].isin(list(steps))].merge(start, on="person_id")
    day = joined[
        (joined["event_time"] >= joined["start"])
        & (joined["event_time"] < joined["start"] + horizon)
    ]
    g = day.groupby("person_id")
    feats = pd.DataFrame(
        {
            "events": g.size(),
            "sessions": g["session_id"].nunique(),
            "distinct_events": g["event_name"].nunique(),
            "errors": day[day["event_name"].isin(list(error_events))].groupby("person_id").size(),
            "help_views": day[day["event_name"].isin(list(help_events))]
            .groupby("person_id")
            .size(),
            "active_minutes": (g["event_time"].max() - g["event_time"].min()).dt.total_seconds()
            / 60,
        }
    )
    out = lv[["person_id", "level", "funnel_steps"]].merge(
        feats, left_on="person_id", right_index=True, how="left"
    )
    num = ["events", "sessions", "distinct_events", "errors", "help_views", "active_minutes"]
    out[num] = out[num].fillna(0)
    for c in num[:-1]:
        out[c] = out[c].astype(int)
    out = out.merge(_segments(users), on="person_id", how="left")
    for col in SEGMENT_COLUMNS:
        out[col] = out[col].fillna("unknown")
    out["converted"] = (out["level"] >= len(steps)).astype(int)
    return (
        out[["person_id", "funnel_steps", *num, *SEGMENT_COLUMNS, "converted"]]
        .sort_values("person_id", kind="stable")
        .reset_index(drop=True)
    )


def _property(properties: pd.Series, key: str) -> pd.Series:
    def get(text):
        if not isinstance(text, str) or not text:
            return None
        try:
            value = json.loads(text).get(key)
        except (ValueError, AttributeError):
            return None
        return value

    return properties.map(get)


def activity_features(
    events: pd.DataFrame,
    levels: pd.DataFrame | None = None,
    steps: Sequence[str] | None = None,
    revenue_event: str = "purchase",
    revenue_key: str = "revenue",
) -> pd.DataFrame:
    """Lifetime activity per person: ``person_id``, ``events``, ``sessions``, ``active_days``
    (distinct UTC dates with an event), ``converted`` (0/1: completed the funnel; 0 when no
    ``levels`` are given), ``revenue`` (sum of ``properties.revenue`` on ``revenue_event``)."""
    _require(events, ["person_id", "event_name", "event_time", "session_id"], "events")
    if events.empty:
        raise InsufficientDataError("no events")
    ev = events.copy()
    ev["event_time"] = _times(ev["event_time"])
    ev["event_day"] = ev["event_time"].dt.normalize()
    g = ev.groupby("person_id")
    out = pd.DataFrame(
        {
            "events": g.size(),
            "sessions": g["session_id"].nunique(),
            "active_days": g["event_day"].nunique(),
        }
    )
    buys = ev[ev["event_name"] == revenue_event]
    if len(buys) and "properties" in buys.columns:
        money = pd.to_numeric(_property(buys["properties"], revenue_key), errors="coerce").fillna(0)
        out["revenue"] = money.groupby(buys["person_id"]).sum().reindex(out.index, fill_value=0.0)
    else:
        out["revenue"] = 0.0
    out["revenue"] = out["revenue"].astype(float)
    if levels is not None:
        if steps is None:
            raise ValueError("steps are needed with levels")
        done = levels.set_index("person_id")["level"] >= len(steps)
        out["converted"] = done.reindex(out.index, fill_value=False).astype(int)
    else:
        out["converted"] = 0
    out = out.reset_index().rename(columns={"index": "person_id"})
    return out[["person_id", "events", "sessions", "active_days", "converted", "revenue"]]
