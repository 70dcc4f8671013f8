"""Mixpanel: the raw event export API, and the mapping of one exported event to the contract.

Protocol (Mixpanel "Raw Event Export" docs): ``GET {base}/api/2.0/export?from_date=YYYY-MM-DD
&to_date=YYYY-MM-DD`` (both inclusive) returns JSON lines ``{"event": ..., "properties": {"time":
<unix seconds>, "distinct_id", "$insert_id", ...}}``. Auth is HTTP Basic: a service account's
``username:secret`` (then ``project_id`` is a required query parameter) or the legacy project API
secret as the username with an empty password. Hosts: ``data`` (US), ``data-eu``, ``data-in``.
Limits: 60 queries/hour and 3/second, enforced here by two client-side sliding windows; 429s are
still retried (``Retry-After`` honoured) by :mod:`orchestration.ingest.vendors.http`.

One request per day partition (``from_date = to_date = day``). The dates are UTC days for projects
created after 2023-01-01; an older project keeps its project time zone for the range (and its
``time`` values are shifted into that zone), so set such a project's time zone to UTC or expect
edge-of-day records to land in the neighbouring partition. A record is never dropped for falling
outside the day: the partition is the day we asked for.

Deduplication: raw exports are not deduplicated by Mixpanel. The record's ``$insert_id`` becomes
``event_id`` and, within one pull, only the LAST occurrence of a duplicate ``$insert_id`` is kept
(Mixpanel's own query-time dedupe shows the most recently ingested copy; the export streams copies
in storage order, so the last one we see is our best stand-in for "most recent"). Mixpanel keys
its dedupe on (event, distinct_id, time, $insert_id); we key on ``$insert_id`` alone because the
contract's ``event_id`` must be unique. Records without ``$insert_id`` are not deduplicated and get
a derived id from ``normalize``. The file path (``FileSource`` with format ``mixpanel``) maps
records one at a time and does not dedupe: use :func:`dedupe_keep_last` or dedupe downstream.

Identity (Mixpanel "simplified ID merge"): ``$user_id`` -> ``user_id``, ``$device_id`` ->
``anonymous_id``. Without either, a ``distinct_id`` of the form ``$device:<id>`` is anonymous and
any other ``distinct_id`` is taken as the user id (server-side tracking, original ID merge).
"""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import requests

from orchestration.ingest.vendors.api import VendorApiSource
from orchestration.ingest.vendors.common import (
    build_properties,
    contract_record,
    country_code,
    dedupe_keep_last,
    first,
    map_rows,
    parse_json_lines,
    platform_name,
    text,
    time_from_epoch,
)
from orchestration.ingest.vendors.http import (
    Clock,
    RetryPolicy,
    Sleep,
    SlidingWindowLimiter,
    VendorSession,
)

NAME = "mixpanel"
REGIONS = {
    "us": "https://data.mixpanel.com",
    "eu": "https://data-eu.mixpanel.com",
    "in": "https://data-in.mixpanel.com",
}
EXPORT_PATH = "/api/2.0/export"
# mp_lib values -> platform; server libraries are "server"; others fall back to $os.
_LIBS = {
    "web": "web", "iphone": "ios", "swift": "ios", "android": "android", "python": "server",
    "node": "server", "ruby": "server", "php": "server", "java": "server", "go": "server",
}
# Properties that became contract columns and are not repeated in `properties`.
_CONSUMED = ("time", "$insert_id", "mp_country_code")


def _identity(props: dict[str, Any]) -> tuple[str | None, str | None]:
    user = text(props.get("$user_id"))
    device = text(props.get("$device_id"))
    distinct = text(props.get("distinct_id"))
    if user is None and device is None and distinct is not None:
        if distinct.startswith("$device:"):
            device = distinct.removeprefix("$device:")
        else:
            user = distinct
    elif distinct is not None and distinct.startswith("$device:") and device is None:
        device = distinct.removeprefix("$device:")
    return user, device


