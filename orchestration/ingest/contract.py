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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# What a source delivers for each record; normalization adds `source` and `ingested_at`.
RECORD_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_name",
    "event_time",
    "user_id",
    "anonymous_id",
    "session_id",
    "platform",
    "country",
    "properties",
)
CONTRACT_COLUMNS: tuple[str, ...] = (*RECORD_FIELDS, "source", "ingested_at")
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


# pandas' ``str`` columns hold Arrow large strings: built as such, they convert without a copy.
_STRING = pa.large_string()


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

    Column at a time: string columns are trimmed, parsed and checked with vectorized pandas/Arrow
    operations; only the odd values (numbers, dicts, mixed types, strings the ISO parser rejects)
    and the rare rows that need one (quarantined, or without an ``event_id``) go through the
    per-value functions above, which define the rules. Properties are parsed once per distinct text.
    """
    ingested_at = ingested_at or datetime.now(UTC)
    records = records.reset_index(drop=True)
    n = len(records)
    if n == 0:
        return _typed(pd.DataFrame(columns=list(LANDING_COLUMNS)))

    def column(name: str) -> pd.Series:
        return records[name] if name in records.columns else pd.Series([None] * n, dtype=object)

    cleaned = {c: _clean_text_column(column(c)) for c in (*_ID_COLUMNS, *_TEXT_COLUMNS)}
    event_time = event_time_column(column("event_time"))
    properties = _properties_column(column("properties"))
    preset = column("quarantine_reason")
    if preset.isna().all():
        preset = np.full(n, None, dtype=object)
    else:
        preset = np.array(
            [None if _is_missing(v) else str(v) for v in preset.tolist()], dtype=object
        )

    name_missing = cleaned["event_name"].is_null().to_numpy(zero_copy_only=False)
    time_missing = event_time.isna().to_numpy()
    ids_missing = pc.and_(cleaned["user_id"].is_null(), cleaned["anonymous_id"].is_null()).to_numpy(
        zero_copy_only=False
    )
    props_bad = properties.is_null().to_numpy(zero_copy_only=False)
    derived = np.select(
        [name_missing, time_missing, ids_missing, props_bad],
        [MISSING_EVENT_NAME, UNPARSEABLE_TIME, MISSING_IDS, BAD_PROPERTIES],
        default="",
    ).astype(object)
    derived[derived == ""] = None
    reason = np.where(pd.notna(preset), preset, derived)
    quarantined = np.flatnonzero(pd.notna(reason))

    # Per record only where the rules need the whole original record.
    originals = records.drop(columns=["quarantine_reason", "raw_record"], errors="ignore")
    event_id = cleaned["event_id"]
    without_id = np.flatnonzero(event_id.is_null().to_numpy(zero_copy_only=False))
    if len(without_id):
        filled = event_id.to_pylist()
        for i, original in zip(
            without_id, originals.iloc[without_id].to_dict("records"), strict=True
        ):
            filled[i] = stable_event_id(source, original)
        event_id = pa.array(filled, type=_STRING)
    raw_record = np.full(n, None, dtype=object)
    if len(quarantined):
        given = column("raw_record")
        for i, original in zip(
            quarantined, originals.iloc[quarantined].to_dict("records"), strict=True
        ):
            raw = given.iloc[i]
            raw_record[i] = raw if isinstance(raw, str) else _to_json(original)

    if fetch_day is not None:
        partition_date = np.full(n, fetch_day, dtype=object)
    else:
        partition_date = np.where(time_missing, None, event_time.dt.date.to_numpy(dtype=object))

    frame = pd.DataFrame(
        {
            "event_id": _text(event_id),
            **{
                c: _text(cleaned[c])
                for c in ("user_id", "anonymous_id", "session_id", *_TEXT_COLUMNS)
            },
            "event_time": event_time,
            "properties": _text(properties),
            "source": _text(pa.array(np.full(n, source, dtype=object), type=_STRING)),
            "ingested_at": pd.Series(np.full(n, _naive_utc(ingested_at))),
            "partition_date": pd.Series(partition_date, dtype=object),
            "quarantine_reason": _text(pa.array(reason, type=_STRING)),
            "raw_record": _text(pa.array(raw_record, type=_STRING)),
        }
    )
    return _typed(frame[list(LANDING_COLUMNS)])


def _naive_utc(moment: datetime) -> np.datetime64:
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.tz_localize(None).as_unit("us").to_datetime64()


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    # Stored as naive UTC at microsecond precision: the warehouse never converts time zones, and
    # DuckDB cannot do interval arithmetic on pandas' nanosecond timestamps.
    for column in ("event_time", "ingested_at"):
        frame[column] = (
            pd.to_datetime(frame[column], utc=True).dt.tz_localize(None).astype("datetime64[us]")
        )
    return frame


# Exactly the characters Python's str.strip() removes (Arrow's own whitespace set differs).
_PY_WHITESPACE = "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def _is_text(series: pd.Series) -> bool:
    """True when every present value is a str (so the vectorized string path applies)."""
    return isinstance(series.dtype, pd.StringDtype) or (
        series.dtype == object
        and pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty")
    )


def _strings(series: pd.Series) -> pa.Array:
    """A text column as an Arrow string array (missing values null)."""
    if isinstance(series.dtype, pd.StringDtype):
        values = pa.array(series.array)
        if isinstance(values, pa.ChunkedArray):  # a column of concatenated frames
            values = values.combine_chunks()
        return values if values.type == _STRING else values.cast(_STRING)
    return pa.array(series.where(series.notna(), None).tolist(), type=_STRING)


def _clean_text_column(series: pd.Series) -> pa.Array:
    """:func:`_clean_text` over a column: trimmed strings, missing or blank as null."""
    if not _is_text(series):
        return pa.array([_clean_text(v) for v in series.tolist()], type=_STRING)
    trimmed = pc.utf8_trim(_strings(series), characters=_PY_WHITESPACE)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, _STRING), trimmed)


def event_time_column(series: pd.Series) -> pd.Series:
    """:func:`parse_event_time` over a column, as naive UTC ``datetime64[us]`` (NaT: unparseable).

    A column of timestamps (a Parquet file's, say) is converted as a whole, naive ones taken as
    UTC. ISO-8601 strings are parsed together; what that parser rejects (and every other value) is
    parsed one value at a time by :func:`parse_event_time`, which accepts more forms."""
    n = len(series)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        utc = series.dt.tz_convert("UTC") if series.dt.tz is not None else series
        return pd.Series(utc.dt.tz_localize(None).to_numpy(), index=range(n)).astype(
            "datetime64[us]"
        )
    parsed = pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]")
    todo = np.ones(n, dtype=bool)
    if _is_text(series):
        present = pc.fill_null(
            pc.not_equal(pc.utf8_trim(_strings(series), characters=_PY_WHITESPACE), ""), False
        ).to_numpy(zero_copy_only=False)
        text = pd.Series(pa.chunked_array([_strings(series)]).to_pandas(), index=range(n))
        fast = pd.to_datetime(text.where(present), format="ISO8601", utc=True, errors="coerce")
        parsed = fast.astype("datetime64[us, UTC]")
        todo = present & fast.isna().to_numpy()
    odd = np.flatnonzero(todo)
    for i, raw in zip(odd, series.iloc[odd].tolist(), strict=True):
        value = parse_event_time(raw)
        parsed.iloc[i] = pd.Timestamp(value) if value is not None else pd.NaT
    return parsed.dt.tz_localize(None).astype("datetime64[us]")


def _properties_column(series: pd.Series) -> pa.Array:
    """Canonical JSON text of each record's properties (null: not a JSON object), parsed once per
    distinct text."""
    if not _is_text(series):
        return pa.array([_canonical_properties(v) for v in series.tolist()], type=_STRING)
    encoded = pc.dictionary_encode(_strings(series))
    texts = [_canonical_properties(v) for v in encoded.dictionary.to_pylist()]
    table = pa.array([*texts, _canonical_properties(None)], type=_STRING)
    return pc.take(table, pc.fill_null(encoded.indices, len(texts)))  # null: missing, read as {}


def _canonical_properties(value: Any) -> str | None:
    properties = parse_properties(value)
    return _to_json(properties) if properties is not None else None


def _text(values: pa.Array) -> pd.Series:
    """A text column typed as building the frame from records would: ``str`` (NaN for missing)
    when any value is present, else ``object`` of None."""
    if values.null_count == len(values):
        return pd.Series([None] * len(values), dtype=object)
    return pa.chunked_array([values]).to_pandas()


def quarantine_counts(landing: pd.DataFrame) -> dict[str, int]:
    """How many records went to quarantine, by reason."""
    counts = landing["quarantine_reason"].dropna().value_counts()
    return {str(reason): int(n) for reason, n in counts.items()}
