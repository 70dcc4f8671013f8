"""The event contract: the one schema that every source is normalized to.

Sources (the demo generator, files, vendor APIs) hand over a DataFrame whose columns are the
contract's field names with values as the source delivered them. :func:`normalize` types them,
derives a stable ``event_id`` where the source has none, and marks every record that breaks the
contract with a ``quarantine_reason`` instead of dropping it. Nothing here knows about Dagster.

Times are UTC throughout and stored as naive UTC timestamps.

Landing rows are what the ``raw_events`` asset writes to the warehouse: the contract columns plus
``partition_date`` (the UTC day the record belongs to), ``quarantine_reason`` and ``raw_record``
(the original record as JSON, kept for quarantined rows only).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

CONTRACT_COLUMNS: tuple[str, ...] = (
    "event_id",
    "event_name",
    "event_time",
    "user_id",
    "anonymous_id",
    "session_id",
    "platform",
    "country",
    "properties",
    "source",
    "ingested_at",
)
LANDING_COLUMNS: tuple[str, ...] = (
    *CONTRACT_COLUMNS,
    "partition_date",
    "quarantine_reason",
    "raw_record",
)
_ID_COLUMNS = ("event_id", "user_id", "anonymous_id", "session_id")
_TEXT_COLUMNS = ("event_name", "platform", "country")

# Quarantine reasons: stable strings, counted in run metadata and kept in `quarantined_events`.
MISSING_EVENT_NAME = "missing event_name"
UNPARSEABLE_TIME = "unparseable event_time"
MISSING_IDS = "missing user_id and anonymous_id"
BAD_PROPERTIES = "properties is not a JSON object"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if value is pd.NaT or value is pd.NA:
        return True
    return isinstance(value, str) and value.strip() == ""


def _clean_text(value: Any) -> str | None:
    if _is_missing(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # ids read from CSV come back as floats
    return str(value).strip()


def parse_event_time(value: Any) -> datetime | None:
    """A UTC datetime from an ISO-8601 string, a datetime or epoch seconds; None if unparseable.

    Naive timestamps are taken as UTC. Epoch numbers above 1e11 are read as milliseconds.
    """
    if _is_missing(value) or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)):
            seconds = value / 1000 if abs(value) > 1e11 else value
            return datetime.fromtimestamp(seconds, tz=UTC)
        ts = pd.Timestamp(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None
    if ts is pd.NaT:
        return None
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.to_pydatetime()


def parse_properties(value: Any) -> dict | None:
    """Properties as a dict; None when the value is neither a mapping nor a JSON object string."""
    if _is_missing(value):
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def stable_event_id(source: str, record: Mapping[str, Any]) -> str:
    """A deterministic id for a record that has none, so that a re-sent record dedupes."""
    payload = json.dumps(
        {"source": source, **{k: record.get(k) for k in CONTRACT_COLUMNS if k != "ingested_at"}},
        sort_keys=True,
        default=str,
    )
    return "derived-" + hashlib.sha1(payload.encode()).hexdigest()


def _to_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def normalize(
    records: pd.DataFrame,
    *,
    source: str,
    fetch_day: date | None,
    ingested_at: datetime | None = None,
) -> pd.DataFrame:
    """Type a source's records into landing rows, quarantining (never dropping) the bad ones.

    ``records`` has contract field names as columns (missing columns are read as null) and may carry
    ``quarantine_reason`` and ``raw_record`` already, for records a source could not even parse.
    Every record lands in ``partition_date`` = ``fetch_day``, the UTC day the source was asked for,
    so that re-running that day replaces exactly what it wrote; without a ``fetch_day`` the record's
    own UTC day is used (and a record whose time cannot be parsed must then carry a fetch day).
    """
    ingested_at = ingested_at or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for record in records.to_dict("records"):
        preset_reason = record.get("quarantine_reason")
        original = {k: v for k, v in record.items() if k not in ("quarantine_reason", "raw_record")}
        ids = {c: _clean_text(record.get(c)) for c in _ID_COLUMNS}
        texts = {c: _clean_text(record.get(c)) for c in _TEXT_COLUMNS}
        event_time = parse_event_time(record.get("event_time"))
        properties = parse_properties(record.get("properties"))

        reason = None if _is_missing(preset_reason) else str(preset_reason)
        if reason is None:
            if texts["event_name"] is None:
                reason = MISSING_EVENT_NAME
            elif event_time is None:
                reason = UNPARSEABLE_TIME
            elif ids["user_id"] is None and ids["anonymous_id"] is None:
                reason = MISSING_IDS
            elif properties is None:
                reason = BAD_PROPERTIES

        if ids["event_id"] is None:
            ids["event_id"] = stable_event_id(source, original)
        day = fetch_day or (event_time.date() if event_time is not None else None)
        raw = record.get("raw_record")
        rows.append(
            {
                **ids,
                **texts,
                "event_time": event_time,
                "properties": _to_json(properties) if properties is not None else None,
                "source": source,
                "ingested_at": ingested_at,
                "partition_date": day,
                "quarantine_reason": reason,
                "raw_record": (raw if isinstance(raw, str) else _to_json(original))
                if reason is not None
                else None,
            }
        )
    frame = pd.DataFrame(rows, columns=list(LANDING_COLUMNS))
    # Stored as naive UTC at microsecond precision: the warehouse never converts time zones, and
    # DuckDB cannot do interval arithmetic on pandas' nanosecond timestamps.
    for column in ("event_time", "ingested_at"):
        frame[column] = (
            pd.to_datetime(frame[column], utc=True).dt.tz_localize(None).astype("datetime64[us]")
        )
    return frame


def quarantine_counts(landing: pd.DataFrame) -> dict[str, int]:
    """How many records went to quarantine, by reason."""
    counts = landing["quarantine_reason"].dropna().value_counts()
    return {str(reason): int(n) for reason, n in counts.items()}
