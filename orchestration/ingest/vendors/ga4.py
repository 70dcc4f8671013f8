"""Google Analytics 4: rows of the BigQuery export (``events_YYYYMMDD``) -> the contract.

There is no API client: export the table to newline-delimited JSON or Parquet and read it with
``ANALYTICS_SOURCE=file ANALYTICS_SOURCE_FORMAT=ga4``
(:class:`orchestration.ingest.files.FileSource`).
``map_record`` accepts both encodings: repeated records as JSON lists or as the numpy arrays of
dicts that Parquet gives, and BigQuery's JSON encoding of INT64 as strings.

Fields: ``event_timestamp`` (microseconds, UTC) -> ``event_time``; ``user_id`` -> ``user_id``;
``user_pseudo_id`` (the client/app-instance id) -> ``anonymous_id``; the ``ga_session_id`` event
parameter (the session's start in seconds, unique only per user) -> ``session_id`` as
``"<user_pseudo_id>:<ga_session_id>"`` (Google's own recipe for a unique session key);
``platform`` (WEB/IOS/ANDROID) -> lower case; ``geo.country`` (a name) -> ISO code. Every
``event_params`` entry becomes a property (first non-null of string/int/float/double value);
``user_properties`` go to ``properties.user_properties``; ``ecommerce.purchase_revenue`` ->
``revenue``; ``firebase_exp_*`` user properties -> ``experiments``. UTM: the event-level
``collected_traffic_source.manual_*`` if present, else the ``source``/``medium``/``campaign``
event parameters, else ``traffic_source.{source,medium,name}`` (which is the *user's first*
acquisition, so only a fallback). Everything else non-null (device, geo, app_info, traffic
sources, ecommerce, items, ...) is kept in ``properties.vendor``.

event_id: the export has no insert id. We derive ``ga4-<sha1>`` from (user_pseudo_id,
event_timestamp, event_name, event_bundle_sequence_id, batch_page_id, batch_ordering_id,
batch_event_index, and the canonical JSON of the event parameters). The batch_* fields exist in
exports since 2024 and make the id unique per hit; for older exports the parameters hash separates
different events logged in the same microsecond. Two hits identical in all of these are
indistinguishable and collapse to one id (a file's row position is deliberately not used: it would
change the id whenever the same rows are exported in another order or split into other files).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from orchestration.ingest.vendors.common import (
    build_properties,
    contract_record,
    country_code,
    first,
    is_blank,
    platform_name,
    text,
    time_from_epoch,
    to_plain,
)

NAME = "ga4"
_VALUE_KEYS = ("string_value", "int_value", "float_value", "double_value")
_MAPPED = {"event_timestamp", "event_name", "event_params", "user_id", "user_pseudo_id",
           "platform", "user_properties"}
# Top-level INT64 columns: BigQuery's JSON export writes them as strings, Parquet as integers.
_INT64_FIELDS = ("event_bundle_sequence_id", "event_server_timestamp_offset", "batch_page_id",
                 "batch_ordering_id", "batch_event_index", "event_previous_timestamp",
                 "user_first_touch_timestamp")
_ID_FIELDS = ("user_pseudo_id", "event_timestamp", "event_name", "event_bundle_sequence_id",
              "batch_page_id", "batch_ordering_id", "batch_event_index")


def _value(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return to_plain(value)
    for key in _VALUE_KEYS:
        item = value.get(key)
        if not is_blank(item):
            item = to_plain(item)
            if key == "int_value" and isinstance(item, str) and item.lstrip("-").isdigit():
                return int(item)  # BigQuery JSON exports INT64 as a string
            if key == "int_value" and isinstance(item, float) and item.is_integer():
                return int(item)  # pandas reads a nullable INT64 inside a struct as float
            if key in ("float_value", "double_value") and isinstance(item, str):
                try:
                    return float(item)
                except ValueError:
                    return item
            return item
    return None


def key_values(entries: Any) -> dict[str, Any]:
    """``[{"key": k, "value": {"string_value": ...}}, ...]`` (list or numpy array) -> {k: value}."""
    if entries is None or isinstance(entries, (str, bytes, Mapping)):
        return {}
    try:
        items = list(entries)
    except TypeError:
        return {}
    result: dict[str, Any] = {}
    for entry in items:
        if isinstance(entry, Mapping) and text(entry.get("key")) is not None:
            result[str(entry["key"])] = _value(entry.get("value"))
    return result


def _nested(record: Mapping[str, Any], field: str) -> dict[str, Any]:
    value = record.get(field)
    return to_plain(value) if isinstance(value, Mapping) else {}


def derived_event_id(record: Mapping[str, Any], params: Mapping[str, Any]) -> str:
    key = [text(record.get(f)) for f in _ID_FIELDS]
    payload = json.dumps([key, params], sort_keys=True, default=str, separators=(",", ":"))
    return "ga4-" + hashlib.sha1(payload.encode()).hexdigest()


def map_record(record: dict[str, Any]) -> dict[str, Any]:
    """One GA4 export row -> contract fields. Never raises."""
    params = key_values(record.get("event_params"))
    user_props = key_values(record.get("user_properties"))
    pseudo = text(record.get("user_pseudo_id"))
    session = text(params.get("ga_session_id"))
    session_id = (f"{pseudo}:{session}" if pseudo else session) if session else None
    geo = _nested(record, "geo")
    device = _nested(record, "device")
    collected = _nested(record, "collected_traffic_source")
    first_touch = _nested(record, "traffic_source")
    ecommerce = _nested(record, "ecommerce")
    utm = {
        "utm_source": first(collected.get("manual_source"), params.get("source"),
                            first_touch.get("source")),
        "utm_medium": first(collected.get("manual_medium"), params.get("medium"),
                            first_touch.get("medium")),
        "utm_campaign": first(collected.get("manual_campaign_name"), params.get("campaign"),
                              first_touch.get("name")),
    }
    experiments = {k: v for k, v in user_props.items() if k.startswith("firebase_exp_")}
    vendor = {k: to_plain(v) for k, v in record.items() if k not in _MAPPED}
    for field in _INT64_FIELDS:
        value = vendor.get(field)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            vendor[field] = int(value)
    vendor["user_pseudo_id"] = pseudo
    properties = build_properties(
        params, utm=utm, revenue=ecommerce.get("purchase_revenue"), experiments=experiments,
        user_properties=user_props, vendor=vendor,
    )
    return contract_record(
        event_id=derived_event_id(record, params),
        event_name=record.get("event_name"),
        event_time=time_from_epoch(record.get("event_timestamp"), "us"),
        user_id=text(record.get("user_id")),
        anonymous_id=pseudo,
        session_id=session_id,
        platform=platform_name(record.get("platform"), device.get("operating_system")),
        country=country_code(geo.get("country")),
        properties=properties,
    )
