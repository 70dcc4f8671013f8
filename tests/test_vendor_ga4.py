"""GA4 BigQuery export rows via FileSource: newline-delimited JSON and Parquet land the same."""

from __future__ import annotations

import copy
import json
from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestration.ingest.contract import normalize
from orchestration.ingest.files import FileSource
from orchestration.ingest.vendors.ga4 import map_record

DAY = date(2023, 8, 24)


def ga4_row(**overrides) -> dict:
    """One row as BigQuery exports it to JSON (INT64 as strings)."""
    row = {
        "event_date": "20230824",
        "event_timestamp": "1692860400123456",
        "event_name": "purchase",
        "event_params": [
            {"key": "ga_session_id", "value": {"int_value": "1692860000"}},
            {"key": "page_location", "value": {"string_value": "https://example.com/checkout"}},
            {"key": "engagement_time_msec", "value": {"int_value": "1200"}},
            {"key": "value", "value": {"double_value": 57.5}},
        ],
        "event_bundle_sequence_id": "5",
        "user_id": "user_00042",
        "user_pseudo_id": "123456.789",
        "user_properties": [
            {"key": "plan",
             "value": {"string_value": "pro", "set_timestamp_micros": "1692860000000000"}},
            {"key": "firebase_exp_3", "value": {"string_value": "1"}},
        ],
        "device": {"category": "desktop", "operating_system": "Windows",
                   "web_info": {"browser": "Chrome"}},
        "geo": {"country": "United States", "city": "Austin"},
        "traffic_source": {"source": "google", "medium": "organic", "name": "(organic)"},
        "collected_traffic_source": {"manual_source": "newsletter", "manual_medium": "email",
                                     "manual_campaign_name": "aug"},
        "ecommerce": {"purchase_revenue": 57.5, "transaction_id": "T1"},
        "platform": "WEB",
        "stream_id": "111",
    }
    row.update(overrides)
    return row


def typed(row: dict) -> dict:
    """The same row with real INT64s, as a Parquet export carries it."""
    row = copy.deepcopy(row)
    for field in ("event_timestamp", "event_bundle_sequence_id"):
        row[field] = int(row[field])
    for entry in row["event_params"] + row["user_properties"]:
        for key in ("int_value", "set_timestamp_micros"):
            if key in entry["value"]:
                entry["value"][key] = int(entry["value"][key])
    return row


def rows() -> list[dict]:
    second = ga4_row(event_name="page_view", event_timestamp="1692860401000000", user_id=None,
                     collected_traffic_source=None, ecommerce=None,
                     event_params=[{"key": "ga_session_id", "value": {"int_value": "1692860000"}},
                                   {"key": "source", "value": {"string_value": "bing"}}])
    return [ga4_row(), second]


def test_map_record_contract_values():
    landed = normalize(pd.DataFrame([map_record(ga4_row())]), source="ga4", fetch_day=None)
    record = landed.iloc[0]
    assert record["quarantine_reason"] is None or pd.isna(record["quarantine_reason"])
    ts = pd.Timestamp(record["event_time"])
    assert (ts.tz_localize("UTC") if ts.tzinfo is None else ts) == \
        pd.Timestamp("2023-08-24T07:00:00.123456Z")
    assert (record["user_id"], record["anonymous_id"]) == ("user_00042", "123456.789")
    assert record["session_id"] == "123456.789:1692860000"
    assert (record["platform"], record["country"]) == ("web", "US")
    assert record["event_id"].startswith("ga4-")
    props = json.loads(record["properties"])
    assert props["page_location"] == "https://example.com/checkout"
    assert props["engagement_time_msec"] == 1200 and props["value"] == 57.5
    assert (props["utm_source"], props["utm_medium"], props["utm_campaign"]) == \
        ("newsletter", "email", "aug")
    assert props["revenue"] == 57.5
    assert props["user_properties"] == {"plan": "pro", "firebase_exp_3": "1"}
    assert props["experiments"] == {"firebase_exp_3": "1"}
    assert props["vendor"]["geo"]["city"] == "Austin"
    assert props["vendor"]["traffic_source"]["source"] == "google"


def test_event_id_is_deterministic_and_distinguishes_events():
    assert map_record(ga4_row())["event_id"] == map_record(ga4_row())["event_id"]
    assert map_record(ga4_row())["event_id"] != map_record(ga4_row(event_name="x"))["event_id"]
    assert map_record(ga4_row())["event_id"] == map_record(typed(ga4_row()))["event_id"]


def test_json_and_parquet_exports_land_identically(tmp_path):
    json_dir, parquet_dir = tmp_path / "json", tmp_path / "parquet"
    json_dir.mkdir()
    parquet_dir.mkdir()
    (json_dir / "events_20230824.json").write_text(
        "\n".join(json.dumps(r) for r in rows()) + "\n{not json\n")
    pq.write_table(pa.Table.from_pylist([typed(r) for r in rows()]),
                   parquet_dir / "events_20230824.parquet")

    landed = {}
    for name, folder in (("json", json_dir), ("parquet", parquet_dir)):
        src = FileSource(folder, fmt="ga4")
        assert src.available_days() == [DAY]
        frame = normalize(src.fetch_day(DAY), source="ga4", fetch_day=DAY)
        landed[name] = frame

    good = landed["json"][landed["json"]["quarantine_reason"].isna()]
    assert len(landed["json"]) == 3 and len(good) == 2  # the bad line is kept, quarantined
    assert landed["parquet"]["quarantine_reason"].isna().all()
    columns = ["event_id", "event_name", "event_time", "user_id", "anonymous_id", "session_id",
               "platform", "country", "properties"]
    pd.testing.assert_frame_equal(good[columns].reset_index(drop=True),
                                  landed["parquet"][columns].reset_index(drop=True))
    page_view = json.loads(good.iloc[1]["properties"])
    assert page_view["utm_source"] == "bing" and page_view["utm_campaign"] == "(organic)"
    assert pd.isna(good.iloc[1]["user_id"])
