"""Journeys (top_paths, path_transitions, path_drop_offs) on a hand-built log with the answers
worked out below, dbt_product_analytics' flows after/before an event, and 100,000 unique paths.

The events go through the production ingest path and the production dbt models
(tests/metrics_dbt.py), with the journeys declared in a configuration as in config/analytics.yml.
"""

from __future__ import annotations

import csv
import time
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from orchestration.ingest.assets import land_day
from orchestration.ingest.contract import normalize
from orchestration.resources import WarehouseResource
from tests.conftest import SHARED
from tests.metrics_dbt import build_or_fail, land_events, query

JOURNEY_MARTS = "+dim_users +fct_sessions +top_paths +path_transitions +path_drop_offs"
T0 = datetime(2026, 3, 2, 9, 0)
# person -> events in time order, one minute apart
LOG = {
    "p1": [
        "page_view",
        "signup",
        "page_view",
        "page_view",
        "view_dashboard",
        "create_report",
        "error",
        "purchase",
    ],
    "p2": ["signup", "view_dashboard", "view_dashboard", "purchase"],
    "p3": ["page_view", "signup"],
    "p4": ["signup", "error", "signup", "create_report"],
}
CONFIG = """
funnels:
  - {name: f, steps: [signup, purchase], conversion_window: none}
behaviour:
  journeys:
    - name: j_after
      after: signup
      steps: 3
      exclude: ['^error$']
      aliases: {feature: '^(view_dashboard|create_report)$'}
    - name: j_before
      before: purchase
      steps: 2
      collapse_repeats: false
    - name: j_alias_anchor
      before: feature
      steps: 2
      exclude: ['^error$']
      aliases: {feature: '^(view_dashboard|create_report)$'}
    - {name: dmt_after, after: 'dmt:placed', steps: 5, collapse_repeats: false, occurrence: every}
    - {name: dmt_before, before: 'dmt:placed', steps: 5, collapse_repeats: false, occurrence: every}
"""


def _records() -> list[dict]:
    records = []
    for person, names in LOG.items():
        for i, name in enumerate(names):
            records.append(
                {
                    "event_id": f"{person}-{i}",
                    "event_name": name,
                    "event_time": (T0 + timedelta(minutes=i)).isoformat(),
                    "user_id": person,
                }
            )
    peers = SHARED / "peers" / "dbt_product_analytics" / "raw_orders_simple.csv"
    if peers.exists():
        with open(peers, newline="") as handle:
            for row in csv.DictReader(handle):
                records.append(
                    {
                        "event_id": f"dmt-{row['id']}",
                        "event_name": f"dmt:{row['status']}",
                        "event_time": f"{row['order_date']}T00:00:00",
                        "user_id": f"dmt:{row['customer_id']}",
                    }
                )
    return records


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    database = tmp_path_factory.mktemp("journeys") / "journeys.duckdb"
    land_events(database, _records())
    build_or_fail(database, CONFIG, JOURNEY_MARTS)
    return database


def _paths(warehouse, journey) -> dict[str, tuple[int, int, float]]:
    frame = query(warehouse, f"select * from top_paths where journey_name = '{journey}'")
    return {r.path: (r.persons, r.paths, round(r.share, 4)) for r in frame.itertuples()}


def test_after_signup_excludes_aliases_collapses_and_takes_the_first_signup(warehouse):
    # p1: page_view, signup, page_view x2 -> one, feature x2 -> one, purchase (3 steps)
    # p2: signup, feature x2 -> one, purchase; p3: signup, then nothing
    # p4: signup, (error excluded), signup -> collapsed into the first, feature
    assert _paths(warehouse, "j_after") == {
        "signup > page_view > feature > purchase": (1, 1, 0.25),
        "signup > feature > purchase": (1, 1, 0.25),
        "signup": (1, 1, 0.25),
        "signup > feature": (1, 1, 0.25),
    }
    lengths = query(
        warehouse, "select path, path_length from top_paths where journey_name = 'j_after'"
    )
    assert dict(zip(lengths.path, lengths.path_length, strict=True))["signup > feature"] == 1


