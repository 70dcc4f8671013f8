"""Each vendor connector through the real graph: a local server speaking the vendor's protocol
(or a file in its export format), the raw extract, the gate, and the core models. The persons in
`fct_events` come from the vendor's anonymous and known ids, stitched."""

import gzip
import io
import json
import zipfile
from datetime import date, datetime

import pytest
import requests

from orchestration.resources import EventSourceResource
from tests.pipeline import CORE, materialize_days, query

pytestmark = pytest.mark.e2e

DAY = date(2026, 9, 2)
# Enough valid traffic that the planted bad record stays under the gate's 5% quarantine share.
BUSY = 30


def _run(source, duckdb_path):
    result = materialize_days(DAY, DAY, source, selection=CORE)
    assert result.success
    persons = dict(query(duckdb_path, "select event_id, person_id from fct_events"))
    quarantined = query(duckdb_path, "select reason from quarantined_events")
    return persons, [r[0] for r in quarantined]


def test_mixpanel_export_api(httpserver, duckdb_path, monkeypatch):
    def line(name, insert_id, hhmm, **props):
        h, m = hhmm.split(":")
        seconds = 1788307200 + int(h) * 3600 + int(m) * 60  # 2026-09-02T00:00:00Z
        return json.dumps({"event": name, "properties": {"time": seconds, "$insert_id": insert_id,
                                                          "mp_country_code": "DE", **props}})

    lines = [
        line("Page View", "m1", "10:00", distinct_id="d1", **{"$device_id": "d1"},
             utm_source="google"),
        *[line("Signed up", "m2", "10:05", distinct_id="u1",
               **{"$device_id": "d1", "$user_id": "u1"})] * 2,
        line("Page View", "m3", "11:00", distinct_id="u2", **{"$user_id": "u2"}),
        *(line("Ping", f"busy{i}", "12:00", distinct_id="bot", **{"$user_id": "bot"})
          for i in range(BUSY)),
        '{"event": "Broken", "properties": {"time": ',
    ]
    httpserver.expect_request(
        "/api/2.0/export",
        query_string={"from_date": "2026-09-02", "to_date": "2026-09-02"},
        headers={"Authorization": requests.auth._basic_auth_str("project-secret", "")},
    ).respond_with_data("\n".join(lines) + "\n", content_type="application/x-ndjson")
    monkeypatch.setenv("MIXPANEL_BASE_URL", httpserver.url_for("/"))
    source = EventSourceResource(kind="mixpanel", mixpanel_api_secret="project-secret")

    persons, quarantined = _run(source, duckdb_path)
    assert {k: v for k, v in persons.items() if v != "bot"} == {"m1": "u1", "m2": "u1", "m3": "u2"}
    assert len(persons) == 3 + BUSY, "the re-sent m2 counts once"
    assert len(quarantined) == 1 and quarantined[0].startswith("malformed JSON line")


def test_amplitude_export_api(httpserver, duckdb_path, monkeypatch):
    def event(uuid, hour, **fields):
        return {"uuid": uuid, "event_type": "Page Viewed", "platform": "Web",
                "event_time": f"2026-09-02 {hour:02d}:15:00.250000", "country": "Germany",
                "session_id": -1, "event_properties": {}, "user_properties": {}, **fields}

    hour_10 = [event("a1", 10, device_id="dev-1", user_id=None),
               event("a2", 10, device_id="dev-1", user_id="u1", event_type="Signed Up")]
    hour_11 = [event(f"busy{i}", 11, device_id="dev-9", user_id="bot") for i in range(BUSY)]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for hour, events in ((10, hour_10), (11, hour_11)):
            body = "".join(json.dumps(e) + "\n" for e in events).encode()
            zipped.writestr(f"1/1_2026-09-02_{hour}#0.json.gz", gzip.compress(body))
    httpserver.expect_request(
        "/api/2/export",
        query_string={"start": "20260902T00", "end": "20260902T23"},
        headers={"Authorization": requests.auth._basic_auth_str("amp-key", "amp-secret")},
    ).respond_with_data(archive.getvalue(), content_type="application/zip")
    monkeypatch.setenv("AMPLITUDE_BASE_URL", httpserver.url_for("/"))
    source = EventSourceResource(
        kind="amplitude", amplitude_api_key="amp-key", amplitude_secret_key="amp-secret"
    )
    persons, quarantined = _run(source, duckdb_path)
    assert {k: v for k, v in persons.items() if v != "bot"} == {"a1": "u1", "a2": "u1"}
    assert len(persons) == 2 + BUSY and quarantined == []