def _time(value: Any) -> Any:
    if isinstance(value, str) and not value.strip().lstrip("-").replace(".", "", 1).isdigit():
        return value  # not epoch: let normalize judge it
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return value
    return time_from_epoch(value, "ms" if abs(seconds) > 1e11 else "s")  # time_in_ms=true -> ms


def map_record(record: dict[str, Any]) -> dict[str, Any]:
    """One Mixpanel export line (parsed) -> contract fields. Never raises."""
    props = record.get("properties")
    props = dict(props) if isinstance(props, dict) else {}
    event = record.get("event")
    user_id, anonymous_id = _identity(props)
    experiments = {}
    if event == "$experiment_started" and not (
        text(props.get("Experiment name")) is None or text(props.get("Variant name")) is None
    ):
        experiments[text(props["Experiment name"])] = text(props["Variant name"])
    lib = text(props.get("mp_lib"))
    platform = platform_name(_LIBS.get((lib or "").lower()), props.get("$os"), lib)
    properties = build_properties(
        {k: v for k, v in props.items() if k not in _CONSUMED},
        utm={k: props.get(k) for k in ("utm_source", "utm_medium", "utm_campaign")},
        revenue=first(props.get("revenue"), props.get("$revenue"), props.get("Revenue")),
        experiments=experiments,
    )
    return contract_record(
        event_id=text(props.get("$insert_id")),
        event_name=event,
        event_time=_time(props.get("time")),
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=text(first(props.get("$session_id"), props.get("session_id"))),
        platform=platform,
        country=country_code(props.get("mp_country_code")),
        properties=properties,
    )


class MixpanelExportClient:
    """Raw event export, one request per UTC day, rate limited to 60/hour and 3/second."""

    def __init__(
        self,
        *,
        api_secret: str,
        username: str | None = None,
        project_id: str | int | None = None,
        region: str | None = "us",
        base_url: str | None = None,
        timeout: float | tuple[float, float] = (10.0, 600.0),
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        queries_per_hour: int = 60,
        queries_per_second: int = 3,
    ) -> None:
        if not api_secret:
            raise ValueError("mixpanel: api_secret (project secret or service-account secret) "
                             "is required")
        region = (region or "us").strip().lower()
        if base_url is None and region not in REGIONS:
            raise ValueError(f"mixpanel: unknown region {region!r}; one of {sorted(REGIONS)}")
        if username and not project_id:
            raise ValueError("mixpanel: a service account (username) needs project_id")
        self.base_url = (base_url or REGIONS[region]).rstrip("/")
        self.project_id = str(project_id) if project_id not in (None, "") else None
        auth = (username, api_secret) if username else (api_secret, "")
        self.http = VendorSession(
            NAME,
            auth=requests.auth.HTTPBasicAuth(*auth),
            headers={"Accept": "text/plain", "Accept-Encoding": "gzip"},
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            limiters=[
                SlidingWindowLimiter(queries_per_hour, 3600.0, clock=clock, sleep=sleep),
                SlidingWindowLimiter(queries_per_second, 1.0, clock=clock, sleep=sleep),
            ],
        )

    def export_lines(self, day: date):
        """A rewound temp file with the day's raw JSON lines (raises if the body is truncated)."""
        params: dict[str, Any] = {"from_date": day.isoformat(), "to_date": day.isoformat()}
        if self.project_id:
            params["project_id"] = self.project_id
        response = self.http.request("GET", self.base_url + EXPORT_PATH, params=params,
                                     stream=True)
        return self.http.download(response)

    def fetch_rows(self, day: date) -> list[dict[str, Any]]:
        with self.export_lines(day) as body:
            rows = map_rows(parse_json_lines(body, f"export {day.isoformat()}"), map_record)
        return dedupe_keep_last(rows)


class MixpanelSource(VendorApiSource):
    vendor = NAME
    client_class = MixpanelExportClient