def test_an_anchor_that_only_an_alias_names_finds_its_persons(warehouse):
    # No raw event is called 'feature': the persons with an anchor (whose events alone are
    # positioned) must be found by the aliased name, after the exclusions.
    # p1: page_view, signup, page_view x2 -> one, feature (first), ...: the 2 events before it
    # p2: signup, feature; p4: signup, (error excluded), signup -> one, feature; p3: no feature
    assert _paths(warehouse, "j_alias_anchor") == {
        "signup > page_view > feature": (1, 1, 0.3333),
        "signup > feature": (2, 2, 0.6667),
    }


def test_after_signup_transitions_end_where_a_person_stops(warehouse):
    frame = query(
        warehouse,
        "select step_number, event_name, next_event, persons from path_transitions"
        " where journey_name = 'j_after'",
    )
    got = {(r.step_number, r.event_name, r.next_event): r.persons for r in frame.itertuples()}
    assert got == {
        (0, "signup", "page_view"): 1,  # p1
        (0, "signup", "feature"): 2,  # p2, p4
        (0, "signup", "(end)"): 1,  # p3
        (1, "page_view", "feature"): 1,  # p1
        (1, "feature", "purchase"): 1,  # p2
        (1, "feature", "(end)"): 1,  # p4
        (2, "feature", "purchase"): 1,  # p1 (its purchase is step 3 = N: no '(end)')
        (2, "purchase", "(end)"): 1,  # p2
    }


def test_before_purchase_keeps_repeats_when_asked(warehouse):
    assert _paths(warehouse, "j_before") == {
        "create_report > error > purchase": (1, 1, 0.5),
        "view_dashboard > view_dashboard > purchase": (1, 1, 0.5),
    }
    frame = query(
        warehouse,
        "select step_number, event_name, next_event, persons from path_transitions"
        " where journey_name = 'j_before' order by step_number, event_name",
    )
    assert list(frame.itertuples(index=False, name=None)) == [
        (-2, "create_report", "error", 1),
        (-2, "view_dashboard", "view_dashboard", 1),
        (-1, "error", "purchase", 1),
        (-1, "view_dashboard", "purchase", 1),
    ]


def test_drop_offs_name_the_last_event_of_persons_who_stopped_at_each_step(warehouse):
    # Funnel signup -> purchase: p1, p2 complete; p3 stops after signup (last event signup), p4 too
    # (last event create_report).
    frame = query(warehouse, "select * from path_drop_offs where funnel_name = 'f'")
    got = {(r.step_index, r.last_event): (r.persons, r.share) for r in frame.itertuples()}
    assert got == {(1, "signup"): (1, 0.5), (1, "create_report"): (1, 0.5)}


def test_first_and_last_events_take_the_time_then_the_event_id(tmp_path):
    # path_drop_offs names each person's last event, dim_users and fct_sessions the first one's
    # platform (edge_events in macros/events.sql).
    # q1: signup, then error (q1-1) and view_help (q1-2) at the same last instant: view_help.
    # q2: signup, error (q2-9), then view_help (q2-1) a minute later: the later event wins,
    # though its event_id is the smaller.
    at = {0: T0.isoformat(), 1: (T0 + timedelta(minutes=1)).isoformat()}
    at[2] = (T0 + timedelta(minutes=2)).isoformat()
    records = [
        {"event_id": event_id, "event_name": name, "event_time": at[minute], "user_id": person}
        for person, event_id, name, minute in [
            ("q1", "q1-0", "signup", 0),
            ("q1", "q1-1", "error", 1),
            ("q1", "q1-2", "view_help", 1),
            ("q2", "q2-0", "signup", 0),
            ("q2", "q2-9", "error", 1),
            ("q2", "q2-1", "view_help", 2),
        ]
    ]
    # q3 (no signup, so in no funnel): two first events at the same instant, the smaller event_id
    # on android.
    records += [
        {
            "event_id": "q3-b",
            "event_name": "page_view",
            "event_time": at[0],
            "user_id": "q3",
            "platform": "ios",
        },
        {
            "event_id": "q3-a",
            "event_name": "page_view",
            "event_time": at[0],
            "user_id": "q3",
            "platform": "android",
        },
    ]
    database = tmp_path / "ties.duckdb"
    land_events(database, records)
    build_or_fail(database, CONFIG, "+dim_users +fct_sessions +path_drop_offs")
    frame = query(database, "select * from path_drop_offs where funnel_name = 'f'")
    got = {(r.step_index, r.last_event): (r.persons, r.share) for r in frame.itertuples()}
    assert got == {(1, "view_help"): (2, 1.0)}
    first = query(
        database,
        "select users.first_platform, sessions.platform from dim_users as users"
        " inner join fct_sessions as sessions on users.person_id = sessions.person_id"
        " where users.person_id = 'q3'",
    )
    assert first.values.tolist() == [["android", "android"]]


