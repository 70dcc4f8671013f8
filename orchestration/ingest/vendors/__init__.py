"""Vendor connectors: Mixpanel, Amplitude and PostHog APIs, plus GA4 / vendor files via FileSource.

Nothing here imports Dagster. Public names:

* ``FILE_FORMATS``: format name -> ``map_record`` (one vendor record -> contract fields), used by
  :class:`orchestration.ingest.files.FileSource` for ``ANALYTICS_SOURCE_FORMAT=<name>``, the same
  code the API sources use.
* ``VENDOR_SETTINGS``: for each API vendor, ``build_vendor_source`` keyword -> environment variable.
* ``SECRET_FIELDS``: for each API vendor, the keywords that hold secrets (wire them as ``EnvVar``,
  never log them).
* ``build_vendor_source(kind, **settings)``: an ``EventSource`` for ``mixpanel``, ``amplitude`` or
  ``posthog``. Blank strings count as unset; numbers may be given as strings.

The mapping is documented in ``MAPPING.md`` next to this file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestration.ingest.sources import EventSource, SourceConfigError
from orchestration.ingest.vendors import amplitude, ga4, mixpanel, posthog
from orchestration.ingest.vendors.http import (
    RetryPolicy,
    SlidingWindowLimiter,
    TruncatedDownloadError,
    VendorHTTPError,
)

FILE_FORMATS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "mixpanel": mixpanel.map_record,
    "amplitude": amplitude.map_record,
    "posthog": posthog.map_record,
    "ga4": ga4.map_record,
}

_DAYS = {
    "start_date": "ANALYTICS_START_DATE",
    "end_date": "ANALYTICS_END_DATE",
    "lookback_days": "ANALYTICS_LOOKBACK_DAYS",
}

VENDOR_SETTINGS: dict[str, dict[str, str]] = {
    "mixpanel": {
        "api_secret": "MIXPANEL_API_SECRET",
        "username": "MIXPANEL_SERVICE_ACCOUNT",
        "project_id": "MIXPANEL_PROJECT_ID",
        "region": "MIXPANEL_REGION",
        "base_url": "MIXPANEL_BASE_URL",
        **_DAYS,
    },
    "amplitude": {
        "api_key": "AMPLITUDE_API_KEY",
        "secret_key": "AMPLITUDE_SECRET_KEY",
        "region": "AMPLITUDE_REGION",
        "base_url": "AMPLITUDE_BASE_URL",
        **_DAYS,
    },
    "posthog": {
        "personal_api_key": "POSTHOG_PERSONAL_API_KEY",
        "project_id": "POSTHOG_PROJECT_ID",
        "region": "POSTHOG_REGION",
        "base_url": "POSTHOG_BASE_URL",
        "page_size": "POSTHOG_PAGE_SIZE",
        **_DAYS,
    },
}

SECRET_FIELDS: dict[str, frozenset[str]] = {
    "mixpanel": frozenset({"api_secret"}),
    "amplitude": frozenset({"api_key", "secret_key"}),
    "posthog": frozenset({"personal_api_key"}),
}

REQUIRED_FIELDS: dict[str, frozenset[str]] = {
    "mixpanel": frozenset({"api_secret", "start_date"}),
    "amplitude": frozenset({"api_key", "secret_key", "start_date"}),
    "posthog": frozenset({"personal_api_key", "project_id", "start_date"}),
}

_SOURCES = {
    "mixpanel": mixpanel.MixpanelSource,
    "amplitude": amplitude.AmplitudeSource,
    "posthog": posthog.PostHogSource,
}
# Keywords accepted besides VENDOR_SETTINGS (tests and tuning; not read from the environment).
_EXTRA = {"timeout", "retry", "sleep", "clock", "today", "queries_per_hour",
          "queries_per_second", "max_pages"}


def build_vendor_source(kind: str, **settings: Any) -> EventSource:
    """The API source for ``kind`` (mixpanel/amplitude/posthog) from plain setting values.

    Raises :class:`SourceConfigError` naming the missing/unknown setting and its environment
    variable (never a value).
    """
    kind = (kind or "").strip().lower()
    if kind not in _SOURCES:
        raise SourceConfigError(f"unknown vendor {kind!r}; one of {sorted(_SOURCES)}")
    names = VENDOR_SETTINGS[kind]
    unknown = set(settings) - set(names) - _EXTRA
    if unknown:
        raise SourceConfigError(f"{kind}: unknown settings {sorted(unknown)}; "
                                f"expected {sorted(names)}")
    values = {k: v for k, v in settings.items()
              if not (v is None or (isinstance(v, str) and not v.strip()))}
    values = {k: v.strip() if isinstance(v, str) and k not in SECRET_FIELDS[kind] else v
              for k, v in values.items()}
    missing = sorted(REQUIRED_FIELDS[kind] - set(values))
    if missing:
        raise SourceConfigError(
            f"{kind}: missing " + ", ".join(f"{k} (set {names[k]})" for k in missing)
        )
    try:
        return _SOURCES[kind].from_settings(**values)
    except (ValueError, TypeError) as error:
        raise SourceConfigError(str(error)) from error


__all__ = [
    "FILE_FORMATS",
    "REQUIRED_FIELDS",
    "SECRET_FIELDS",
    "VENDOR_SETTINGS",
    "RetryPolicy",
    "SlidingWindowLimiter",
    "TruncatedDownloadError",
    "VendorHTTPError",
    "build_vendor_source",
]
