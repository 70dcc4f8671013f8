"""Helpers shared by the vendor mappers and API sources (no Dagster, no network).

Conventions every vendor mapper follows (the table is in ``MAPPING.md``):

* ``map_record`` never raises on a strange record: a value it cannot interpret is passed through
  unchanged so that :func:`orchestration.ingest.contract.normalize` quarantines the record with its
  reason (unparseable time, missing ids, properties not an object).
* ``event_time`` is an ISO-8601 string in UTC (``2023-08-24T07:00:00.123000+00:00``).
* ``platform`` is lower case, with the vendors' spellings of the big three folded to
  ``web`` / ``ios`` / ``android``; ``country`` is an ISO 3166-1 alpha-2 code where the vendor gives
  one or a name we know (else the vendor's value, unchanged).
* ``properties`` holds the event's own properties as delivered, plus the normalised keys
  ``utm_source``, ``utm_medium``, ``utm_campaign``, ``revenue`` and ``experiments``
  ({experiment or flag: variant}) when known, ``user_properties`` when the vendor sends them with
  the event, and ``vendor`` (the vendor's other per-event fields that have no contract column).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd

from orchestration.ingest.contract import RECORD_FIELDS
from orchestration.ingest.files import MALFORMED_LINE

FRAME_COLUMNS: tuple[str, ...] = (*RECORD_FIELDS, "quarantine_reason", "raw_record")
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")


# --- values ---------------------------------------------------------------------------------


def is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def first(*values: Any) -> Any:
    """The first value that is not None/NaN/blank, else None."""
    for value in values:
        if not is_blank(value):
            return value
    return None


def text(value: Any) -> str | None:
    """An id or label as a string (ints stay ints: 42 -> "42", 42.0 -> "42"); None if blank."""
    if is_blank(value):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def number(value: Any) -> float | None:
    if is_blank(value) or isinstance(value, bool):
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def to_plain(value: Any) -> Any:
    """JSON-ready Python values from what pandas/pyarrow hand over (numpy arrays and scalars)."""
    if isinstance(value, Mapping):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy array / scalar
        return to_plain(value.tolist())
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return value


def as_dict(value: Any) -> dict[str, Any] | None:
    """A mapping (or a JSON object string) as a plain dict; None otherwise."""
    if isinstance(value, Mapping):
        return to_plain(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def without_blanks(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not is_blank(v) and v != {} and v != []}


# --- time -----------------------------------------------------------------------------------


def utc_iso(value: datetime | pd.Timestamp) -> str:
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat(timespec="microseconds")


def time_from_text(value: Any) -> Any:
    """An ISO-ish timestamp (naive = UTC) as a UTC ISO string; the raw value if unparseable."""
    if is_blank(value):
        return None
    if isinstance(value, (datetime, pd.Timestamp)):
        return utc_iso(value)
    try:
        return utc_iso(pd.Timestamp(str(value)))
    except (ValueError, TypeError, OverflowError):
        return value


def time_from_epoch(value: Any, unit: str) -> Any:
    """Epoch ``s``/``ms``/``us`` (number or digit string) as a UTC ISO string; raw if unusable."""
    if is_blank(value) or isinstance(value, bool):
        return None
    try:
        amount = int(value) if isinstance(value, (int, str)) else float(value)
        ts = pd.Timestamp(amount, unit=unit, tz="UTC")
    except (TypeError, ValueError, OverflowError):
        try:
            ts = pd.Timestamp(float(value), unit=unit, tz="UTC")
        except (TypeError, ValueError, OverflowError):
            return value
    return utc_iso(ts)


# --- platform and country -------------------------------------------------------------------

_PLATFORMS = {
    "web": "web", "javascript": "web", "js": "web", "browser": "web", "posthog-js": "web",
    "posthog-js-lite": "web", "ios": "ios", "iphone": "ios", "ipados": "ios", "swift": "ios",
    "posthog-ios": "ios", "android": "android", "posthog-android": "android",
}


def platform_name(*candidates: Any) -> str | None:
    """The first candidate folded to web/ios/android when recognisable, else lower-cased."""
    value = text(first(*candidates))
    if value is None:
        return None
    lowered = value.lower()
    return _PLATFORMS.get(lowered, lowered)


def _country_table() -> dict[str, str]:
    table: dict[str, str] = {}
    try:  # babel ships CLDR's English territory names; optional, the aliases below still work.
        from babel import Locale

        for code, name in Locale("en").territories.items():
            if len(code) == 2 and code.isalpha():
                table[name.casefold()] = code
    except Exception:  # noqa: BLE001 - any import/data problem just means fewer names known
        pass
    aliases = {
        "United States": "US", "United States of America": "US", "USA": "US",
        "United Kingdom": "GB", "UK": "GB", "Great Britain": "GB", "Germany": "DE",
        "France": "FR", "Spain": "ES", "Italy": "IT", "Netherlands": "NL",
        "The Netherlands": "NL", "Canada": "CA", "Australia": "AU", "India": "IN",
        "Brazil": "BR", "Japan": "JP", "China": "CN", "Mexico": "MX", "Ireland": "IE",
        "South Korea": "KR", "Republic of Korea": "KR", "Korea, Republic of": "KR",
        "Russia": "RU", "Russian Federation": "RU", "Czech Republic": "CZ", "Czechia": "CZ",
        "Turkey": "TR", "Türkiye": "TR", "Vietnam": "VN", "Viet Nam": "VN",
        "Hong Kong": "HK", "Macau": "MO", "Macao": "MO", "Taiwan": "TW", "Iran": "IR",
        "Myanmar": "MM", "Myanmar (Burma)": "MM", "Ivory Coast": "CI", "Côte d'Ivoire": "CI",
        "Palestine": "PS", "Bosnia and Herzegovina": "BA", "Trinidad and Tobago": "TT",
        "Democratic Republic of the Congo": "CD", "Republic of the Congo": "CG",
        "North Macedonia": "MK", "Eswatini": "SZ", "Cape Verde": "CV", "Syria": "SY",
        "Laos": "LA", "Moldova": "MD", "Bolivia": "BO", "Venezuela": "VE", "Tanzania": "TZ",
        "United Arab Emirates": "AE", "Saudi Arabia": "SA", "South Africa": "ZA",
        "New Zealand": "NZ", "Switzerland": "CH", "Austria": "AT", "Belgium": "BE",
        "Sweden": "SE", "Norway": "NO", "Denmark": "DK", "Finland": "FI", "Poland": "PL",
        "Portugal": "PT", "Singapore": "SG", "Israel": "IL", "Argentina": "AR",
    }
    table.update({name.casefold(): code for name, code in aliases.items()})
    return table


_COUNTRIES = _country_table()


def country_code(value: Any) -> str | None:
    """ISO 3166-1 alpha-2 for a code or a known English name; other values unchanged; None if blank.

    Vendors' placeholders for "unknown" ("(not set)", "Unknown") become None.
    """
    name = text(value)
    if name is None or name.casefold() in ("(not set)", "unknown", "(unknown)", "--", "zz"):
        return None
    if len(name) == 2 and name.isalpha():
        return name.upper()
    return _COUNTRIES.get(name.casefold(), name)


# --- properties -----------------------------------------------------------------------------


def build_properties(
    event_properties: Mapping[str, Any] | None,
    *,
    utm: Mapping[str, Any] | None = None,
    revenue: Any = None,
    experiments: Mapping[str, Any] | None = None,
    user_properties: Mapping[str, Any] | None = None,
    vendor: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The contract ``properties``: the event's own, then the normalised keys (see module doc)."""
    properties = to_plain(dict(event_properties or {}))
    for key in UTM_KEYS:
        value = text((utm or {}).get(key))
        if value is not None:
            properties[key] = value
    amount = number(revenue)
    if amount is not None:
        properties["revenue"] = amount
    if experiments:
        properties["experiments"] = {str(k): text(v) for k, v in experiments.items()}
    if user_properties:
        properties["user_properties"] = to_plain(dict(user_properties))
    vendor = without_blanks(to_plain(dict(vendor or {})))
    if vendor:
        properties["vendor"] = vendor
    return properties


