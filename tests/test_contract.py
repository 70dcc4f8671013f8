"""Normalization to the event contract, and the quarantine of each kind of bad record."""

from datetime import date, datetime

import pandas as pd
import pytest

from orchestration.ingest import contract
from orchestration.ingest.contract import normalize

DAY = date(2026, 9, 3)


def _one(**record):
    base = {
        "event_id": "e1",
        "event_name": "signup",
        "event_time": "2026-09-03T10:00:00Z",
        "user_id": "u1",
        "anonymous_id": "a1",
        "properties": {"plan": "pro"},
    }
    frame = normalize(pd.DataFrame([{**base, **record}]), source="file", fetch_day=DAY)
    assert len(frame) == 1, "a record is never dropped"
    return frame.iloc[0]


def test_valid_record_is_typed_to_utc():
    row = _one(event_time="2026-09-03T12:30:00+02:00")
    assert row["event_time"] == pd.Timestamp("2026-09-03 10:30:00")
    assert row["quarantine_reason"] is None or pd.isna(row["quarantine_reason"])
    assert row["raw_record"] is None or pd.isna(row["raw_record"])
    assert row["properties"] == '{"plan":"pro"}'
    assert row["partition_date"] == DAY
    assert row["source"] == "file"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-09-03 10:00:00", "2026-09-03 10:00:00"),  # naive means UTC
        ("2026-09-02T23:30:00-01:00", "2026-09-03 00:30:00"),
        (1788429600, "2026-09-03 10:00:00"),  # epoch seconds
        (1788429600000, "2026-09-03 10:00:00"),  # epoch milliseconds
        ("2026-09-03T10:00:00.123456Z", "2026-09-03 10:00:00.123456"),
    ],
)
def test_time_formats(value, expected):
    assert _one(event_time=value)["event_time"] == pd.Timestamp(expected)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"event_name": None}, contract.MISSING_EVENT_NAME),
        ({"event_name": "   "}, contract.MISSING_EVENT_NAME),
        ({"event_time": "2026-09-03T25:61:00"}, contract.UNPARSEABLE_TIME),
        ({"event_time": "yesterday-ish"}, contract.UNPARSEABLE_TIME),
        ({"event_time": None}, contract.UNPARSEABLE_TIME),
        ({"user_id": None, "anonymous_id": ""}, contract.MISSING_IDS),
        ({"properties": "[1, 2]"}, contract.BAD_PROPERTIES),
        ({"properties": "{not json"}, contract.BAD_PROPERTIES),
    ],
)
def test_bad_records_are_quarantined_with_reason(record, reason):
    row = _one(**record)
    assert row["quarantine_reason"] == reason
    assert row["partition_date"] == DAY, "kept in the day it was fetched for"
    assert row["raw_record"], "the original record is kept"


def test_preset_reason_and_raw_text_survive():
    frame = normalize(
        pd.DataFrame(
            [{"quarantine_reason": "malformed JSON line (x.jsonl:3)", "raw_record": "{oops"}]
        ),
        source="file",
        fetch_day=DAY,
    )
    assert frame.iloc[0]["quarantine_reason"] == "malformed JSON line (x.jsonl:3)"
    assert frame.iloc[0]["raw_record"] == "{oops"


def test_missing_event_id_is_derived_deterministically():
    a = _one(event_id=None)["event_id"]
    b = _one(event_id=None)["event_id"]
    c = _one(event_id=None, event_name="activate")["event_id"]
    assert a == b and a.startswith("derived-")
    assert a != c


def test_numeric_ids_from_csv_are_not_floats():
    assert _one(user_id=42.0)["user_id"] == "42"


def test_quarantine_counts():
    frame = normalize(
        pd.DataFrame(
            [
                {"event_name": None, "event_time": "2026-09-03", "user_id": "u"},
                {"event_name": "x", "event_time": "nope", "user_id": "u"},
                {"event_name": None, "event_time": "2026-09-03", "user_id": "u"},
                {"event_name": "ok", "event_time": "2026-09-03", "user_id": "u"},
            ]
        ),
        source="file",
        fetch_day=DAY,
        ingested_at=datetime(2026, 9, 4),
    )
    assert contract.quarantine_counts(frame) == {
        contract.MISSING_EVENT_NAME: 2,
        contract.UNPARSEABLE_TIME: 1,
    }
