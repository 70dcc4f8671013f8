"""Which week's report went to which channel: the first line of defence against double sends.

A JSON file (under the git-ignored reports folder by default) keyed by ``(week, channel)``. Each
entry is written as soon as a message exists, before anything else can fail, and rewritten when a
later step (the file uploads) finishes. Writes hold an exclusive ``flock`` and replace the file
atomically, so two runs cannot interleave half-written JSON.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any


class DeliveryLedger:
    def __init__(self, path: Path | str):
        self.path = Path(path)

    @staticmethod
    def key(week: date, channel: str) -> str:
        return f"{week.isoformat()}|{channel}"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text(encoding="utf-8") or "{}")

    def get(self, week: date, channel: str) -> dict[str, Any] | None:
        return self._read().get(self.key(week, channel))

    def already_sent(self, week: date, channel: str) -> bool:
        """True when the delivery for this week and channel finished (message and attachments)."""
        entry = self.get(week, channel)
        return bool(entry and entry.get("complete"))

    def record(self, week: date, channel: str, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` into the entry for ``(week, channel)`` and save; returns the entry."""
        with self._locked():
            entries = self._read()
            entry = entries.setdefault(self.key(week, channel), {})
            entry.update(fields)
            entry["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            tmp = self.path.with_name(f".{self.path.name}.tmp")
            tmp.write_text(json.dumps(entries, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
            return dict(entry)
