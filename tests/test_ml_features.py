"""The feature functions of ``ml/features.py`` against their definitions read literally, one
person at a time in plain Python, on random event logs: ties in time, repeated steps, steps out
of order, several sessions, persons without events in ``levels``, persons missing from
``users``, levels handed over in any row order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ml.features import (
    EventLog,
    activity_features,
    first_day_features,
    funnel_levels,
    step_behaviour,
)

STEPS = ("signup", "verify", "create", "activate")
NAMES = (*STEPS, "error", "view_help", "page_view", "purchase")
WINDOW = pd.Timedelta(hours=30)
DAY = pd.Timedelta(hours=10)  # the "first day" horizon, short so that it cuts
T0 = pd.Timestamp("2026-03-01")


def random_log(seed: int, persons: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(persons):
        for _ in range(int(rng.integers(1, 25))):
            name = str(rng.choice(NAMES, p=[0.2, 0.12, 0.1, 0.08, 0.12, 0.08, 0.22, 0.08]))
            rows.append(
                {
                    "person_id": f"p{p:03d}",
                    # whole hours over four days: many ties, windows that cut
                    "event_time": T0 + pd.Timedelta(hours=int(rng.integers(0, 96))),
                    "event_name": name,
                    "session_id": None if rng.random() < 0.05 else f"s{int(rng.integers(4))}",
                    "properties": json.dumps({"revenue": float(rng.integers(1, 9)) / 4})
                    if name == "purchase"
                    else "{}",
                }
            )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def oracle_levels(events: pd.DataFrame) -> dict:
    """Per person: (level, [time at each step or None])."""
    out = {}
    for person, ev in events.groupby("person_id"):
        best = (0, [None] * len(STEPS))
        for start in sorted(ev.loc[ev["event_name"] == STEPS[0], "event_time"]):
            times, at = [start], start
            for step in STEPS[1:]:
                later = ev.loc[(ev["event_name"] == step) & (ev["event_time"] >= at), "event_time"]
                if later.empty or later.min() > start + WINDOW:
                    break
                at = later.min()
                times.append(at)
            if len(times) > best[0]:  # ties keep the earlier start
                best = (len(times), times + [None] * (len(STEPS) - len(times)))
        out[person] = best
    return out


def _at(step: str) -> str:
    return f"{step}_at"


def _levels_frame(levels: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"person_id": p, "level": lv, **dict(zip(map(_at, STEPS), times, strict=True))}
            for p, (lv, times) in levels.items()
        ]
    )


@pytest.mark.parametrize("seed", range(4))
def test_funnel_levels_follow_the_definition(seed):
    events = random_log(seed)
    got = funnel_levels(events, STEPS, WINDOW).set_index("person_id")
    want = oracle_levels(events)
    assert sorted(got.index) == list(got.index) == sorted(want)
    for person, (level, times) in want.items():
        assert got.loc[person, "level"] == level, person
        for step, at in zip(STEPS, times, strict=True):
            value = got.loc[person, _at(step)]
            assert (pd.isna(value) and at is None) or value == at, (person, step)


def _users(events: pd.DataFrame) -> pd.DataFrame:
    persons = sorted(events["person_id"].unique())[::-1][5:]  # the first five have no row
    return pd.DataFrame(
        {
            "person_id": persons,
            "first_platform": ["ios" if i % 3 else None for i in range(len(persons))],
            "country": ["US" if i % 2 else "DE" for i in range(len(persons))],
            "first_utm_source": [None if i % 4 else "google" for i in range(len(persons))],
        }
    )


def _segment(users: pd.DataFrame, person: str) -> dict[str, str]:
    """Platform, country, channel: ``unknown`` without a users row, channel ``none`` without a
    first utm_source."""
    row = users[users["person_id"] == person]
    if row.empty:
        return {"platform": "unknown", "country": "unknown", "channel": "unknown"}
    row = row.iloc[0]

    def given(value, otherwise: str) -> str:
        return otherwise if pd.isna(value) else value

    return {
        "platform": given(row["first_platform"], "unknown"),
        "country": given(row["country"], "unknown"),
        "channel": given(row["first_utm_source"], "none"),
    }


def _decided(levels: dict, as_of) -> dict:
    """The persons who entered the funnel and whose window closed by ``as_of``."""
    return {p: (lv, t) for p, (lv, t) in levels.items() if lv >= 1 and t[0] + WINDOW <= as_of}


def _minutes(delta: pd.Timedelta) -> float:
    return delta.total_seconds() / 60


@pytest.mark.parametrize("seed", range(4))
def test_step_behaviour_follows_the_definition(seed):
    events = random_log(seed)
    users = _users(events)
    want_levels = oracle_levels(events)
    # levels in any order, and one person with no event at all
    levels = pd.concat(
        [
            _levels_frame(want_levels).sample(frac=1.0, random_state=seed),
            pd.DataFrame(
                {"person_id": ["zz-no-events"], "level": [2]}
                | {_at(STEPS[0]): [T0], _at(STEPS[1]): [T0 + pd.Timedelta(hours=1)]}
                | {_at(s): [pd.NaT] for s in STEPS[2:]}
            ),
        ],
        ignore_index=True,
    )
    as_of = events["event_time"].max()
    got = step_behaviour(events, levels, users, STEPS, WINDOW)
    rows = []
    decided = _decided(want_levels, as_of) | {"zz-no-events": (2, [T0, T0 + pd.Timedelta(hours=1)])}
    for i in range(1, len(STEPS)):
        for person in sorted(decided):
            level, times = decided[person]
            if level < i:
                continue
            ev = events[events["person_id"] == person]
            converted = level >= i + 1
            prev = times[i - 1]
            end = times[i] if converted else times[0] + WINDOW
            in_window = ev[
                (ev["event_time"] > prev)
                & ((ev["event_time"] < end) if converted else (ev["event_time"] <= end))
            ]
            if converted:
                leave = times[i]
                before = ev[ev["event_time"] < leave]
            else:
                leave = in_window["event_time"].max() if len(in_window) else prev
                before = ev[ev["event_time"] <= leave]
            rows.append(
                {
                    "person_id": person,
                    "step": STEPS[i],
                    "step_index": i,
                    "converted": converted,
                    "minutes_at_step": _minutes(leave - prev),
                    "events_at_step": len(in_window),
                    "errors_at_step": int((in_window["event_name"] == "error").sum()),
                    "help_views_at_step": int((in_window["event_name"] == "view_help").sum()),
                    "events_before": len(before),
                    "sessions_before": before["session_id"].nunique(),
                    **_segment(users, person),
                }
            )
    want = pd.DataFrame(rows)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


@pytest.mark.parametrize("seed", range(4))
def test_first_day_features_follow_the_definition(seed):
    events = random_log(seed)
    users = _users(events)
    want_levels = oracle_levels(events)
    levels = _levels_frame(want_levels)
    got = first_day_features(events, levels, users, STEPS, WINDOW, horizon=DAY)
    rows = []
    for person, (level, times) in sorted(_decided(want_levels, events["event_time"].max()).items()):
        start = times[0]
        ev = events[(events["person_id"] == person) & ~events["event_name"].isin(STEPS)]
        day = ev[(ev["event_time"] >= start) & (ev["event_time"] < start + DAY)]
        rows.append(
            {
                "person_id": person,
                "funnel_steps": sum(t is not None and t < start + DAY for t in times[:-1]),
                "events": len(day),
                "sessions": day["session_id"].nunique(),
                "distinct_events": day["event_name"].nunique(),
                "errors": int((day["event_name"] == "error").sum()),
                "help_views": int((day["event_name"] == "view_help").sum()),
                "active_minutes": _minutes(day["event_time"].max() - day["event_time"].min())
                if len(day)
                else 0.0,
                **_segment(users, person),
                "converted": int(level == len(STEPS)),
            }
        )
    pd.testing.assert_frame_equal(got, pd.DataFrame(rows), check_dtype=False)


@pytest.mark.parametrize("seed", range(4))
def test_activity_features_follow_the_definition(seed):
    events = random_log(seed)
    levels = _levels_frame(oracle_levels(events))
    got = activity_features(events, levels, STEPS)
    rows = []
    for person, ev in sorted(events.groupby("person_id"), key=lambda item: item[0]):
        buys = ev[ev["event_name"] == "purchase"].sort_values("event_time")
        rows.append(
            {
                "person_id": person,
                "events": len(ev),
                "sessions": ev["session_id"].nunique(),
                "active_days": ev["event_time"].dt.date.nunique(),
                "converted": int(oracle_levels(ev)[person][0] == len(STEPS)),
                "revenue": float(sum(json.loads(p)["revenue"] for p in buys["properties"])),
            }
        )
    pd.testing.assert_frame_equal(got, pd.DataFrame(rows), check_dtype=False)


def test_an_event_log_gives_the_frames_answers():
    """The frame and its EventLog are the same events: every feature agrees."""
    events = random_log(7)
    users = _users(events)
    log = EventLog.from_frame(events)
    levels = funnel_levels(log, STEPS, WINDOW)
    pd.testing.assert_frame_equal(levels, funnel_levels(events, STEPS, WINDOW))
    pd.testing.assert_frame_equal(
        step_behaviour(log, levels, users, STEPS, WINDOW),
        step_behaviour(events, levels, users, STEPS, WINDOW),
    )
    pd.testing.assert_frame_equal(
        activity_features(log, levels, STEPS), activity_features(events, levels, STEPS)
    )
