"""The real graph end to end: raw extract -> gate -> dbt models, on a hand-built file whose marts
are worked out by hand below, and on a small demo data set."""

import json
from datetime import date

import dagster as dg
import pytest

from orchestration.resources import EventSourceResource
from tests.pipeline import CORE, check_evaluations, materialize_days, materialized_keys, query

pytestmark = pytest.mark.e2e


def _event(event_id, name, time, user=None, anon=None, **props):
    return {"event_id": event_id, "event_name": name, "event_time": time, "user_id": user,
            "anonymous_id": anon, "platform": "web", "country": "DE", "properties": props}


# Hand-built log. Expected outcomes are written next to each group.
EVENTS = [
    # a1 browses anonymously (first touch: google), signs up as u1, browses again anonymously.
    _event("e01", "page_view", "2026-09-01T09:00:00Z", anon="a1", utm_source="google"),
    _event("e02", "signup", "2026-09-01T09:10:00Z", user="u1", anon="a1", utm_source="newsletter"),
    _event("e02", "signup", "2026-09-01T09:10:00Z", user="u1", anon="a1", utm_source="newsletter"),
    _event("e03", "page_view", "2026-09-01T09:20:00Z", anon="a1"),
    # a2 is seen with u2 first, then with u3: a2 belongs to u2; u2 and u3 stay two persons.
    _event("e04", "signup", "2026-09-01T10:00:00Z", user="u2", anon="a2"),
    _event("e05", "signup", "2026-09-01T11:00:00Z", user="u3", anon="a2"),
    _event("e06", "page_view", "2026-09-01T12:00:00Z", anon="a2"),
    _event("e07", "page_view", "2026-09-01T13:00:00Z", user="u3"),
    # u4: a gap of exactly 30 minutes stays in the session; 30 minutes and 1 second starts one;
    # a session runs across midnight UTC (and across two day partitions).
    _event("e08", "page_view", "2026-09-02T08:00:00Z", user="u4"),
    _event("e09", "page_view", "2026-09-02T08:30:00Z", user="u4"),
    _event("e10", "page_view", "2026-09-02T09:00:01Z", user="u4"),
    _event("e11", "page_view", "2026-09-02T23:50:00Z", user="u4"),
    _event("e12", "page_view", "2026-09-03T00:10:00Z", user="u4"),
    # a5 never identifies.
    _event("e13", "page_view", "2026-09-03T07:00:00Z", anon="a5"),
    # Contract breakers: kept in quarantine with a reason.
    _event("e14", None, "2026-09-03T07:00:00Z", anon="a5"),
    _event("e15", "page_view", "2026-09-03T07:00:00Z"),
]
MALFORMED = "{this is not json"
# A busy, valid person on each day keeps the quarantined share under the gate's 5%.
FILLER = [
    _event(
        f"f{day}-{minute:02d}", "heartbeat", f"2026-09-0{day}T16:{minute:02d}:00Z", user="filler"
    )
    for day in (1, 2, 3)
    for minute in range(40)
]


@pytest.fixture
def events_file(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([*(json.dumps(e) for e in EVENTS + FILLER), MALFORMED]) + "\n")
    return path