def test_posthog_query_api(httpserver, duckdb_path, monkeypatch):
    from orchestration.ingest.vendors.posthog import COLUMNS

    def row(uuid, event, hhmm, distinct_id, **props):
        return {"uuid": uuid, "event": event, "timestamp": f"2026-09-02T{hhmm}:00Z",
                "distinct_id": distinct_id, "properties": json.dumps(props),
                "person_id": "p", "elements_chain": ""}

    rows = [
        row("p1", "$pageview", "09:00", "anon-1", **{"$is_identified": False}),
        row("p2", "$identify", "09:05", "u1", **{"$anon_distinct_id": "anon-1"}),
        row("p3", "$pageview", "09:10", "u1", **{"$is_identified": True}),
        *(row(f"busy{i}", "ping", "10:00", "bot", **{"$is_identified": True}) for i in range(BUSY)),
    ]
    results = [[r.get(c) for c in COLUMNS] for r in rows]

    def respond(request):
        from werkzeug import Response

        assert request.headers["Authorization"] == "Bearer phx-key"
        return Response(json.dumps({"columns": list(COLUMNS), "results": results,
                                    "hasMore": False}), content_type="application/json")

    query_endpoint = httpserver.expect_request("/api/projects/77/query/", method="POST")
    query_endpoint.respond_with_handler(respond)
    monkeypatch.setenv("POSTHOG_BASE_URL", httpserver.url_for("/"))
    monkeypatch.setenv("POSTHOG_PROJECT_ID", "77")
    monkeypatch.setenv("POSTHOG_PAGE_SIZE", "1000")
    source = EventSourceResource(kind="posthog", posthog_personal_api_key="phx-key")
    persons, quarantined = _run(source, duckdb_path)
    assert {k: v for k, v in persons.items() if v != "bot"} == {"p1": "u1", "p2": "u1", "p3": "u1"}
    assert quarantined == []


def test_ga4_export_file(tmp_path, duckdb_path):
    def row(name, micros_after_midnight, pseudo, user=None, **params):
        return {
            "event_date": "20260902", "event_name": name,
            "event_timestamp": str(1788307200 * 1_000_000 + micros_after_midnight),
            "user_pseudo_id": pseudo, "user_id": user, "platform": "WEB",
            "geo": {"country": "Germany"}, "device": {"category": "desktop"},
            "event_params": [{"key": k, "value": {"string_value": v}} for k, v in params.items()],
            "user_properties": [],
        }

    rows = [
        row("page_view", 36_000_000_000, "ga-1", page_location="/pricing"),
        row("sign_up", 36_300_000_000, "ga-1", user="u1"),
        *(row("ping", 40_000_000_000 + i, "ga-bot", user="bot") for i in range(BUSY)),
    ]
    path = tmp_path / "ga4.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = EventSourceResource(kind="file", path=str(path), format="ga4")
    persons, quarantined = _run(source, duckdb_path)
    human = {p for p in persons.values() if p != "bot"}
    assert human == {"u1"} and len(persons) == 2 + BUSY
    assert quarantined == []
    assert query(duckdb_path, "select distinct source from fct_events") == [("ga4",)]


def test_a_day_that_fails_lands_nothing_of_its_run(httpserver, duckdb_path, monkeypatch):
    # The days of a run land in one transaction: when the vendor refuses a later day, the days
    # fetched before it are not replaced either, so raw.events never holds half a run.
    def export(day: str, *names: str) -> str:
        seconds = int(datetime.fromisoformat(f"{day}T10:00:00+00:00").timestamp())
        return "\n".join(
            json.dumps({"event": name, "properties": {
                "time": seconds, "$insert_id": f"{day}-{i}", "distinct_id": "u1", "$user_id": "u1",
            }})
            for i, name in enumerate(names)
        ) + "\n"

    def serve(day: str, body: str | None) -> None:
        request = httpserver.expect_request(
            "/api/2.0/export", query_string={"from_date": day, "to_date": day}
        )
        if body is None:
            request.respond_with_data("Unauthorized", status=401)
        else:
            request.respond_with_data(body, content_type="application/x-ndjson")

    monkeypatch.setenv("MIXPANEL_BASE_URL", httpserver.url_for("/"))
    source = EventSourceResource(kind="mixpanel", mixpanel_api_secret="project-secret")
    first, last = date(2026, 9, 2), date(2026, 9, 3)
    serve("2026-09-02", export("2026-09-02", "Page View", "Signed up"))
    serve("2026-09-03", export("2026-09-03", "Page View"))
    assert materialize_days(first, last, source, selection=["raw_events"]).success
    landed_sql = ("select partition_date, event_id, ingested_at from raw.events"
                  " order by partition_date, event_id")
    landed = query(duckdb_path, landed_sql)
    assert len(landed) == 3

    httpserver.clear()
    serve("2026-09-02", export("2026-09-02", "Page View", "Signed up", "Purchase"))
    serve("2026-09-03", None)
    result = materialize_days(first, last, source, selection=["raw_events"])
    assert not result.success
    assert query(duckdb_path, landed_sql) == landed, "the refetched first day was rolled back"
