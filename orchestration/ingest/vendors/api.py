"""The ``EventSource`` side shared by the API vendors: which days exist, which to re-pull.

A vendor client only has to provide ``fetch_rows(day) -> list[dict]`` (mapped records and
quarantine rows for exactly that UTC day); this class turns them into the frame ``normalize``
expects. Re-running a day asks the vendor for the same range again, and every mapped record keeps
the vendor's own id (or a deterministic one), so a re-run lands the same records (idempotent).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Protocol

import pandas as pd

from orchestration.ingest.vendors.common import as_date, day_range, records_frame, utc_today


class DayClient(Protocol):
    def fetch_rows(self, day: date) -> list[dict[str, Any]]: ...


class VendorApiSource:
    """``available_days()`` = start_date..end_date (default: yesterday UTC); ``fetch_day(day)``."""

    vendor: str
    client_class: type

    def __init__(
        self,
        name: str,
        client: DayClient,
        *,
        start_date: date | str,
        end_date: date | str | None = None,
        lookback_days: int | str = 3,
        today: Callable[[], date] = utc_today,
    ) -> None:
        start = as_date(start_date)
        if start is None:
            raise ValueError(f"{name}: start_date is required")
        self.name = name
        self.client = client
        self.start_date = start
        self.end_date = as_date(end_date)
        self.lookback_days = int(lookback_days)
        if self.lookback_days < 0:
            raise ValueError(f"{name}: lookback_days must be >= 0")
        self.today = today

    @classmethod
    def from_settings(
        cls,
        *,
        start_date: date | str,
        end_date: date | str | None = None,
        lookback_days: int | str = 3,
        today: Callable[[], date] | None = None,
        **client_settings: Any,
    ) -> VendorApiSource:
        """The source of a vendor subclass (which names ``vendor`` and ``client_class``): the
        day settings are the source's, every other setting goes to the vendor's client."""
        extra = {"today": today} if today else {}
        return cls(cls.vendor, cls.client_class(**client_settings), start_date=start_date,
                   end_date=end_date, lookback_days=lookback_days, **extra)

    def last_day(self) -> date:
        """The last complete UTC day (yesterday), unless an end_date was configured."""
        return self.end_date or self.today() - timedelta(days=1)

    def available_days(self) -> list[date]:
        end = self.last_day()
        return day_range(self.start_date, end) if end >= self.start_date else []

    def days_to_refresh(self, today: date | None = None) -> list[date]:
        """The last ``lookback_days`` complete days (up to yesterday), to re-pull late events."""
        today = today or self.today()
        end = min(self.last_day(), today - timedelta(days=1))
        start = max(self.start_date, end - timedelta(days=self.lookback_days - 1))
        if self.lookback_days == 0 or end < start:
            return []
        return day_range(start, end)

    def fetch_day(self, day: date) -> pd.DataFrame:
        return records_frame(self.client.fetch_rows(day))

    def __repr__(self) -> str:  # never shows credentials
        return f"{type(self).__name__}(name={self.name!r}, start_date={self.start_date})"