def contract_record(**fields: Any) -> dict[str, Any]:
    """A mapped record: exactly the contract fields a source provides (no source/ingested_at)."""
    return {column: fields.get(column) for column in FRAME_COLUMNS[:-2]}


# --- JSON lines, quarantine rows and frames -------------------------------------------------


def quarantine_row(raw: str, detail: str) -> dict[str, Any]:
    return {"quarantine_reason": f"{MALFORMED_LINE} ({detail})", "raw_record": raw}


def parse_json_lines(lines: Iterable[bytes | str], where: str) -> Iterator[dict[str, Any]]:
    """Records from JSON lines; a line that is not a JSON object becomes a quarantine row."""
    for number_, line in enumerate(lines, start=1):
        raw = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
        raw = raw.rstrip("\r\n")
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            yield quarantine_row(raw, f"{where}:{number_}: {error.msg}")
            continue
        if not isinstance(record, dict):
            yield quarantine_row(raw, f"{where}:{number_}: not an object")
            continue
        yield record


def map_rows(
    rows: Iterable[dict[str, Any]], mapper: Callable[[dict[str, Any]], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Mapped records; quarantine rows (already carrying a reason) are passed as they are."""
    return [row if "quarantine_reason" in row else mapper(row) for row in rows]


def dedupe_keep_last(rows: list[dict[str, Any]], key: str = "event_id") -> list[dict[str, Any]]:
    """Drop all but the LAST row of each non-blank ``key``, keeping the survivors' order.

    Rows without the key (and quarantine rows) are all kept.
    """
    last: dict[Any, int] = {}
    for index, row in enumerate(rows):
        value = row.get(key)
        if "quarantine_reason" not in row and not is_blank(value):
            last[value] = index
    return [
        row
        for index, row in enumerate(rows)
        if "quarantine_reason" in row or is_blank(row.get(key)) or last[row.get(key)] == index
    ]


def records_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The DataFrame a source hands to ``normalize`` (an empty day has the columns, no rows)."""
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS)).astype(object)


# --- days -----------------------------------------------------------------------------------


def as_date(value: date | datetime | str | None) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value.strip())


def utc_today() -> date:
    return datetime.now(UTC).date()


def day_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]
