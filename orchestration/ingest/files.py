"""Plain files in the event contract (or a vendor's export format): JSON lines, CSV or Parquet.

``ANALYTICS_SOURCE_PATH`` is a file or a folder (read recursively, in name order). Records are
assigned to the UTC day of their ``event_time``; a record whose time cannot be parsed (or a line
that is not JSON) is kept and quarantined in the first day the files cover, so nothing is lost.

Two ways to read, with the same result:

* **CSV and Parquet in the contract's own format** (``events``) are read a column at a time. On
  the first call the source reads only each file's ``event_time`` column and notes the day of every
  row; :meth:`FileSource.fetch_day` then reads only the files that hold rows of that day and keeps
  those rows. So a folder of daily exports at a million users is read about once per run, and only
  one file's rows are in memory at a time, never the whole folder.
* **JSON lines, and every vendor format** go record by record (a malformed line must be kept with
  its line number, and a vendor's mapper takes one record), all held in memory once read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from orchestration.ingest.contract import event_time_column, parse_event_time

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


def _read_frame(path: Path, kind: str, columns: list[str] | None = None) -> pd.DataFrame:
    """A CSV (every value text, empty as missing) or Parquet file as a frame; ``columns``: only
    those of them that the file has."""
    if kind == "csv":
        if columns is not None:
            header = pd.read_csv(path, dtype=str, nrows=0).columns
            columns = [c for c in columns if c in header]
        return pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], usecols=columns
        )
    if columns is not None:
        names = pq.read_schema(path).names
        columns = [c for c in columns if c in names]
    return pq.read_table(path, columns=columns).to_pandas()


def _read_table(path: Path, kind: str) -> list[dict[str, Any]]:
    frame = _read_frame(path, kind)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


def _days_of(event_time: pd.Series) -> np.ndarray:
    """The UTC day of each event time as ``datetime64[D]``; NaT where it does not parse (by the
    contract's rules, :func:`orchestration.ingest.contract.event_time_column`)."""
    return event_time_column(event_time).to_numpy().astype("datetime64[D]")


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
        # The record-by-record files' records (filled as ``_days`` reads them), and the last
        # tabular file read whole, kept for the next day it holds rows of.
        self._records: dict[Path, pd.DataFrame] = {}
        self._cached: tuple[Path, pd.DataFrame] | None = None

    def files(self) -> list[Path]:
        if not self.path.exists():
            raise FileNotFoundError(f"ANALYTICS_SOURCE_PATH {self.path} does not exist")
        candidates = [self.path] if self.path.is_file() else sorted(self.path.rglob("*"))
        found = [p for p in candidates if p.is_file() and p.suffix.lower() in SUFFIXES]
        if not found:
            raise FileNotFoundError(f"no .jsonl/.json/.csv/.parquet files under {self.path}")
        return found

    def _is_tabular(self, path: Path) -> bool:
        return self.format == "events" and SUFFIXES[path.suffix.lower()] in ("csv", "parquet")

    def _read_records(self, path: Path) -> Iterator[dict[str, Any]]:
        kind = SUFFIXES[path.suffix.lower()]
        rows = _read_json_lines(path) if kind == "json" else _read_table(path, kind)
        for row in rows:
            yield row if "quarantine_reason" in row else self._map(row)

    @cached_property
    def _days(self) -> dict[Path, np.ndarray]:
        """For each file, the UTC day of each of its rows (NaT: unplaceable). A tabular file is
        read for its ``event_time`` column only; a record-by-record file is read whole and its
        records kept (``_records``)."""
        days = {}
        for path in self.files():
            if self._is_tabular(path):
                times = _read_frame(path, SUFFIXES[path.suffix.lower()], columns=["event_time"])
                if "event_time" not in times:  # no time at all: every row is unplaceable
                    times = _read_frame(path, SUFFIXES[path.suffix.lower()]).assign(
                        event_time=None
                    )
                days[path] = _days_of(times["event_time"])
            else:
                records = pd.DataFrame(list(self._read_records(path)))
                if "event_time" not in records:
                    records["event_time"] = None
                self._records[path] = records
                placed = [parse_event_time(v) for v in records["event_time"].tolist()]
                days[path] = np.array(
                    [None if t is None else t.date() for t in placed], dtype="datetime64[D]"
                )
        return days

    @cached_property
    def _first_day(self) -> np.datetime64:
        """Where unplaceable records go: the first day the files cover (1970-01-01 if none)."""
        known = [days[~np.isnat(days)] for days in self._days.values()]
        firsts = [days.min() for days in known if len(days)]
        return min(firsts) if firsts else np.datetime64("1970-01-01", "D")

    def _placed(self, days: np.ndarray) -> np.ndarray:
        return np.where(np.isnat(days), self._first_day, days)

    def available_days(self) -> list[date]:
        days = set()
        for of_rows in self._days.values():
            days.update(np.unique(self._placed(of_rows)).tolist())
        return sorted(days)

    def _rows(self, path: Path, wanted: np.ndarray) -> pd.DataFrame:
        if path in self._records:
            return self._records[path][wanted]
        if self._cached is None or self._cached[0] != path:
            self._cached = None  # let the previous file go before reading the next
            self._cached = (path, _read_frame(path, SUFFIXES[path.suffix.lower()]))
        return self._cached[1][wanted]

    def fetch_day(self, day: date) -> pd.DataFrame:
        """The day's records from every file that has some, in file order."""
        target = np.datetime64(day, "D")
        frames = []
        for path, of_rows in self._days.items():
            wanted = self._placed(of_rows) == target
            if wanted.any():
                frames.append(self._rows(path, wanted))
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)
