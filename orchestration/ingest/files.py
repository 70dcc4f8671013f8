"""Plain files in the event contract (or a vendor's export format): JSON lines, CSV or Parquet.

``ANALYTICS_SOURCE_PATH`` is a file or a folder (read recursively, in name order). Records are
assigned to the UTC day of their ``event_time``; a record whose time cannot be parsed (or a line
that is not JSON) is kept and quarantined in the first day the files cover, so nothing is lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from orchestration.ingest.contract import parse_event_time

MALFORMED_LINE = "malformed JSON line"
SUFFIXES = {
    ".jsonl": "json", ".ndjson": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"
}

# A format maps one record of a file to contract field names. ``events`` is the contract itself;
# vendor formats register their mappers here (see orchestration/ingest/vendors).
RecordMapper = Callable[[dict[str, Any]], dict[str, Any]]


def _identity(record: dict[str, Any]) -> dict[str, Any]:
    return record


def record_mappers() -> dict[str, RecordMapper]:
    mappers: dict[str, RecordMapper] = {"events": _identity}
    try:
        from orchestration.ingest.vendors import FILE_FORMATS
    except ImportError:
        return mappers
    return {**mappers, **FILE_FORMATS}


def _read_json_lines(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                where = f"{path.name}:{line_number}"
                yield {"quarantine_reason": f"{MALFORMED_LINE} ({where}: {error.msg})",
                       "raw_record": line.rstrip("\n")}
                continue
            if not isinstance(record, dict):
                where = f"{path.name}:{line_number}"
                yield {"quarantine_reason": f"{MALFORMED_LINE} ({where}: not an object)",
                       "raw_record": line.rstrip("\n")}
                continue
            yield record


def _read_table(path: Path, kind: str) -> list[dict[str, Any]]:
    if kind == "csv":
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    else:
        frame = pd.read_parquet(path)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


class FileSource:
    name = "file"

    def __init__(self, path: str | Path, fmt: str = "events") -> None:
        self.path = Path(path)
        mappers = record_mappers()
        if fmt not in mappers:
            raise ValueError(f"unknown ANALYTICS_SOURCE_FORMAT {fmt!r}; one of {sorted(mappers)}")
        self.format = fmt
        self._map = mappers[fmt]
        # A vendor's export read from files is that vendor's data: `source` says so.
        self.name = "file" if fmt == "events" else fmt

    def files(self) -> list[Path]:
        if not self.path.exists():
            raise FileNotFoundError(f"ANALYTICS_SOURCE_PATH {self.path} does not exist")
        candidates = [self.path] if self.path.is_file() else sorted(self.path.rglob("*"))
        found = [p for p in candidates if p.is_file() and p.suffix.lower() in SUFFIXES]
        if not found:
            raise FileNotFoundError(f"no .jsonl/.json/.csv/.parquet files under {self.path}")
        return found

    def _records(self) -> Iterator[dict[str, Any]]:
        for path in self.files():
            kind = SUFFIXES[path.suffix.lower()]
            rows = _read_json_lines(path) if kind == "json" else _read_table(path, kind)
            for row in rows:
                yield row if "quarantine_reason" in row else self._map(row)

    @cached_property
    def _by_day(self) -> dict[date, pd.DataFrame]:
        frame = pd.DataFrame(list(self._records()))
        if frame.empty:
            return {}
        if "event_time" not in frame:
            frame["event_time"] = None
        days = frame["event_time"].map(parse_event_time).map(lambda t: t.date() if t else None)
        known = sorted(d for d in days.dropna().unique())
        # Unplaceable records are quarantined on the first day, so that they are kept somewhere.
        days = days.fillna(known[0] if known else date(1970, 1, 1))
        return {d: part.reset_index(drop=True) for d, part in frame.groupby(days.values)}

    def available_days(self) -> list[date]:
        return sorted(self._by_day)

    def fetch_day(self, day: date) -> pd.DataFrame:
        return self._by_day.get(day, pd.DataFrame())
