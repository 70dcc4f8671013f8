"""Amplitude: the Export API, and the mapping of one exported event to the contract.

Protocol (Amplitude "Export API" docs):
``GET {base}/api/2/export?start=YYYYMMDDTHH&end=YYYYMMDDTHH`` (hours inclusive, UTC; a whole
day is ``T00`` to ``T23``), HTTP Basic ``api_key:secret_key``. The body is a ZIP archive whose
members are gzipped JSON-lines files (one per hour). 404 means there is no data in the range: an
empty day, not an error. 400 means the range exceeds 4 GB. Hosts:
``https://amplitude.com`` (default/US) and ``https://analytics.eu.amplitude.com`` (EU).

Important: the range selects events by ``server_upload_time`` (when Amplitude received them), not
by ``event_time``. So a day partition here holds the events *uploaded* that UTC day; a late event
(offline mobile client) lands in the day it was uploaded, never lost and never twice. Exports are
available about 2 hours after upload, hence the default look-back re-pull of recent days.

Faults: a body shorter than ``Content-Length``, a truncated/corrupt ZIP or a bad gzip member raises
:class:`TruncatedDownloadError` (the partition fails; re-run later). A malformed JSON line inside a
member becomes a quarantine row.

Mapping: ``uuid`` (Amplitude's unique id of the stored event) -> ``event_id``, falling back to
``$insert_id`` (the client's dedupe key, kept in ``properties.vendor``); ``user_id`` -> ``user_id``;
``device_id`` -> ``anonymous_id``; ``session_id`` (ms epoch of the session start, per device; -1 =
no session) -> ``"<device_id or user_id>:<session_id>"`` so it is unique across users;
``event_time`` ("YYYY-MM-DD HH:MM:SS.ffffff", UTC) -> ISO UTC; ``platform``; ``country`` (a name,
e.g. "United Kingdom") -> ISO code. ``event_properties`` are the properties; ``user_properties``
are kept under ``properties.user_properties``; ``[Experiment] <flag>`` user properties and
``$exposure`` events give ``experiments``.
"""

from __future__ import annotations

import gzip
import time
import zipfile
import zlib
from collections.abc import Iterator
from datetime import date
from typing import IO, Any

import requests

from orchestration.ingest.vendors.api import VendorApiSource
from orchestration.ingest.vendors.common import (
    as_dict,
    build_properties,
    contract_record,
    country_code,
    first,
    map_rows,
    number,
    parse_json_lines,
    platform_name,
    text,
    time_from_text,
)
from orchestration.ingest.vendors.http import (
    RetryPolicy,
    Sleep,
    TruncatedDownloadError,
    VendorSession,
)

NAME = "amplitude"
REGIONS = {"us": "https://amplitude.com", "eu": "https://analytics.eu.amplitude.com"}
EXPORT_PATH = "/api/2/export"
_MAPPED = {
    "uuid", "event_type", "event_time", "user_id", "device_id", "session_id", "platform",
    "country", "event_properties", "user_properties",
}
_EXPERIMENT_PREFIX = "[Experiment] "


def _revenue(record: dict[str, Any], props: dict[str, Any]) -> Any:
    explicit = first(record.get("revenue"), props.get("$revenue"), props.get("revenue"))
    if explicit is not None:
        return explicit
    price, quantity = number(props.get("$price")), number(props.get("$quantity"))
    if price is not None:
        return price * (quantity if quantity is not None else 1)
    return None


