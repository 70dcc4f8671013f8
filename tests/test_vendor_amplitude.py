"""Amplitude Export API on a local server: Basic auth, ZIP of gzipped JSON lines, 404, faults."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from datetime import date

import pandas as pd
import pytest
import requests

from orchestration.ingest.contract import normalize
from orchestration.ingest.vendors import build_vendor_source
from orchestration.ingest.vendors.amplitude import REGIONS, AmplitudeExportClient
from orchestration.ingest.vendors.http import RetryPolicy, TruncatedDownloadError, VendorHTTPError

DAY = date(2023, 8, 24)
AUTH = requests.auth._basic_auth_str("amp-key", "amp-secret")


def event(uuid: str, hour: int, **fields) -> dict:
    return {
        "uuid": uuid, "$insert_id": f"ins-{uuid}", "event_type": "Checkout Completed",
        "event_time": f"2023-08-24 {hour:02d}:15:00.250000", "user_id": "user_00042",
        "device_id": "dev-1", "session_id": 1692860400000, "platform": "iOS",
        "country": "United Kingdom", "event_properties": {"cart_value": 57.5},
        "user_properties": {"plan": "pro", "[Experiment] checkout-flow": "treatment"},
        **fields,
    }


def jsonl(*lines) -> bytes:
    return "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()


def export_zip(members: dict[str, bytes], *, gzipped: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, gzip.compress(data) if gzipped else data)
    return buffer.getvalue()


def member(hour: int) -> str:
    return f"187520/187520_2023-08-24_{hour}#0.json.gz"


def expect_export(httpserver, body=b"", **respond):
    return httpserver.expect_ordered_request(
        "/api/2/export", method="GET",
        query_string={"start": "20230824T00", "end": "20230824T23"},
        headers={"Authorization": AUTH},
    ).respond_with_data(body, content_type="application/zip", **respond)


def source(httpserver, sleeps=None):
    sleeps = [] if sleeps is None else sleeps
    return build_vendor_source(
        "amplitude", api_key="amp-key", secret_key="amp-secret",
        base_url=httpserver.url_for("/"), start_date="2023-08-01", sleep=sleeps.append,
        retry=RetryPolicy(max_attempts=3, backoff_base=1.0),
    )


def test_export_zip_of_gzip_members_is_mapped(httpserver):
    expect_export(httpserver, export_zip({
        member(7): jsonl(event("u-1", 7), event("u-2", 7, session_id=-1, device_id=None)),
        member(9): jsonl('{"uuid": "u-3", "event_type": ', event("u-4", 9, event_type="$exposure",
                         event_properties={"flag_key": "new-nav", "variant": "on"})),
    }))
    frame = source(httpserver).fetch_day(DAY)
    landed = normalize(frame, source="amplitude", fetch_day=DAY)
    assert len(landed) == 4
    good = landed[landed["quarantine_reason"].isna()].set_index("event_id")
    assert list(good.index) == ["u-1", "u-2", "u-4"]
    first = good.loc["u-1"]
    ts = pd.Timestamp(first["event_time"])
    assert (ts.tz_localize("UTC") if ts.tzinfo is None else ts) == \
        pd.Timestamp("2023-08-24T07:15:00.25Z")
    assert (first["user_id"], first["anonymous_id"]) == ("user_00042", "dev-1")
    assert first["session_id"] == "dev-1:1692860400000"
    assert (first["platform"], first["country"]) == ("ios", "GB")
    props = json.loads(first["properties"])
    assert props["cart_value"] == 57.5 and props["user_properties"]["plan"] == "pro"
    assert props["experiments"] == {"checkout-flow": "treatment"}
    assert props["vendor"]["$insert_id"] == "ins-u-1"
    assert pd.isna(good.loc["u-2"]["session_id"])
    assert json.loads(good.loc["u-4"]["properties"])["experiments"] == {
        "checkout-flow": "treatment", "new-nav": "on"}
    bad = landed[landed["quarantine_reason"].notna()].iloc[0]
    assert bad["quarantine_reason"].startswith(
        f"malformed JSON line (export 20230824 {member(9)}:1:")
    assert bad["raw_record"] == '{"uuid": "u-3", "event_type": '


def test_404_means_an_empty_day(httpserver):
    expect_export(httpserver, b'{"error": "Raw data files were not found."}', status=404)
    frame = source(httpserver).fetch_day(DAY)
    assert frame.empty and list(frame.columns)[:3] == ["event_id", "event_name", "event_time"]


def test_500_then_success(httpserver):
    expect_export(httpserver, b"oops", status=500)
    expect_export(httpserver, export_zip({member(0): jsonl(event("u-1", 0))}))
    sleeps: list[float] = []
    assert list(source(httpserver, sleeps).fetch_day(DAY)["event_id"]) == ["u-1"]
    assert sleeps == [1.0]


def test_persistent_500_is_a_clear_error(httpserver):
    httpserver.expect_request("/api/2/export").respond_with_data("down", status=502)
    with pytest.raises(VendorHTTPError, match=r"amplitude: HTTP 502 from http://localhost:\d+"
                                              r"/api/2/export\?start=20230824T00&end=20230824T23"):
        source(httpserver).fetch_day(DAY)
    assert len(httpserver.log) == 3


def test_truncated_zip_raises(httpserver):
    whole = export_zip({member(h): jsonl(*(event(f"u-{h}-{n}", h) for n in range(50)))
                        for h in range(3)})
    expect_export(httpserver, whole[: len(whole) // 2])
    with pytest.raises(TruncatedDownloadError, match="truncated or corrupt ZIP"):
        source(httpserver).fetch_day(DAY)


def test_bad_gzip_member_raises(httpserver):
    good = gzip.compress(jsonl(event("u-1", 1)))
    truncated = gzip.compress(jsonl(*(event(f"u-{n}", 2) for n in range(20))))[:-40]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(member(1), good)
        archive.writestr(member(2), truncated)
    expect_export(httpserver, buffer.getvalue())
    with pytest.raises(TruncatedDownloadError, match=r"bad gzip member '187520/.*_2#0"):
        source(httpserver).fetch_day(DAY)


def test_not_gzip_at_all_member_raises(httpserver):
    expect_export(httpserver, export_zip({member(1): b"plain text"}, gzipped=False))
    with pytest.raises(TruncatedDownloadError, match="bad gzip member"):
        source(httpserver).fetch_day(DAY)


def test_rerun_is_idempotent(httpserver):
    body = export_zip({member(3): jsonl(event("u-1", 3), event("u-2", 3))})
    expect_export(httpserver, body)
    expect_export(httpserver, body)
    src = source(httpserver)
    pd.testing.assert_frame_equal(src.fetch_day(DAY), src.fetch_day(DAY))


def test_regions():
    assert REGIONS == {"us": "https://amplitude.com", "eu": "https://analytics.eu.amplitude.com"}
    assert AmplitudeExportClient(api_key="k", secret_key="s", region="eu").base_url == \
        "https://analytics.eu.amplitude.com"
    with pytest.raises(ValueError, match="unknown region"):
        AmplitudeExportClient(api_key="k", secret_key="s", region="apac")
