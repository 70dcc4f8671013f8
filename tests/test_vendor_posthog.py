"""PostHog query API (HogQL) against a local server: Bearer auth, hasMore paging, faults."""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd
import pytest
from werkzeug import Request, Response

from orchestration.ingest.contract import normalize
from orchestration.ingest.vendors import build_vendor_source
from orchestration.ingest.vendors.http import RetryPolicy, VendorHTTPError
from orchestration.ingest.vendors.posthog import COLUMNS, PostHogQueryClient, map_record

DAY = date(2023, 8, 24)
PATH = "/api/projects/4242/query/"


def row(n: int, **props) -> list:
    properties = {"$session_id": f"sess-{n % 2}", "$lib": "web", "$os": "Mac OS X",
                  "$is_identified": False, "$device_id": f"anon-{n}", **props}
    return [f"0189-{n:04d}", "$pageview", f"2023-08-24T07:{n:02d}:00.123000Z", f"anon-{n}",
            json.dumps(properties), f"person-{n}", ""]


class FakePostHog:
    """Serves the rows with LIMIT/OFFSET read from the HogQL text, like the real endpoint."""

    def __init__(self, rows: list[list], *, has_more_lies: bool = False) -> None:
        self.rows = rows
        self.has_more_lies = has_more_lies
        self.queries: list[str] = []

    def __call__(self, request: Request) -> Response:
        body = request.get_json()
        assert body["query"]["kind"] == "HogQLQuery"
        query = body["query"]["query"]
        self.queries.append(query)
        limit, offset = map(int, re.search(r"LIMIT (\d+) OFFSET (\d+)", query).groups())
        page = self.rows[offset: offset + limit]
        has_more = offset + limit < len(self.rows) and not self.has_more_lies
        payload = {"columns": list(COLUMNS), "results": page, "hasMore": has_more,
                   "limit": limit, "offset": offset}
        return Response(json.dumps(payload), content_type="application/json")


def source(httpserver, sleeps=None, page_size=2):
    sleeps = [] if sleeps is None else sleeps
    return build_vendor_source(
        "posthog", personal_api_key="phx_test_key", project_id="4242",
        base_url=httpserver.url_for("/"), start_date="2023-08-01", page_size=str(page_size),
        sleep=sleeps.append, retry=RetryPolicy(max_attempts=3, backoff_base=1.0),
    )


def expect_query(httpserver):
    return httpserver.expect_request(
        PATH, method="POST", headers={"Authorization": "Bearer phx_test_key"})


def test_pages_until_has_more_is_false_and_maps_identity(httpserver):
    rows = [row(n) for n in range(4)]
    rows.append(["0189-9999", "$identify", "2023-08-24T08:00:00+02:00", "user_00042",
                 json.dumps({"$anon_distinct_id": "anon-3", "$lib": "web",
                             "$geoip_country_code": "de", "utm_source": "newsletter",
                             "$feature/new-nav": "test"}), "person-3", ""])
    fake = FakePostHog(rows)
    expect_query(httpserver).respond_with_handler(fake)
    frame = source(httpserver).fetch_day(DAY)
    assert len(fake.queries) == 3  # 2 + 2 + 1 rows
    assert [re.search(r"OFFSET (\d+)", q).group(1) for q in fake.queries] == ["0", "2", "4"]
    query = fake.queries[0]
    assert "FROM events" in query and "ORDER BY timestamp, uuid" in query
    assert "timestamp >= toDateTime('2023-08-24 00:00:00', 'UTC')" in query
    assert "timestamp < toDateTime('2023-08-25 00:00:00', 'UTC')" in query

    landed = normalize(frame, source="posthog", fetch_day=DAY).set_index("event_id")
    assert landed["quarantine_reason"].isna().all()
    anon = landed.loc["0189-0001"]
    assert pd.isna(anon["user_id"]) and anon["anonymous_id"] == "anon-1"
    assert (anon["session_id"], anon["platform"]) == ("sess-1", "web")
    identify = landed.loc["0189-9999"]
    assert (identify["user_id"], identify["anonymous_id"]) == ("user_00042", "anon-3")
    ts = pd.Timestamp(identify["event_time"])
    assert (ts.tz_localize("UTC") if ts.tzinfo is None else ts) == pd.Timestamp("2023-08-24T06:00Z")
    props = json.loads(identify["properties"])
    assert identify["country"] == "DE" and props["utm_source"] == "newsletter"
    assert props["experiments"] == {"new-nav": "test"}
    assert props["vendor"]["person_id"] == "person-3"


