"""Vendor mappers on the peers' example records through normalize; the public settings."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from orchestration.ingest.contract import normalize
from orchestration.ingest.files import FileSource
from orchestration.ingest.sources import SourceConfigError
from orchestration.ingest.vendors import (
    FILE_FORMATS,
    SECRET_FIELDS,
    VENDOR_SETTINGS,
    build_vendor_source,
)

CONNECTORS = Path(__file__).resolve().parents[2] / "shared" / "peers" / "connectors"


@pytest.fixture
def connectors() -> Path:
    if not CONNECTORS.is_dir():
        pytest.skip(f"peer connector examples not found at {CONNECTORS}")
    return CONNECTORS


def land(fmt: str, record: dict) -> pd.Series:
    landed = normalize(pd.DataFrame([FILE_FORMATS[fmt](record)]), source=fmt, fetch_day=None)
    assert len(landed) == 1
    row = landed.iloc[0]
    assert pd.isna(row["quarantine_reason"]), row["quarantine_reason"]
    return row


def utc(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def test_mixpanel_example(connectors):
    record = json.loads((connectors / "mixpanel_export_line.jsonl").read_text().splitlines()[0])
    row = land("mixpanel", record)
    assert row["event_id"] == "hpuDqcvpltpCjBsebtxwadtEBDnFAdycabFb"
    assert row["event_name"] == "Signed up"
    assert utc(row["event_time"]) == pd.Timestamp(1602611311, unit="s", tz="UTC")
    assert row["user_id"] == "user123" and pd.isna(row["anonymous_id"])
    assert (row["platform"], row["country"]) == ("web", "US")
    assert row["partition_date"] == date(2020, 10, 13)
    props = json.loads(row["properties"])
    assert props["$current_url"] == "https://example.com/signup"
    assert props["mp_processing_time_ms"] == 1602625711874
    assert "time" not in props and "$insert_id" not in props


def test_amplitude_example(connectors):
    row = land("amplitude", json.loads((connectors / "amplitude_export_event.json").read_text()))
    assert row["event_id"] == "37bcd2f0-2688-47d5-ba90-76b0bd13b0f8"
    assert row["event_name"] == "Checkout Completed"
    assert utc(row["event_time"]) == pd.Timestamp("2023-08-24T07:00:00Z")
    assert (row["user_id"], row["anonymous_id"]) == (
        "user_00042", "3b1d9f0e-1c1a-4f5e-9d7e-2a6c1c9e8f00")
    assert row["session_id"] == "3b1d9f0e-1c1a-4f5e-9d7e-2a6c1c9e8f00:1692860400000"
    assert (row["platform"], row["country"]) == ("web", "GB")
    props = json.loads(row["properties"])
    assert props["cart_value"] == 57.5 and props["items"] == 3
    assert props["user_properties"] == {"plan": "pro"}
    assert props["vendor"]["$insert_id"] == "5f0adeff-6668-4427-8d02-57d803a2b841"
    assert props["vendor"]["city"] == "London"
    assert "device_family" not in props["vendor"]  # nulls are not carried


def test_posthog_examples(connectors):
    events_api = json.loads((connectors / "posthog_events_api_record.json").read_text())
    hogql = json.loads((connectors / "posthog_hogql_query_response.json").read_text())
    from_query = dict(zip(hogql["columns"], hogql["results"][0], strict=True))
    rows = [land("posthog", events_api), land("posthog", from_query)]
    for row in rows:
        assert row["event_id"] == "01890f3c-6b1e-7c43-a5d2-1f1e0f0b2c3d"
        assert row["event_name"] == "$pageview"
        assert utc(row["event_time"]) == pd.Timestamp("2023-08-24T07:00:00.123Z")
        # No $is_identified/$device_id/server $lib: the distinct_id is read as anonymous.
        assert pd.isna(row["user_id"])
        assert row["anonymous_id"] == "0189a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
        assert row["session_id"] == "0189a1b2-dddd-7e5f-8a9b-0c1d2e3f4a5b"
        assert json.loads(row["properties"])["$current_url"] == "https://example.com/pricing"
    assert json.loads(rows[0]["properties"])["user_properties"] == {"email": "a@example.com"}


@pytest.mark.parametrize("fmt", ["mixpanel", "amplitude", "posthog"])
def test_file_source_uses_the_same_mapping(fmt, connectors, tmp_path):
    name = {"mixpanel": "mixpanel_export_line.jsonl", "amplitude": "amplitude_export_event.json",
            "posthog": "posthog_events_api_record.json"}[fmt]
    record = json.loads((connectors / name).read_text().splitlines()[0])
    path = tmp_path / "export.jsonl"
    path.write_text(json.dumps(record) + "\n")
    src = FileSource(path, fmt=fmt)
    [day] = src.available_days()
    frame = src.fetch_day(day)
    assert frame.iloc[0].to_dict() == FILE_FORMATS[fmt](record)


def test_file_formats_and_settings_are_complete():
    assert set(FILE_FORMATS) == {"mixpanel", "amplitude", "posthog", "ga4"}
    assert set(VENDOR_SETTINGS) == set(SECRET_FIELDS) == {"mixpanel", "amplitude", "posthog"}
    assert VENDOR_SETTINGS["mixpanel"]["api_secret"] == "MIXPANEL_API_SECRET"
    for vendor, secrets in SECRET_FIELDS.items():
        assert secrets <= set(VENDOR_SETTINGS[vendor])
        assert "start_date" in VENDOR_SETTINGS[vendor]


def test_build_vendor_source_errors_name_the_variable_never_the_value():
    with pytest.raises(SourceConfigError, match=r"missing personal_api_key \(set POSTHOG_PERSONAL"):
        build_vendor_source("posthog", personal_api_key="", project_id="1",
                            start_date="2024-01-01")
    with pytest.raises(SourceConfigError, match="unknown vendor"):
        build_vendor_source("heap")
    with pytest.raises(SourceConfigError, match="unknown settings"):
        build_vendor_source("amplitude", api_key="k", secret_key="s", start_date="2024-01-01",
                            apikey="typo")
    with pytest.raises(SourceConfigError, match="needs project_id") as caught:
        build_vendor_source("mixpanel", api_secret="TOPSECRET", username="svc",
                            start_date="2024-01-01")
    assert "TOPSECRET" not in str(caught.value)


def test_build_vendor_source_days():
    src = build_vendor_source("amplitude", api_key="k", secret_key="s", start_date="2024-01-30",
                              end_date="2024-02-02", lookback_days="2", region="")
    assert src.name == "amplitude"
    assert src.available_days() == [date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1),
                                    date(2024, 2, 2)]
    assert src.days_to_refresh(date(2024, 2, 10)) == [date(2024, 2, 1), date(2024, 2, 2)]
