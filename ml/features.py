"""Per-person feature frames built from the marts, shared by the models in ``ml/``.

Input frames (column names as in the dbt marts; extra columns are ignored):

* ``events`` (``fct_events``): ``person_id``, ``event_name``, ``event_time`` (naive UTC, never
  null), ``session_id``; :func:`activity_features` also reads ``properties`` (JSON text,
  ``revenue`` on purchases). Every function also takes an :class:`EventLog` instead: the same
  events as integer arrays, which is how the warehouse hands five million of them over
  (``orchestration/learning/tables.py``).
* ``users`` (``dim_users``): ``person_id``, ``first_platform``, ``country``, ``first_utm_source``.
* ``levels`` (the per-person funnel level table, see :func:`funnel_levels`): ``person_id`` (one row
  per person), ``level`` (int, 0..n: how many steps of the funnel the person reached in order
  inside the window; 0 = never did the first step) and one column ``<step>_at`` per step with the
  time the person reached it (NaT beyond ``level``). A ``funnel_conversion`` mart with the same
  windowFunnel semantics can be passed instead once pivoted to this shape.

The funnel's step names are always passed in (``steps``); nothing here knows the demo's funnel.

Everything is computed with whole-array operations over the events (masks, counts per person
with ``np.bincount``, per-person maxima with ``np.maximum.at``), never per person in Python and
never by joining each person's events to each of their funnel steps: at a million persons that
join alone is fifteen million rows. Times are integer microseconds inside; the frames returned
have the same columns, types and order as the definitions below describe.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.arrays import distinct
from ml.errors import InsufficientDataError

DEFAULT_WINDOW = pd.Timedelta(days=7)
FIRST_DAY = pd.Timedelta(days=1)
ERROR_EVENTS = ("error",)
HELP_EVENTS = ("view_help",)
SEGMENT_COLUMNS = ("platform", "country", "channel")
NO_CHANNEL = "none"
REVENUE_EVENT = "purchase"
NAT = np.iinfo(np.int64).min  # NaT as int64 microseconds: a step not reached
NEVER = np.iinfo(np.int64).max  # a bound no event time passes
MICROS_PER_DAY = 86_400_000_000


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def _times(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series).astype("datetime64[us]")


def _micros(series: pd.Series) -> np.ndarray:
    """Times as int64 microseconds, NaT as :data:`NAT`."""
    return _times(series).to_numpy().astype(np.int64)


def _micros_of(value: pd.Timedelta | pd.Timestamp) -> int:
    if isinstance(value, pd.Timedelta):
        return int(value // pd.Timedelta(microseconds=1))
    return int(np.datetime64(pd.Timestamp(value), "us").astype(np.int64))


def _minutes(micros: np.ndarray) -> np.ndarray:
    """Durations in minutes, to the bit as pandas computes ``total_seconds() / 60``."""
    seconds, rest = np.divmod(micros, 1_000_000)
    return (seconds + rest / 1_000_000) / 60.0


def _as_datetimes(micros: np.ndarray) -> np.ndarray:
    return micros.astype("datetime64[us]")


def step_column(step: str) -> str:
    return f"{step}_at"


@dataclass(frozen=True, eq=False)
class EventLog:
    """Events as arrays, one element per event, in any order.

    ``persons`` are the distinct person ids, sorted, and ``person`` each event's position in
    them; ``names`` the distinct event names and ``name`` each event's position in them;
    ``time`` is microseconds since the epoch (naive UTC); ``session`` any integer that is equal
    for two events exactly when they belong to the same person and session (-1: no session;
    None when unknown); ``properties`` the JSON text of each event, or None for events (or a
    log) without them.
    """

    persons: pd.Index
    names: pd.Index
    person: np.ndarray
    name: np.ndarray
    time: np.ndarray
    session: np.ndarray | None = None
    properties: np.ndarray | None = None

    @classmethod
    def from_frame(cls, events: pd.DataFrame) -> EventLog:
        _require(events, ["person_id", "event_name", "event_time"], "events")
        person, persons = pd.factorize(events["person_id"], sort=True)
        name, names = pd.factorize(events["event_name"], sort=True)
        time = _micros(events["event_time"])
        if (person < 0).any() or (name < 0).any() or (time == NAT).any():
            raise ValueError("events have a missing person_id, event_name or event_time")
        session = None
        if "session_id" in events.columns:
            code, uniques = pd.factorize(events["session_id"])
            session = np.where(code >= 0, person.astype(np.int64) * len(uniques) + code, -1)
        properties = None
        if "properties" in events.columns:
            properties = events["properties"].to_numpy(dtype=object)
        return cls(pd.Index(persons), pd.Index(names), person, name, time, session, properties)

    def named(self, names: Sequence[str]) -> np.ndarray:
        """Mask of the events with one of ``names``."""
        codes = self.names.get_indexer(list(names))
        return np.isin(self.name, codes[codes >= 0])

    def codes_of(self, person_ids) -> np.ndarray:
        """Each id's position in :attr:`persons` (-1: no event). No hashing when the ids are the
        log's own persons in order, as when levels and users are read in person order."""
        ids = pd.Index(person_ids)
        if ids.equals(self.persons):
            return np.arange(len(ids))
        return self.persons.get_indexer(ids)

    def sessions(self) -> np.ndarray:
        """:attr:`session`, or ValueError when the events had no ``session_id``."""
        if self.session is None:
            raise ValueError("events lack columns ['session_id']")
        return self.session


