"""Plain files in the event contract (or a vendor's export format): JSON lines, CSV or Parquet.

``ANALYTICS_SOURCE_PATH`` is a file or a folder (read recursively, in name order). Records are
assigned to the UTC day of their ``event_time``; a record whose time cannot be parsed (or a line
that is not JSON) is kept and quarantined in the first day the files cover, so nothing is lost.

Two ways to read, with the same result:

* **CSV and Parquet in the contract's own format** (``events``) are read a column at a time: the
  source reads a file's ``event_time`` column to note the day of every row, and
  :meth:`FileSource.fetch_day` reads only the files that hold rows of the day asked for and keeps
  those rows. A file that holds one day only is taken whole, without that first read. Only one
  file's rows are in memory at a time, never the whole folder.
* **JSON lines, and every vendor format** go record by record (a malformed line must be kept with
  its line number, and a vendor's mapper takes one record), each file held in memory once read.

Which days each file holds is kept between runs in a small JSON index (``ANALYTICS_SOURCE_INDEX``;
:class:`DayIndex`), valid while the file keeps its size and modification time. So a daily run
reads the files holding its day, not every file's times: without it, a folder of a year of daily
exports would be read in full (the time column of each file) to find one day's rows.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from orchestration.ingest.contract import event_time_column

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


def _kind(path: Path) -> str:
    """How a file is read, by its suffix: ``json`` (lines), ``csv`` or ``parquet``."""
    return SUFFIXES[path.suffix.lower()]


def _days_of(event_time: pd.Series) -> np.ndarray:
    """The UTC day of each event time as ``datetime64[D]``; NaT where it does not parse (by the
    contract's rules, :func:`orchestration.ingest.contract.event_time_column`)."""
    return event_time_column(event_time).to_numpy().astype("datetime64[D]")


@dataclass(frozen=True)
class FileDays:
    """What a file holds, by day: the UTC days of its placeable rows, and whether it has rows
    whose time does not parse (they go to the source's first day)."""

    days: frozenset[date]
    unplaceable: bool

    @classmethod
    def of(cls, row_days: np.ndarray) -> FileDays:
        placed = row_days[~np.isnat(row_days)]
        return cls(frozenset(np.unique(placed).tolist()), bool(len(placed) < len(row_days)))


class DayIndex:
    """A JSON file that keeps each file's :class:`FileDays` between runs, so that a run finds the
    files holding a day without reading the others (``ANALYTICS_SOURCE_INDEX``).

    An entry counts only while the file has the size and modification time it had when it was
    read, and was read in the same format. A file changed less than ``RACY_SECONDS`` before it was
    read is not kept: a change within the file system's timestamp granularity could leave its
    modification time as it was (git's "racy" index entries). A missing or unreadable index file
    is the same as an empty one; a run writes the whole index again, atomically."""

    RACY_SECONDS = 2.0
    VERSION = 1

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            entries = stored["files"] if stored.get("version") == self.VERSION else {}
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            entries = {}
        self._entries: dict[str, dict[str, Any]] = entries if isinstance(entries, dict) else {}
        self._changed = False

    @staticmethod
    def _key(path: Path) -> str:
        return str(path.resolve())

    def get(self, path: Path, fmt: str, stat: os.stat_result) -> FileDays | None:
        entry = self._entries.get(self._key(path))
        if (
            not isinstance(entry, dict)
            or entry.get("format") != fmt
            or entry.get("size") != stat.st_size
            or entry.get("mtime_ns") != stat.st_mtime_ns
        ):
            return None
        try:
            return FileDays(
                frozenset(date.fromisoformat(d) for d in entry["days"]), bool(entry["unplaceable"])
            )
        except (KeyError, TypeError, ValueError):
            return None

    def put(self, path: Path, fmt: str, stat: os.stat_result, held: FileDays) -> None:
        """Keep ``held`` for ``path`` as read with ``stat`` (taken before the read), unless the
        file changed since or too recently for its modification time to tell."""
        try:
            now = path.stat()
        except OSError:
            return
        unchanged = (now.st_size, now.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
        if not unchanged or time.time() - stat.st_mtime_ns / 1e9 < self.RACY_SECONDS:
            self._entries.pop(self._key(path), None)
            self._changed = True
            return
        self._entries[self._key(path)] = {
            "format": fmt,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "days": sorted(d.isoformat() for d in held.days),
            "unplaceable": held.unplaceable,
        }
        self._changed = True

    def save(self) -> None:
        """Write the index if an entry changed (a failure to write only costs the next run a
        read)."""
        if not self._changed:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            temporary.write_text(
                json.dumps({"version": self.VERSION, "files": self._entries}, sort_keys=True),
                encoding="utf-8",
            )
            os.replace(temporary, self.path)
            self._changed = False
        except OSError:
            pass


class FileSource:
    name = "file"

    def __init__(
        self, path: str | Path, fmt: str = "events", index: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        mappers = record_mappers()
        if fmt not in mappers:
            raise ValueError(f"unknown ANALYTICS_SOURCE_FORMAT {fmt!r}; one of {sorted(mappers)}")
        self.format = fmt
        self._map = mappers[fmt]
        # A vendor's export read from files is that vendor's data: `source` says so.
        self.name = "file" if fmt == "events" else fmt
        self._index = DayIndex(index) if index else None
        # Each file's rows' days, for the files read this run; the record-by-record files' records
        # (filled as they are read); and the last tabular file read whole, kept for the next day it
        # holds rows of.
        self._row_days: dict[Path, np.ndarray] = {}
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
        return self.format == "events" and _kind(path) in ("csv", "parquet")

    def _read_records(self, path: Path) -> Iterator[dict[str, Any]]:
        kind = _kind(path)
        rows = _read_json_lines(path) if kind == "json" else _read_table(path, kind)
        for row in rows:
            yield row if "quarantine_reason" in row else self._map(row)

    def _days_of_rows(self, path: Path) -> np.ndarray:
        """The UTC day of each of the file's rows (NaT: unplaceable). A tabular file is read for
        its ``event_time`` column only; a record-by-record file is read whole and its records kept
        (``_records``)."""
        if path in self._row_days:
            return self._row_days[path]
        if self._is_tabular(path):
            times = _read_frame(path, _kind(path), columns=["event_time"])
            if "event_time" not in times:  # no time at all: every row is unplaceable
                times = _read_frame(path, _kind(path)).assign(event_time=None)
            days = _days_of(times["event_time"])
        else:
            records = pd.DataFrame(list(self._read_records(path)))
            if "event_time" not in records:
                records["event_time"] = None
            self._records[path] = records
            days = _days_of(records["event_time"])
        self._row_days[path] = days
        return days

    @cached_property
    def _held(self) -> dict[Path, FileDays]:
        """For each file, the days it holds: from the index when the file is unchanged since a
        run read it, else read (and then kept in the index)."""
        held = {}
        for path in self.files():
            stat = path.stat()
            known = self._index.get(path, self.format, stat) if self._index else None
            if known is None:
                known = FileDays.of(self._days_of_rows(path))
                if self._index:
                    self._index.put(path, self.format, stat, known)
            held[path] = known
        if self._index:
            self._index.save()
        return held

    @cached_property
    def _first_day(self) -> date:
        """Where unplaceable records go: the first day the files cover (1970-01-01 if none)."""
        firsts = [min(held.days) for held in self._held.values() if held.days]
        return min(firsts) if firsts else date(1970, 1, 1)

    def available_days(self) -> list[date]:
        days = set()
        for held in self._held.values():
            days |= held.days
            if held.unplaceable:
                days.add(self._first_day)
        return sorted(days)

    def _rows(self, path: Path, wanted: np.ndarray | None) -> pd.DataFrame:
        """The file's rows where ``wanted`` (None: all of them)."""
        if not self._is_tabular(path):
            if path not in self._records:
                self._days_of_rows(path)  # reads and keeps the file's records
            rows = self._records[path]
        else:
            if self._cached is None or self._cached[0] != path:
                self._cached = None  # let the previous file go before reading the next
                self._cached = (path, _read_frame(path, _kind(path)))
            rows = self._cached[1]
        if wanted is None:
            return rows
        return rows[wanted]

    def fetch_day(self, day: date) -> pd.DataFrame:
        """The day's records from every file that has some, in file order. A file that holds no
        other day is taken whole; any other is read for its rows' days first."""
        frames = []
        for path, held in self._held.items():
            gets_unplaceable = held.unplaceable and day == self._first_day
            if day not in held.days and not gets_unplaceable:
                continue
            if held.days == {day} and (gets_unplaceable or not held.unplaceable):
                frames.append(self._rows(path, None))
                continue
            row_days = self._days_of_rows(path)
            placed = np.where(np.isnat(row_days), np.datetime64(self._first_day, "D"), row_days)
            frames.append(self._rows(path, placed == np.datetime64(day, "D")))
        if not frames:
            return pd.DataFrame()
        return pd.concat(frames, ignore_index=True)