def map_record(record: dict[str, Any]) -> dict[str, Any]:
    """One Amplitude export event -> contract fields. Never raises."""
    props = as_dict(record.get("event_properties")) or {}
    user_props = as_dict(record.get("user_properties")) or {}
    experiments = {
        key.removeprefix(_EXPERIMENT_PREFIX): value
        for key, value in user_props.items()
        if key.startswith(_EXPERIMENT_PREFIX) and text(value) is not None
    }
    if record.get("event_type") == "$exposure" and text(props.get("flag_key")):
        experiments[text(props["flag_key"])] = props.get("variant")
    device = text(record.get("device_id"))
    user = text(record.get("user_id"))
    session = text(record.get("session_id"))
    session_id = None
    if session is not None and session != "-1":
        session_id = f"{device or user}:{session}" if (device or user) else session
    utm = {k: first(props.get(k), user_props.get(k)) for k in ("utm_source", "utm_medium",
                                                               "utm_campaign")}
    vendor = {k: v for k, v in record.items() if k not in _MAPPED}
    vendor["session_id"] = record.get("session_id")
    properties = build_properties(
        props, utm=utm, revenue=_revenue(record, props), experiments=experiments,
        user_properties=user_props, vendor=vendor,
    )
    return contract_record(
        event_id=text(first(record.get("uuid"), record.get("$insert_id"))),
        event_name=record.get("event_type"),
        event_time=time_from_text(record.get("event_time")),
        user_id=user,
        anonymous_id=device,
        session_id=session_id,
        platform=platform_name(record.get("platform"), record.get("os_name")),
        country=country_code(record.get("country")),
        properties=properties,
    )


def _member_lines(archive: zipfile.ZipFile, name: str) -> Iterator[bytes]:
    with archive.open(name) as member:
        head = member.read(2)
    with archive.open(name) as member:
        if name.endswith(".gz") or head == b"\x1f\x8b":
            with gzip.GzipFile(fileobj=member) as unzipped:
                yield from unzipped
        else:
            yield from member


def read_export_archive(body: IO[bytes], where: str = "export") -> list[dict[str, Any]]:
    """Records (and quarantine rows) from an export ZIP; raises TruncatedDownloadError if corrupt.

    Every member is fully decoded before anything is returned, so a bad member fails the whole
    day rather than landing part of it.
    """
    rows: list[dict[str, Any]] = []
    try:
        with zipfile.ZipFile(body) as archive:
            for name in sorted(n for n in archive.namelist() if not n.endswith("/")):
                try:
                    lines = list(_member_lines(archive, name))
                except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
                    raise TruncatedDownloadError(
                        NAME, f"bad gzip member {name!r} in {where} ({error})"
                    ) from error
                rows.extend(parse_json_lines(lines, f"{where} {name}"))
    except zipfile.BadZipFile as error:
        raise TruncatedDownloadError(NAME, f"truncated or corrupt ZIP in {where} ({error})") \
            from error
    return rows


class AmplitudeExportClient:
    """Export API, one request per UTC day (hours T00..T23 of server upload time)."""

    def __init__(
        self,
        *,
        api_key: str,
        secret_key: str,
        region: str | None = "us",
        base_url: str | None = None,
        timeout: float | tuple[float, float] = (10.0, 900.0),
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
    ) -> None:
        if not api_key or not secret_key:
            raise ValueError("amplitude: api_key and secret_key are required")
        region = (region or "us").strip().lower()
        if base_url is None and region not in REGIONS:
            raise ValueError(f"amplitude: unknown region {region!r}; one of {sorted(REGIONS)}")
        self.base_url = (base_url or REGIONS[region]).rstrip("/")
        self.http = VendorSession(
            NAME, auth=requests.auth.HTTPBasicAuth(api_key, secret_key), timeout=timeout,
            retry=retry, sleep=sleep,
        )

    def fetch_rows(self, day: date) -> list[dict[str, Any]]:
        stamp = day.strftime("%Y%m%d")
        params = {"start": f"{stamp}T00", "end": f"{stamp}T23"}
        response = self.http.request("GET", self.base_url + EXPORT_PATH, params=params,
                                     stream=True, accept_statuses=(404,))
        if response.status_code == 404:  # "no data for this range"
            response.close()
            return []
        with self.http.download(response) as body:
            rows = read_export_archive(body, f"export {stamp}")
        return map_rows(rows, map_record)


class AmplitudeSource(VendorApiSource):
    vendor = NAME
    client_class = AmplitudeExportClient
