"""``active_users`` against a brute-force count in pandas, on a random log of 120 days.

The mart merges each person's activity into islands and takes a running sum (see its SQL); here
each day's dau, wau and mau are counted directly from the definition (docs/metrics.md): distinct
persons with an event on the day, in the 7 days ending on it, in the 30 days ending on it. The log
has gaps of every length around 7 and 30 days, persons active once, and days with nobody active.
"""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tests.metrics_dbt import build_or_fail, land_events, query

CONFIG = """
funnels:
  - name: onboarding
    steps: [signup, page_view]
    conversion_window: 7d
retention:
  cohort_event: signup
  return_event: any
  granularities: [day]
  max_periods: {day: 3}
"""
START = datetime(2026, 1, 1)
DAYS = 120


def _log(seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for person in range(60):
        # A first day, then gaps drawn to fall on both sides of 7 and 30 days.
        day = int(rng.integers(0, DAYS))
        while day < DAYS:
            if day not in (40, 41, 42):  # nobody is active on these days
                at = START + timedelta(days=day, hours=int(rng.integers(24)))
                rows.append((f"p{person}", at))
            day += int(rng.choice([1, 2, 6, 7, 8, 29, 30, 31, 45, 200]))
    rows.append(("first", START))
    rows.append(("last", START + timedelta(days=DAYS - 1, hours=23)))
    return pd.DataFrame(rows, columns=["user_id", "event_time"])


def _brute_force(log: pd.DataFrame) -> pd.DataFrame:
    dates = log["event_time"].dt.normalize()
    days = pd.date_range(dates.min(), dates.max(), freq="D")
    rows = []
    for day in days:
        def active(width: int, day=day) -> int:
            inside = (dates > day - pd.Timedelta(days=width)) & (dates <= day)
            return log.loc[inside, "user_id"].nunique()

        rows.append((day.date().isoformat(), active(1), active(7), active(30)))
    return pd.DataFrame(rows, columns=["d", "dau", "wau", "mau"])


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    database = tmp_path_factory.mktemp("active_users") / "warehouse.duckdb"
    log = _log()
    land_events(
        database,
        [
            # Each person's first event is a signup (the configured funnel needs one to exist).
            {"event_id": f"e{i}", "user_id": user, "event_name": "page_view" if seen else "signup",
             "event_time": time.isoformat() + "Z", "platform": "web"}
            for i, (user, time, seen) in enumerate(
                zip(log["user_id"], log["event_time"], log["user_id"].duplicated(), strict=True)
            )
        ],
    )
    build_or_fail(database, CONFIG, select="+active_users +dim_users +fct_sessions")
    return database, log


def test_active_users_equal_a_brute_force_count(warehouse):
    database, log = warehouse
    mart = query(
        database,
        "select cast(activity_date as varchar) as d, dau, wau, mau from active_users order by 1",
    )
    expected = _brute_force(log)
    assert len(mart) == DAYS
    pd.testing.assert_frame_equal(mart, expected, check_dtype=False)
    # The log does what it is for: windows that matter, and empty days.
    assert (expected["wau"] != expected["mau"]).any() and (expected["dau"] == 0).any()