def test_file_source_gives_the_expected_marts(duckdb_path, events_file):
    source = EventSourceResource(kind="file", path=str(events_file))
    result = materialize_days(date(2026, 9, 1), date(2026, 9, 3), source, selection=CORE)
    assert result.success
    assert {"raw_events", "fct_events", "fct_sessions", "dim_users", "quarantined_events"} <= (
        materialized_keys(result)
    )
    checks = check_evaluations(result)
    assert all(c.passed for c in checks.values()), [n for n, c in checks.items() if not c.passed]

    persons = dict(query(
        duckdb_path, "select event_id, person_id from fct_events where person_id <> 'filler'"))
    assert persons == {
        "e01": "u1", "e02": "u1", "e03": "u1",
        "e04": "u2", "e05": "u3", "e06": "u2", "e07": "u3",
        "e08": "u4", "e09": "u4", "e10": "u4", "e11": "u4", "e12": "u4",
        "e13": "a5",
    }
    sessions = query(
        duckdb_path,
        "select started_at::varchar, ended_at::varchar, event_count from fct_sessions "
        "where person_id = 'u4' order by started_at",
    )
    assert sessions == [
        ("2026-09-02 08:00:00", "2026-09-02 08:30:00", 2),
        ("2026-09-02 09:00:01", "2026-09-02 09:00:01", 1),
        ("2026-09-02 23:50:00", "2026-09-03 00:10:00", 2),
    ]
    users = {r[0]: r[1:] for r in query(
        duckdb_path,
        "select person_id, is_identified, first_utm_source, first_seen_at::varchar from dim_users "
        "where person_id <> 'filler'",
    )}
    assert users == {
        "u1": (True, "google", "2026-09-01 09:00:00"),
        "u2": (True, None, "2026-09-01 10:00:00"),
        "u3": (True, None, "2026-09-01 11:00:00"),
        "u4": (True, None, "2026-09-02 08:00:00"),
        "a5": (False, None, "2026-09-03 07:00:00"),
    }
    quarantined = query(
        duckdb_path, "select reason, day::varchar from quarantined_events order by 1"
    )
    assert [r[0].split(" (")[0] for r in quarantined] == [
        "malformed JSON line", "missing event_name", "missing user_id and anonymous_id"]
    assert {r[1] for r in quarantined} == {"2026-09-01", "2026-09-03"}

    # Nothing is lost: every record of the file is either an event (once) or quarantined.
    assert query(duckdb_path, "select count(*) from raw.events")[0][0] == len(EVENTS + FILLER) + 1
    assert query(duckdb_path, "select count(*) from fct_events")[0][0] == len(EVENTS + FILLER) - 3


def test_rerunning_a_partition_leaves_counts_unchanged(duckdb_path, events_file):
    source = EventSourceResource(kind="file", path=str(events_file))
    assert materialize_days(date(2026, 9, 1), date(2026, 9, 3), source, selection=CORE).success
    counts_sql = ("select (select count(*) from raw.events), (select count(*) from fct_events), "
                  "(select count(*) from fct_sessions), (select count(*) from quarantined_events)")
    before = query(duckdb_path, counts_sql)
    again = materialize_days(date(2026, 9, 2), date(2026, 9, 2), source, selection=CORE)
    assert again.success
    assert query(duckdb_path, counts_sql) == before


def test_failed_gate_stops_the_models(duckdb_path, tmp_path):
    # A day where most records break the contract: the gate fails and no model is built.
    bad = [_event(f"b{i}", None, "2026-09-05T10:00:00Z", anon="a") for i in range(10)]
    good = [_event("g1", "page_view", "2026-09-05T10:00:00Z", anon="a")]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in bad + good) + "\n")
    result = materialize_days(
        date(2026, 9, 5), date(2026, 9, 5), EventSourceResource(kind="file", path=str(path))
    )
    assert not result.success
    gate = check_evaluations(result)["raw_events_expectations"]
    assert gate.passed is False
    assert "quarantine_reason" in gate.description and "10 rows" in gate.description
    assert materialized_keys(result) == {"raw_events"}, "nothing downstream of a failed gate"
    assert query(duckdb_path, "select count(*) from raw.events")[0][0] == 11, "raw data is kept"


def test_demo_end_to_end(duckdb_path):
    # Enough persons and days for the learning models' blocking checks (which rightly refuse to
    # pass a model trained on too little data).
    source = EventSourceResource(kind="demo", demo_persons=1500, demo_days=21)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_days(date(2026, 9, 1), date(2026, 9, 21), source, instance=instance)
    assert result.success
    checks = check_evaluations(result)
    assert checks["raw_events_expectations"].passed
    assert len(checks) > 20 and all(c.passed for c in checks.values())

    raw_valid, raw_bad = query(
        duckdb_path,
        "select count(distinct event_id) filter (where quarantine_reason is null), "
        "count(*) filter (where quarantine_reason is not null) from raw.events",
    )[0]
    assert query(duckdb_path, "select count(*) from fct_events")[0][0] == raw_valid
    assert query(duckdb_path, "select count(*) from quarantined_events")[0][0] == raw_bad == 21 * 3

    record = instance.get_latest_materialization_event(dg.AssetKey("fct_events"))
    metadata = record.asset_materialization.metadata
    assert metadata["dagster/row_count"].value == raw_valid
    assert "preview" in metadata
    raw_meta = instance.get_latest_materialization_event(dg.AssetKey("raw_events"))
    assert raw_meta.asset_materialization.metadata["quarantined_events"].value == raw_bad