def _peer_rows(name: str) -> list[dict]:
    path = SHARED / "peers" / "dbt_product_analytics" / name
    if not path.exists():
        pytest.skip(f"peer cases not found at {path}")
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("journey", "expected_file", "columns"),
    [
        ("dmt_after", "dmt_expected__flows_simple.csv", [f"event_{i}" for i in range(6)]),
        (
            "dmt_before",
            "dmt_expected__flows_simple_before.csv",
            [f"event_{i}" for i in range(5, -1, -1)],
        ),
    ],
)
def test_dbt_product_analytics_flows(warehouse, journey, expected_file, columns):
    """Their flows: every occurrence of the event, repeats kept, the event plus 5 after (before)
    it; n_events counts paths. Our option: occurrence every, collapse_repeats false, steps 5."""
    expected = {
        " > ".join(row[c] for c in columns if row[c]): int(row["n_events"])
        for row in _peer_rows(expected_file)
    }
    got = {
        path.replace("dmt:", ""): paths
        for path, (_, paths, _) in _paths(warehouse, journey).items()
    }
    assert got == expected


def test_one_hundred_thousand_unique_paths(tmp_path):
    """100,000 persons, each with a different path of 6 events (600,000 events): the path models
    are set-based, so the whole dbt build (core marts included) takes seconds."""
    n, vocab = 100_000, np.array([f"e{i}" for i in range(12)], dtype=object)
    person = np.arange(n)
    digits = [vocab[(person // 12**k) % 12] for k in range(5)]  # base-12 digits: unique paths
    names = np.column_stack([np.full(n, "start", dtype=object), *digits]).reshape(-1)
    offsets = pd.to_timedelta(np.repeat(person % 86400, 6), "s") + pd.to_timedelta(
        np.tile(np.arange(6), n), "ms"
    )
    frame = pd.DataFrame(
        {
            "event_id": [f"p{i}-{k}" for i in range(n) for k in range(6)],
            "event_name": names,
            "event_time": (pd.Timestamp("2026-01-01") + offsets).astype(str),
            "user_id": np.repeat([f"u{i}" for i in range(n)], 6),
        }
    )
    database = tmp_path / "paths.duckdb"
    resource = WarehouseResource(database=str(database))
    for day, rows in normalize(frame, source="file", fetch_day=None).groupby("partition_date"):
        land_day(resource, day, rows)
    config = "behaviour:\n  journeys:\n    - {name: perf, after: start, collapse_repeats: false}\n"
    started = time.monotonic()
    build_or_fail(database, config, "+dim_users +fct_sessions +top_paths +path_transitions")
    elapsed = time.monotonic() - started
    paths, total, widest = query(
        database, "select count(*), sum(paths), max(paths) from top_paths"
    ).iloc[0]
    assert (paths, total, widest) == (n, n, 1)
    assert elapsed < 60, f"the build took {elapsed:.1f} s"
