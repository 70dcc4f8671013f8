"""Mixpanel raw event export against a local server speaking its protocol (JSON lines, Basic)."""

from __future__ import annotations

import gzip
import json
from datetime import date

import pandas as pd
import pytest
import requests
from werkzeug import Response

from orchestration.ingest.contract import normalize
from orchestration.ingest.vendors import build_vendor_source
from orchestration.ingest.vendors.http import RetryPolicy, TruncatedDownloadError
from orchestration.ingest.vendors.mixpanel import REGIONS, MixpanelExportClient

DAY = date(2024, 3, 5)
T0 = 1709640000  # 2024-03-05T12:00:00Z


def as_utc(value) -> pd.Timestamp:
    """Landing timestamps are UTC (stored naive or tz-aware, depending on the contract version)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def line(event: str, insert_id: str | None, seconds: int, **props) -> str:
    properties = {"time": seconds, "distinct_id": props.pop("distinct_id", "user-1"), **props}
    if insert_id is not None:
        properties["$insert_id"] = insert_id
    return json.dumps({"event": event, "properties": properties})


def source(httpserver, sleeps=None, clock=None, **settings):
    sleeps = [] if sleeps is None else sleeps
    extra = {"clock": clock} if clock else {}
    return build_vendor_source(
        "mixpanel",
        api_secret=settings.pop("api_secret", "sa-secret"),
        username=settings.pop("username", "svc.account"),
        project_id=settings.pop("project_id", "123"),
        base_url=httpserver.url_for("/"),
        start_date="2024-03-01",
        sleep=sleeps.append,
        retry=RetryPolicy(max_attempts=3, backoff_base=1.0),
        **extra,
        **settings,
    )


def expect_export(httpserver, body, *, auth=("svc.account", "sa-secret"), project_id="123",
                  **respond):
    query = {"from_date": "2024-03-05", "to_date": "2024-03-05"}
    if project_id:
        query["project_id"] = project_id
    return httpserver.expect_ordered_request(
        "/api/2.0/export", method="GET", query_string=query,
        headers={"Authorization": requests.auth._basic_auth_str(*auth)},
    ).respond_with_data(body, content_type="text/plain", **respond)


def test_export_maps_dedupes_last_and_quarantines_malformed_lines(httpserver):
    body = "\n".join([
        line("Signed up", "ins-1", T0, mp_country_code="us", utm_source="google",
             utm_medium="cpc", utm_campaign="spring", mp_lib="web", **{"$os": "Mac OS X"}),
        line("Viewed", "ins-2", T0 + 60, distinct_id="$device:dev-9", **{"$device_id": "dev-9"}),
        '{"event": "Broken", "properties": {"time": 17096',
        line("Signed up", "ins-1", T0, plan="pro", distinct_id="user-1"),  # duplicate: wins
        line("No insert id", None, T0 + 120, **{"$user_id": "u-7", "$device_id": "dev-7"}),
        "",
    ]) + "\n"
    expect_export(httpserver, body)
    frame = source(httpserver).fetch_day(DAY)
    assert len(frame) == 4

    landed = normalize(frame, source="mixpanel", fetch_day=DAY)
    good = landed[landed["quarantine_reason"].isna()].set_index("event_name")
    assert list(good.index) == ["Viewed", "Signed up", "No insert id"]  # last occurrence kept
    signed = good.loc["Signed up"]
    assert signed["event_id"] == "ins-1" and signed["user_id"] == "user-1"
    assert as_utc(signed["event_time"]) == pd.Timestamp("2024-03-05T12:00:00Z")
    assert json.loads(signed["properties"])["plan"] == "pro"
    viewed = good.loc["Viewed"]
    assert viewed["anonymous_id"] == "dev-9" and pd.isna(viewed["user_id"])
    late = good.loc["No insert id"]
    assert late["event_id"].startswith("derived-")
    assert (late["user_id"], late["anonymous_id"]) == ("u-7", "dev-7")
    bad = landed[landed["quarantine_reason"].notna()].iloc[0]
    assert bad["quarantine_reason"].startswith("malformed JSON line (export 2024-03-05:3:")
    assert bad["raw_record"] == '{"event": "Broken", "properties": {"time": 17096'
    assert set(landed["partition_date"]) == {DAY}


def test_first_duplicate_mapping_keeps_utm_and_country(httpserver):
    expect_export(httpserver, line("Signed up", "ins-1", T0, mp_country_code="us",
                                   utm_source="google", utm_campaign="spring", mp_lib="web"))
    row = source(httpserver).fetch_day(DAY).iloc[0]
    assert row["country"] == "US" and row["platform"] == "web"
    assert row["properties"]["utm_source"] == "google"
    assert row["properties"]["utm_campaign"] == "spring"


def test_project_secret_auth_has_empty_password_and_no_project_id(httpserver):
    expect_export(httpserver, line("A", "i1", T0) + "\n", auth=("proj-secret", ""),
                  project_id=None)
    frame = source(httpserver, api_secret="proj-secret", username="", project_id="").fetch_day(DAY)
    assert list(frame["event_id"]) == ["i1"]


def test_gzip_encoded_export_is_decoded(httpserver):
    payload = gzip.compress((line("A", "i1", T0) + "\n" + line("B", "i2", T0) + "\n").encode())
    expect_export(httpserver, payload, headers={"Content-Encoding": "gzip"})
    assert list(source(httpserver).fetch_day(DAY)["event_id"]) == ["i1", "i2"]


def test_empty_day_is_an_empty_frame(httpserver):
    expect_export(httpserver, "")
    frame = source(httpserver).fetch_day(DAY)
    assert frame.empty and "event_id" in frame.columns
    assert normalize(frame, source="mixpanel", fetch_day=DAY).empty


def test_429_with_retry_after_then_success(httpserver):
    expect_export(httpserver, "rate limited", status=429, headers={"Retry-After": "42"})
    expect_export(httpserver, line("A", "i1", T0) + "\n")
    sleeps: list[float] = []
    frame = source(httpserver, sleeps=sleeps).fetch_day(DAY)
    assert list(frame["event_id"]) == ["i1"]
    assert 42.0 in sleeps


def test_truncated_body_fails_the_partition(httpserver):
    httpserver.expect_request("/api/2.0/export").respond_with_handler(
        lambda request: Response(iter([line("A", "i1", T0).encode()[:20]]),
                                 headers={"Content-Length": "4096"}))
    with pytest.raises(TruncatedDownloadError, match="mixpanel: .*re-run the partition"):
        source(httpserver).fetch_day(DAY)


def test_rerunning_a_day_returns_the_same_records(httpserver):
    body = line("A", "i1", T0) + "\n" + line("B", "i2", T0 + 1) + "\n"
    expect_export(httpserver, body)
    expect_export(httpserver, body)
    src = source(httpserver)
    first, second = src.fetch_day(DAY), src.fetch_day(DAY)
    pd.testing.assert_frame_equal(first, second)


def test_hourly_rate_limit_is_enforced_client_side(httpserver):
    httpserver.expect_request("/api/2.0/export").respond_with_data("")
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    client = MixpanelExportClient(api_secret="s", base_url=httpserver.url_for("/"),
                                  queries_per_hour=2, sleep=sleep, clock=lambda: now[0])
    for _ in range(3):
        client.fetch_rows(DAY)
    assert sleeps == [pytest.approx(3600.0)]


def test_regions_and_days():
    assert REGIONS == {"us": "https://data.mixpanel.com", "eu": "https://data-eu.mixpanel.com",
                       "in": "https://data-in.mixpanel.com"}
    client = MixpanelExportClient(api_secret="s", region="EU")
    assert client.base_url == "https://data-eu.mixpanel.com"
    src = build_vendor_source("mixpanel", api_secret="s", start_date="2024-03-01",
                              lookback_days="3", today=lambda: date(2024, 3, 6))
    assert src.name == "mixpanel"
    assert src.available_days() == [date(2024, 3, d) for d in range(1, 6)]
    assert src.days_to_refresh(date(2024, 3, 6)) == [date(2024, 3, d) for d in (3, 4, 5)]
    assert repr(src) == "MixpanelSource(name='mixpanel', start_date=2024-03-01)"