def test_full_page_with_has_more_false_still_reads_on(httpserver):
    fake = FakePostHog([row(n) for n in range(4)], has_more_lies=True)
    expect_query(httpserver).respond_with_handler(fake)
    assert len(source(httpserver).fetch_day(DAY)) == 4
    assert len(fake.queries) == 3  # the third, empty page confirms the end


def test_empty_day(httpserver):
    fake = FakePostHog([])
    expect_query(httpserver).respond_with_handler(fake)
    frame = source(httpserver).fetch_day(DAY)
    assert frame.empty and len(fake.queries) == 1


def test_429_retry_after_then_success(httpserver):
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_data(
        '{"detail": "throttled"}', status=429, headers={"Retry-After": "15"})
    httpserver.expect_ordered_request(PATH, method="POST").respond_with_handler(
        FakePostHog([row(0)]))
    sleeps: list[float] = []
    assert list(source(httpserver, sleeps).fetch_day(DAY)["event_id"]) == ["0189-0000"]
    assert sleeps == [15.0]


def test_persistent_500_is_a_clear_error_without_the_key(httpserver):
    expect_query(httpserver).respond_with_data("server error", status=500)
    with pytest.raises(VendorHTTPError) as caught:
        source(httpserver).fetch_day(DAY)
    assert str(caught.value).startswith("posthog: HTTP 500 from http://localhost")
    assert "phx_test_key" not in str(caught.value)
    assert len(httpserver.log) == 3


def test_truncated_json_is_an_error_not_an_empty_day(httpserver):
    expect_query(httpserver).respond_with_data('{"columns": ["uuid"], "results": [["a"', 
                                               content_type="application/json")
    with pytest.raises(VendorHTTPError, match="not JSON"):
        source(httpserver).fetch_day(DAY)


def test_properties_that_are_not_an_object_are_quarantined_by_normalize():
    mapped = map_record({"uuid": "x", "event": "e", "timestamp": "2023-08-24T07:00:00Z",
                         "distinct_id": "d", "properties": "{not json"})
    landed = normalize(pd.DataFrame([mapped]), source="posthog", fetch_day=DAY)
    assert landed.iloc[0]["quarantine_reason"] == "properties is not a JSON object"


@pytest.mark.parametrize(
    ("event", "distinct", "props", "expected"),
    [
        ("signup", "user-1", {"$is_identified": True, "$device_id": "dev-1"}, ("user-1", "dev-1")),
        ("signup", "anon-1", {"$is_identified": False}, (None, "anon-1")),
        ("srv", "user-2", {"$lib": "posthog-python"}, ("user-2", None)),
        ("srv", "user-3", {"$device_id": "dev-3"}, ("user-3", "dev-3")),
        ("srv", "dev-4", {"$user_id": "user-4"}, ("user-4", "dev-4")),
        ("x", "who", {}, (None, "who")),
    ],
)
def test_identity_rule(event, distinct, props, expected):
    mapped = map_record({"uuid": "u", "event": event, "timestamp": "2023-08-24T07:00:00Z",
                         "distinct_id": distinct, "properties": props})
    assert (mapped["user_id"], mapped["anonymous_id"]) == expected


def test_client_validation():
    with pytest.raises(ValueError, match="page_size"):
        PostHogQueryClient(personal_api_key="k", project_id=1, page_size=60_000)
    assert PostHogQueryClient(personal_api_key="k", project_id=1, region="eu").url == \
        "https://eu.posthog.com/api/projects/1/query/"
