"""Event sources, chosen by ``ANALYTICS_SOURCE``.

A source knows nothing of Dagster. It answers two questions:

* ``available_days()``: the UTC days it has data for (what ``make run`` backfills);
* ``fetch_day(day)``: that day's records as a DataFrame whose columns are the contract's field names
  (see :mod:`orchestration.ingest.contract`), values as delivered; a record the source could not
  parse at all comes with ``quarantine_reason`` and ``raw_record`` set.

:func:`orchestration.ingest.contract.normalize` then types them, identically for every source.
"""

from __future__ import annotations

import os
from datetime import date
from typing import Protocol

import pandas as pd


class EventSource(Protocol):
    name: str

    def available_days(self) -> list[date]: ...

    def fetch_day(self, day: date) -> pd.DataFrame: ...


class SourceConfigError(ValueError):
    """A source is misconfigured (unknown name, missing path or credential)."""


def build_source(env: dict[str, str] | None = None) -> EventSource:
    """The source that ``ANALYTICS_SOURCE`` names (default ``demo``), configured from ``env``:
    demo and file settings, and each vendor's variables (``vendors.VENDOR_SETTINGS``)."""
    env = dict(os.environ) if env is None else env
    kind = env.get("ANALYTICS_SOURCE", "demo").strip().lower()
    if kind == "demo":
        from orchestration.ingest.demo import DemoConfig, DemoSource

        return DemoSource(DemoConfig.from_env(env))
    if kind == "file":
        from orchestration.ingest.files import FileSource

        path = env.get("ANALYTICS_SOURCE_PATH")
        if not path:
            raise SourceConfigError("ANALYTICS_SOURCE=file needs ANALYTICS_SOURCE_PATH")
        return FileSource(
            path,
            fmt=env.get("ANALYTICS_SOURCE_FORMAT", "events"),
            index=env.get("ANALYTICS_SOURCE_INDEX") or None,
        )
    from orchestration.ingest.vendors import VENDOR_SETTINGS, build_vendor_source

    if kind in VENDOR_SETTINGS:
        names = VENDOR_SETTINGS[kind]
        return build_vendor_source(kind, **{field: env.get(var) for field, var in names.items()})
    raise SourceConfigError(
        f"unknown ANALYTICS_SOURCE {kind!r} (expected demo, file, {', '.join(VENDOR_SETTINGS)})"
    )