def _event_log(events: pd.DataFrame | EventLog) -> EventLog:
    return events if isinstance(events, EventLog) else EventLog.from_frame(events)


def _sessions(session: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct sessions among some events (``session`` >= 0) as (each event's session
    number, -1 for none; each session's owner, e.g. the person or entrant row of its events)."""
    number = np.full(len(session), -1)
    counted = session >= 0
    number[counted], uniques = pd.factorize(session[counted])
    owners = np.empty(len(uniques), dtype=np.int64)
    owners[number[counted]] = owner[counted]
    return number, owners


def _first_at_or_after(
    person: np.ndarray, time: np.ndarray, q_person: np.ndarray, q_time: np.ndarray
) -> np.ndarray:
    """For each query (``q_person``, ``q_time``), the time of that person's earliest event
    (``person``, ``time``) at or after ``q_time``; NAT when there is none."""
    found = np.full(len(q_person), NAT)
    if not len(person) or not len(q_person):
        return found
    by_time = np.argsort(q_time)
    queries = pd.DataFrame(
        {"person": q_person[by_time], "at": _as_datetimes(q_time[by_time]), "query": by_time}
    )
    by_time = np.argsort(time)
    events = pd.DataFrame({"person": person[by_time], "found": _as_datetimes(time[by_time])})
    merged = pd.merge_asof(
        queries, events, left_on="at", right_on="found", by="person", direction="forward"
    )
    found[merged["query"].to_numpy()] = merged["found"].to_numpy().astype(np.int64)
    return found


def funnel_levels(
    events: pd.DataFrame | EventLog, steps: Sequence[str], window: pd.Timedelta = DEFAULT_WINDOW
) -> pd.DataFrame:
    """The deepest funnel step each person reached, with ClickHouse ``windowFunnel`` semantics.

    A chain starts at any occurrence of ``steps[0]``; each next step is the earliest occurrence of
    that event at or after the previous step's time and no later than ``start + window``. A
    person's level is the longest chain over all starts (ties: the earliest start).

    Returns one row per person in ``events`` (sorted): ``person_id``, ``level``, ``<step>_at``
    per step.
    """
    if len(steps) < 2:
        raise ValueError("a funnel needs at least two steps")
    log = _event_log(events)
    codes = log.names.get_indexer(list(steps))
    first = log.name == codes[0]
    chain_person = log.person[first]
    reached = [log.time[first]]
    deadline = reached[0] + _micros_of(window)
    for code in codes[1:]:
        at = log.name == code
        prev = reached[-1]
        live = np.flatnonzero(prev != NAT)
        step_at = np.full(len(chain_person), NAT)
        step_at[live] = _first_at_or_after(
            log.person[at], log.time[at], chain_person[live], prev[live]
        )
        reached.append(np.where(step_at <= deadline, step_at, NAT))
    chain_level = sum((t != NAT).astype(np.int64) for t in reached)
    # the best chain per person: the longest, then the earliest start (two stable sorts: by
    # start, then by person and level, which np.lexsort does four times slower)
    order = np.argsort(reached[0], kind="stable")
    by_person = chain_person.astype(np.int64) * (len(steps) + 1) + len(steps) - chain_level
    order = order[np.argsort(by_person[order], kind="stable")]
    best = order[np.diff(chain_person[order], prepend=-1) != 0]
    level = np.zeros(len(log.persons), dtype=np.int64)
    level[chain_person[best]] = chain_level[best]
    out = {"person_id": log.persons.array, "level": level}
    for step, times in zip(steps, reached, strict=True):
        at = np.full(len(log.persons), NAT)
        at[chain_person[best]] = times[best]
        out[step_column(step)] = _as_datetimes(at)
    return pd.DataFrame(out)


def _segments(users: pd.DataFrame) -> pd.DataFrame:
    _require(users, ["person_id", "first_platform", "country", "first_utm_source"], "users")
    seg = users[["person_id"]].copy()
    seg["platform"] = users["first_platform"].fillna("unknown").astype(str)
    seg["country"] = users["country"].fillna("unknown").astype(str)
    seg["channel"] = users["first_utm_source"].fillna(NO_CHANNEL).astype(str)
    return seg


@dataclass(frozen=True)
class _Entrants:
    """The persons of ``levels`` with level >= 1 whose funnel window closed by ``as_of``, sorted
    by person id: the population of the step and first-day features. ``times[j]`` holds each
    one's time at ``steps[j]`` (NAT when not reached); ``event_row`` is, for each event of the
    log, the entrant it belongs to (-1 for everyone else's)."""

    ids: pd.api.extensions.ExtensionArray | np.ndarray
    code: np.ndarray
    level: np.ndarray
    times: list[np.ndarray]
    event_row: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def per_row(self, rows: np.ndarray, values: np.ndarray, default) -> np.ndarray:
        """``values`` at ``rows``, ``default`` for every other entrant."""
        out = np.full(len(self), default, dtype=np.asarray(values).dtype)
        out[rows] = values
        return out

    def segments(self, log: EventLog, users: pd.DataFrame) -> dict[str, pd.Series]:
        """Platform, country and channel of each entrant (``unknown`` without a users row)."""
        seg = _segments(users)
        row = np.full(len(log.persons), -1)
        users_code = log.codes_of(seg["person_id"])
        row[users_code[users_code >= 0]] = np.flatnonzero(users_code >= 0)
        pos = np.where(self.code >= 0, row[self.code], -1)
        absent = np.flatnonzero(self.code < 0)  # entrants without events: look them up by id
        if len(absent):
            pos[absent] = pd.Index(seg["person_id"]).get_indexer(self.ids.take(absent))
        return {
            col: pd.Series(seg[col].array.take(pos, allow_fill=True)).fillna("unknown")
            for col in SEGMENT_COLUMNS
        }


def _entrants(
    log: EventLog,
    levels: pd.DataFrame,
    steps: Sequence[str],
    window: pd.Timedelta,
    as_of,
) -> _Entrants:
    _require(levels, ["person_id", "level", *map(step_column, steps)], "levels")
    as_of = log.time.max() if as_of is None else _micros_of(as_of)
    start = _micros(levels[step_column(steps[0])])
    level = levels["level"].to_numpy(dtype=np.int64)
    keep = (level >= 1) & (start != NAT) & (start + _micros_of(window) <= as_of)
    ids = levels["person_id"].array
    keep = np.flatnonzero(keep)
    if not levels["person_id"].is_monotonic_increasing:
        keep = keep[ids.take(keep).argsort(kind="stable")]
    code = log.codes_of(levels["person_id"])[keep]
    row = np.full(len(log.persons), -1)
    row[code[code >= 0]] = np.flatnonzero(code >= 0)
    return _Entrants(
        ids=ids.take(keep),
        code=code,
        level=level[keep],
        times=[_micros(levels[step_column(s)])[keep] for s in steps],
        event_row=row[log.person],
    )


def step_behaviour(
    events: pd.DataFrame | EventLog,
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
    Sorted by step, then person.
    """
    log = _event_log(events)
    pop = _entrants(log, levels, steps, window, as_of)
    n = len(pop)
    mine = pop.event_row >= 0
    row, time = pop.event_row[mine], log.time[mine]
    is_error, is_help = log.named(error_events)[mine], log.named(help_events)[mine]
    # each session of an entrant: its entrant and its first event's time. A session has an
    # event up to leaving exactly when its first event is up to leaving.
    s_number, s_row = _sessions(log.sessions()[mine], row)
    s_first = np.full(len(s_row), NEVER)
    np.minimum.at(s_first, s_number[s_number >= 0], time[s_number >= 0])

    def per_attempt(mask: np.ndarray, rows: np.ndarray, at: np.ndarray) -> np.ndarray:
        return np.bincount(rows[mask], minlength=n)[at]

    window_us = _micros_of(window)
    segments = pop.segments(log, users)
    parts = []
    for i in range(1, len(steps)):
        at = np.flatnonzero(pop.level >= i)
        converted = pop.level[at] >= i + 1
        prev_at, step_at = pop.times[i - 1][at], pop.times[i][at]
        end = np.where(converted, step_at, pop.times[0][at] + window_us)
        # the step window, per event of the entrants (everyone else's never matches)
        e_prev = pop.per_row(at, prev_at, NEVER)[row]
        e_end = pop.per_row(at, end, NAT)[row]
        e_converted = pop.per_row(at, converted, False)[row]
        in_window = (time > e_prev) & np.where(e_converted, time < e_end, time <= e_end)
        events_at_step = per_attempt(in_window, row, at)
        last = np.full(n, NAT)
        np.maximum.at(last, row[in_window], time[in_window])
        leave = np.where(converted, step_at, np.where(events_at_step > 0, last[at], prev_at))
        # up to leaving: before the step for converters, up to the last event for droppers
        leave_by_row = pop.per_row(at, leave, NAT)
        e_leave = leave_by_row[row]
        before = np.where(e_converted, time < e_leave, time <= e_leave)
        s_leave, s_converted = leave_by_row[s_row], pop.per_row(at, converted, False)[s_row]
        s_before = np.where(s_converted, s_first < s_leave, s_first <= s_leave)
        parts.append(
            pd.DataFrame(
                {
                    "person_id": pop.ids.take(at),
                    "step": steps[i],
                    "step_index": i,
                    "converted": converted,
                    "minutes_at_step": _minutes(leave - prev_at),
                    "events_at_step": events_at_step,
                    "errors_at_step": per_attempt(in_window & is_error, row, at),
                    "help_views_at_step": per_attempt(in_window & is_help, row, at),
                    "events_before": per_attempt(before, row, at),
                    "sessions_before": per_attempt(s_before, s_row, at),
                    **{col: values.array.take(at) for col, values in segments.items()},
                }
            )
        )
    out = pd.concat(parts, ignore_index=True)
    if out.empty:
        raise InsufficientDataError("no person attempted any funnel step after the first")
    return out


def first_day_features(
    events: pd.DataFrame | EventLog,
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
    ``country``, ``channel``, ``converted`` (0/1). Sorted by person.
    """
    log = _event_log(events)
    sessions = log.sessions()
    pop = _entrants(log, levels, steps, window, as_of)
    if not len(pop):
        raise InsufficientDataError("no person entered the funnel with a closed window")
    n = len(pop)
    start = pop.times[0]
    day_end = start + _micros_of(horizon)
    funnel_steps = sum(
        ((t != NAT) & (t < day_end)).astype(np.int64) for t in pop.times[: len(steps) - 1]
    )
    mine = (pop.event_row >= 0) & ~log.named(steps)
    row, time = pop.event_row[mine], log.time[mine]
    day = (time >= start[row]) & (time < day_end[row])
    row, time, name = row[day], time[day], log.name[mine][day]
    session = sessions[mine][day]

    def per_entrant(mask: np.ndarray | slice = slice(None)) -> np.ndarray:
        return np.bincount(row[mask], minlength=n)

    _, s_row = _sessions(session, row)
    kinds = distinct(row.astype(np.int64) * len(log.names) + name) // len(log.names)
    first, last = np.full(n, NEVER), np.full(n, NAT)
    np.minimum.at(first, row, time)
    np.maximum.at(last, row, time)
    events_ = per_entrant()
    seen = events_ > 0
    segments = pop.segments(log, users)
    return pd.DataFrame(
        {
            "person_id": pop.ids,
            "funnel_steps": funnel_steps,
            "events": events_,
            "sessions": np.bincount(s_row, minlength=n),
            "distinct_events": np.bincount(kinds, minlength=n),
            "errors": per_entrant(log.named(error_events)[mine][day]),
            "help_views": per_entrant(log.named(help_events)[mine][day]),
            "active_minutes": np.where(seen, _minutes(np.where(seen, last - first, 0)), 0.0),
            **{col: values.array for col, values in segments.items()},
            "converted": (pop.level >= len(steps)).astype(np.int64),
        }
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
    events: pd.DataFrame | EventLog,
    levels: pd.DataFrame | None = None,
    steps: Sequence[str] | None = None,
    revenue_event: str = REVENUE_EVENT,
    revenue_key: str = "revenue",
) -> pd.DataFrame:
    """Lifetime activity per person: ``person_id``, ``events``, ``sessions``, ``active_days``
    (distinct UTC dates with an event), ``converted`` (0/1: completed the funnel; 0 when no
    ``levels`` are given), ``revenue`` (sum of ``properties.revenue`` on ``revenue_event``,
    in event time order per person). Sorted by person."""
    if isinstance(events, pd.DataFrame):
        _require(events, ["person_id", "event_name", "event_time", "session_id"], "events")
        if events.empty:
            raise InsufficientDataError("no events")
    log = _event_log(events)
    if not len(log.time):
        raise InsufficientDataError("no events")
    n = len(log.persons)
    _, session_person = _sessions(log.sessions(), log.person)
    day = log.time // MICROS_PER_DAY - log.time.min() // MICROS_PER_DAY
    days = int(day.max()) + 1
    person_days = distinct(log.person.astype(np.int64) * days + day) // days
    revenue = np.zeros(n)
    buys = np.flatnonzero(log.named([revenue_event]))
    if len(buys) and log.properties is not None:
        buys = buys[np.lexsort((log.time[buys], log.person[buys]))]
        money = pd.to_numeric(
            _property(pd.Series(log.properties[buys]), revenue_key), errors="coerce"
        ).fillna(0)
        summed = money.groupby(log.person[buys]).sum()
        revenue[summed.index.to_numpy()] = summed.to_numpy(dtype=float)
    converted = np.zeros(n, dtype=np.int64)
    if levels is not None:
        if steps is None:
            raise ValueError("steps are needed with levels")
        code = log.codes_of(levels["person_id"])
        done = (levels["level"].to_numpy() >= len(steps)) & (code >= 0)
        converted[code[done]] = 1
    return pd.DataFrame(
        {
            "person_id": log.persons.array,
            "events": np.bincount(log.person, minlength=n),
            "sessions": np.bincount(session_person, minlength=n),
            "active_days": np.bincount(person_days, minlength=n),
            "converted": converted,
            "revenue": revenue,
        }
    )
