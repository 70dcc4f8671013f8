"""PostHog: the query API (HogQL), and the mapping of one event row to the contract.

Protocol (PostHog "API queries" docs): ``POST {base}/api/projects/{project_id}/query/`` with
``{"query": {"kind": "HogQLQuery", "query": "<HogQL>"}}`` and a personal API key (Query Read) as
``Authorization: Bearer <key>``. The response has ``columns``, ``results`` (rows as lists) and
``hasMore``. Hosts: ``https://us.posthog.com``, ``https://eu.posthog.com`` or a self-hosted URL.
We select one UTC day, ordered by ``(timestamp, uuid)`` so that pages are stable, and page with
``LIMIT page_size OFFSET n``; we stop only when a page is short *and* ``hasMore`` is not true (if
a server ever under-reports ``hasMore`` we still read on, so nothing is silently cut off; the price
is one empty request at the end of some days). Rows are deduplicated on ``uuid`` (last wins) in
case a late insert shifted a page boundary. HogQL queries are rate limited (about 120/hour by
default per the docs), so a client-side sliding window is applied as well.

Identity rule (``distinct_id`` is whatever the SDK sent: an SDK-generated anonymous UUID before
``identify()``, the id you passed to ``identify()`` afterwards):

1. ``$identify`` events: ``user_id`` = ``distinct_id``; ``anonymous_id`` = ``$anon_distinct_id``
   (the pre-login id being merged), else ``$device_id``.
2. Events with the ``$is_identified`` property (posthog-js and recent mobile SDKs set it on every
   event): true -> ``user_id`` = ``distinct_id`` and ``anonymous_id`` = ``$device_id`` (if
   different); false -> ``anonymous_id`` = ``distinct_id``, no ``user_id``.
3. Otherwise (server SDKs, imports, older clients): a ``$user_id`` property is the ``user_id``;
   a ``$device_id`` different from ``distinct_id`` means ``distinct_id`` is the user; an event
   sent by a server-side library (``$lib`` posthog-python/-node/-ruby/-go/-java/-php/...) has the
   user's id as ``distinct_id``; anything else is treated as anonymous (``anonymous_id`` =
   ``distinct_id``). ``person_id`` (PostHog's merged person UUID) is kept in
   ``properties.vendor.person_id``, not used as ``user_id``: it changes meaning on merges.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Any

from orchestration.ingest.vendors.api import VendorApiSource
from orchestration.ingest.vendors.common import (
    as_dict,
    build_properties,
    contract_record,
    country_code,
    dedupe_keep_last,
    first,
    is_blank,
    map_rows,
    platform_name,
    text,
    time_from_text,
)
from orchestration.ingest.vendors.http import (
    Clock,
    RetryPolicy,
    Sleep,
    SlidingWindowLimiter,
    VendorHTTPError,
    VendorSession,
)

NAME = "posthog"
REGIONS = {"us": "https://us.posthog.com", "eu": "https://eu.posthog.com"}
COLUMNS = ("uuid", "event", "timestamp", "distinct_id", "properties", "person_id",
           "elements_chain")
_SERVER_LIBS = {
    "posthog-python", "posthog-node", "posthog-ruby", "posthog-go", "posthog-java",
    "posthog-php", "posthog-rs", "posthog-dotnet", "posthog-elixir", "posthog-server",
}
_FLAG_PREFIX = "$feature/"


def _identity(event: Any, distinct: str | None, props: dict[str, Any]) -> tuple[Any, Any]:
    device = text(props.get("$device_id"))
    if event == "$identify":
        return distinct, text(first(props.get("$anon_distinct_id"), device))
    flag = props.get("$is_identified")
    if isinstance(flag, bool):
        if flag:
            return distinct, device if device != distinct else None
        return None, distinct
    if text(props.get("$user_id")) is not None:
        user = text(props.get("$user_id"))
        anonymous = device or (distinct if distinct != user else None)
        return user, anonymous
    if device is not None and distinct is not None and device != distinct:
        return distinct, device
    if text(props.get("$lib")) in _SERVER_LIBS:
        return distinct, device
    return None, distinct


def map_record(record: dict[str, Any]) -> dict[str, Any]:
    """One PostHog event -> contract fields. Never raises.

    Accepts a HogQL row as a dict (``uuid``, ``event``, ``timestamp``, ``distinct_id``,
    ``properties`` as JSON text or object, ``person_id``), the events API shape (``id``,
    ``person: {...}``) and CSV/batch exports (same columns, ``properties`` as JSON text).
    """
    raw_props = record.get("properties")
    props = as_dict(raw_props)
    if props is None and not is_blank(raw_props):
        props_out: Any = raw_props  # not an object: normalize quarantines it, keeping the record
        props = {}
    else:
        props = props or {}
        props_out = None
    event = record.get("event")
    distinct = text(record.get("distinct_id"))
    user_id, anonymous_id = _identity(event, distinct, props)
    experiments = {
        key.removeprefix(_FLAG_PREFIX): value
        for key, value in props.items()
        if key.startswith(_FLAG_PREFIX) and not is_blank(value)
    }
    if event == "$feature_flag_called" and text(props.get("$feature_flag")):
        experiments[text(props["$feature_flag"])] = props.get("$feature_flag_response")
    person = record.get("person") if isinstance(record.get("person"), dict) else {}
    vendor = {
        "distinct_id": distinct,
        "person_id": first(record.get("person_id"), person.get("id"), person.get("uuid")),
        "person_is_identified": person.get("is_identified"),
        "elements_chain": record.get("elements_chain"),
    }
    if props_out is None:
        props_out = build_properties(
            props,
            utm={k: props.get(k) for k in ("utm_source", "utm_medium", "utm_campaign")},
            revenue=first(props.get("revenue"), props.get("$revenue")),
            experiments=experiments,
            user_properties=as_dict(person.get("properties")),
            vendor=vendor,
        )
    lib = text(props.get("$lib"))
    return contract_record(
        event_id=text(first(record.get("uuid"), record.get("id"))),
        event_name=event,
        event_time=time_from_text(record.get("timestamp")),
        user_id=user_id,
        anonymous_id=anonymous_id,
        session_id=text(props.get("$session_id")),
        platform=platform_name(
            "server" if lib in _SERVER_LIBS else None, lib if lib in ("web",) else None,
            props.get("$os"), lib,
        ),
        country=country_code(first(props.get("$geoip_country_code"),
                                   props.get("$geoip_country_name"))),
        properties=props_out,
    )


def day_query(day: date, limit: int, offset: int) -> str:
    start = datetime.combine(day, dtime(0), tzinfo=UTC)
    end = start + timedelta(days=1)
    fmt = "%Y-%m-%d %H:%M:%S"
    return (
        f"SELECT {', '.join(COLUMNS)} FROM events"
        f" WHERE timestamp >= toDateTime('{start:{fmt}}', 'UTC')"
        f" AND timestamp < toDateTime('{end:{fmt}}', 'UTC')"
        f" ORDER BY timestamp, uuid LIMIT {int(limit)} OFFSET {int(offset)}"
    )


class PostHogQueryClient:
    """HogQL over ``/api/projects/{id}/query/``, paged with LIMIT/OFFSET for one UTC day."""

    def __init__(
        self,
        *,
        personal_api_key: str,
        project_id: str | int,
        region: str | None = "us",
        base_url: str | None = None,
        page_size: int | str = 10_000,
        max_pages: int = 10_000,
        timeout: float | tuple[float, float] = (10.0, 300.0),
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        clock: Clock = time.monotonic,
        queries_per_hour: int = 120,
    ) -> None:
        if not personal_api_key:
            raise ValueError("posthog: personal_api_key is required")
        if project_id in (None, ""):
            raise ValueError("posthog: project_id is required")
        region = (region or "us").strip().lower()
        if base_url is None and region not in REGIONS:
            raise ValueError(f"posthog: unknown region {region!r}; one of {sorted(REGIONS)}")
        self.base_url = (base_url or REGIONS[region]).rstrip("/")
        self.project_id = str(project_id)
        self.page_size = int(page_size)
        if not 1 <= self.page_size <= 50_000:
            raise ValueError("posthog: page_size must be 1..50000 (the query API's row cap)")
        self.max_pages = max_pages
        self.http = VendorSession(
            NAME,
            headers={"Authorization": f"Bearer {personal_api_key}",
                     "Content-Type": "application/json"},
            timeout=timeout, retry=retry, sleep=sleep,
            limiters=[SlidingWindowLimiter(queries_per_hour, 3600.0, clock=clock, sleep=sleep)],
        )

    @property
    def url(self) -> str:
        return f"{self.base_url}/api/projects/{self.project_id}/query/"

    def query_pages(self, day: date):
        """Yields each page's rows as dicts (column name -> value)."""
        offset = 0
        for _ in range(self.max_pages):
            body = {"query": {"kind": "HogQLQuery",
                              "query": day_query(day, self.page_size, offset)}}
            response = self.http.request("POST", self.url, json=body)
            try:
                payload = response.json()
            except ValueError as error:
                raise VendorHTTPError(NAME, "response is not JSON (truncated?)",
                                      status=response.status_code, url=self.url) from error
            finally:
                response.close()
            if not isinstance(payload, dict) or not isinstance(payload.get("results"), list):
                raise VendorHTTPError(NAME, f"unexpected response keys {sorted(payload)[:8]}"
                                      if isinstance(payload, dict) else "unexpected response",
                                      status=response.status_code, url=self.url)
            columns = payload.get("columns") or list(COLUMNS)
            rows = payload["results"]
            yield [dict(zip(columns, row, strict=False)) for row in rows]
            if len(rows) < self.page_size and payload.get("hasMore") is not True:
                return
            if not rows:  # hasMore true yet nothing returned: avoid looping forever
                return
            offset += len(rows)
        raise VendorHTTPError(NAME, f"more than {self.max_pages} pages for {day}; raise "
                              "page_size or max_pages", url=self.url)

    def fetch_rows(self, day: date) -> list[dict[str, Any]]:
        rows = [row for page in self.query_pages(day) for row in page]
        return dedupe_keep_last(map_rows(rows, map_record))


class PostHogSource(VendorApiSource):
    vendor = NAME
    client_class = PostHogQueryClient
