"""One HTTP helper for every vendor client: timeouts, bounded retries, clear errors, no secrets.

* Every request has a ``(connect, read)`` timeout.
* 429, any 5xx and connection errors/timeouts are retried with exponential backoff
  (``backoff_base * 2**(attempt-1)``, capped at ``backoff_max``); a ``Retry-After`` header (seconds
  or an HTTP date) replaces the computed wait. Attempts are bounded (``max_attempts``) and so is the
  total time spent waiting (``max_total_wait``): a ``Retry-After`` that would blow the budget fails
  at once instead of sleeping for an hour inside a run. Other 4xx are not retried.
* Failures raise :class:`VendorHTTPError` naming the vendor, the status and the URL. Credentials
  travel only in the ``Authorization`` header (``requests`` auth), never in URLs, and messages
  strip any userinfo and mask query parameters whose name looks like a secret.
* :meth:`VendorSession.download` spools a body to a temporary file and raises
  :class:`TruncatedDownloadError` when the connection breaks early or fewer bytes arrive than
  ``Content-Length`` announced: a partial export must fail the partition, never land half a day.

Why not urllib3's ``Retry`` on an ``HTTPAdapter``? It does honour ``Retry-After``, but (1) its
sleep is ``time.sleep`` called from inside urllib3 and can only be replaced by overriding
``Retry.sleep`` *and* ``Retry.new`` (which rebuilds the object on every attempt), so tests would
really wait; (2) it has no budget for the total time slept, only a cap per sleep; (3) when it gives
up it raises ``MaxRetryError`` wrapped as a generic ``requests`` ``RetryError``/``ConnectionError``
(or hands back the last error response, with ``raise_on_status=False``), so the vendor/status
message would have to be rebuilt anyway; (4) POST (PostHog's read-only query endpoint) must be
added to ``allowed_methods``. The loop below is ~40 lines and fully deterministic under test.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
import urllib3

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]
Clock = Callable[[], float]

_SECRET_HINTS = ("key", "secret", "token", "password", "auth", "signature")


class VendorHTTPError(RuntimeError):
    """A vendor request failed for good (after the allowed retries)."""

    def __init__(self, vendor: str, message: str, *, status: int | None = None, url: str = ""):
        self.vendor = vendor
        self.status = status
        self.url = safe_url(url)
        where = f" from {self.url}" if self.url else ""
        code = f"HTTP {status}" if status is not None else "request failed"
        super().__init__(f"{vendor}: {code}{where}: {message}")


class TruncatedDownloadError(VendorHTTPError):
    """The body ended early or does not decode (bad zip/gzip): re-run the partition later."""


def safe_url(url: str) -> str:
    """The URL without userinfo and with secret-looking query values masked."""
    if not url:
        return ""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = urlencode(
        [
            (k, "***" if any(h in k.lower() for h in _SECRET_HINTS) else v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (delta-seconds or HTTP date); None if absent."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_base: float = 2.0
    backoff_max: float = 60.0
    max_total_wait: float = 900.0

    def backoff(self, attempt: int) -> float:
        return min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))


class SlidingWindowLimiter:
    """At most ``max_calls`` acquisitions in any ``period`` seconds (client side, per process).

    ``acquire()`` sleeps until the oldest call in the window ages out. The clock and the sleep are
    injectable so that tests run instantly. This protects the vendor's quota from our own bursts;
    a limit shared with other processes still shows up as 429s, which the retry loop handles.
    """

    def __init__(
        self,
        max_calls: int,
        period: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("max_calls must be >= 1 and period > 0")
        self.max_calls = max_calls
        self.period = period
        self.clock = clock
        self.sleep = sleep
        self.calls: deque[float] = deque()

    def acquire(self) -> float:
        """Wait for a free slot and take it; returns the seconds slept."""
        slept = 0.0
        while True:
            now = self.clock()
            while self.calls and now - self.calls[0] >= self.period:
                self.calls.popleft()
            if len(self.calls) < self.max_calls:
                self.calls.append(now)
                return slept
            wait = self.calls[0] + self.period - now
            log.info("rate limiter: %d calls in %.0fs, waiting %.1fs", self.max_calls,
                     self.period, wait)
            self.sleep(wait)
            slept += wait


def _snippet(response: requests.Response, limit: int = 300) -> str:
    try:
        body = response.text
    except Exception:  # noqa: BLE001 - the body is only decoration for the message
        return ""
    body = " ".join(body.split())
    return body[:limit] + ("..." if len(body) > limit else "")


class VendorSession:
    """A ``requests.Session`` with the vendor's auth, a timeout, retries and rate limiters."""

    def __init__(
        self,
        vendor: str,
        *,
        auth: requests.auth.AuthBase | tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | tuple[float, float] = (10.0, 300.0),
        retry: RetryPolicy | None = None,
        sleep: Sleep = time.sleep,
        limiters: Iterable[SlidingWindowLimiter] = (),
        session: requests.Session | None = None,
    ) -> None:
        self.vendor = vendor
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.limiters = list(limiters)
        self.session = session or requests.Session()
        self.session.auth = auth
        self.session.headers["User-Agent"] = "product-analytics-ingest/0.1"
        self.session.headers.update(headers or {})

    def close(self) -> None:
        self.session.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        stream: bool = False,
        accept_statuses: Iterable[int] = (),
    ) -> requests.Response:
        """The response (<400 or in ``accept_statuses``); retries 429/5xx/connection errors."""
        accepted = set(accept_statuses)
        policy = self.retry
        waited = 0.0
        full_url = requests.Request(method, url, params=params).prepare().url or url
        for attempt in range(1, policy.max_attempts + 1):
            for limiter in self.limiters:
                limiter.acquire()
            retry_after: float | None = None
            status: int | None = None
            try:
                response = self.session.request(
                    method, url, params=params, json=json, timeout=self.timeout, stream=stream
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                reason = f"{type(error).__name__} (no response)"
                last_error: BaseException | None = error
            else:
                status = response.status_code
                if status < 400 or status in accepted:
                    return response
                reason = _snippet(response) or response.reason or ""
                last_error = None
                response.close()
                if status != 429 and status < 500:
                    raise VendorHTTPError(self.vendor, f"not retried: {reason}", status=status,
                                          url=full_url)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if attempt == policy.max_attempts:
                raise VendorHTTPError(
                    self.vendor, f"gave up after {attempt} attempts: {reason}", status=status,
                    url=full_url,
                ) from last_error
            wait = retry_after if retry_after is not None else policy.backoff(attempt)
            if waited + wait > policy.max_total_wait:
                raise VendorHTTPError(
                    self.vendor,
                    f"retry budget exhausted (would wait {wait:.0f}s more after {waited:.0f}s, "
                    f"limit {policy.max_total_wait:.0f}s) after {attempt} attempts: {reason}",
                    status=status, url=full_url,
                ) from last_error
            log.warning("%s: attempt %d/%d failed (%s, %s); retrying in %.1fs", self.vendor,
                        attempt, policy.max_attempts, status or "no response",
                        safe_url(full_url), wait)
            self.sleep(wait)
            waited += wait
        raise AssertionError("unreachable")  # pragma: no cover

    def download(
        self, response: requests.Response, *, spool_bytes: int = 64 << 20
    ) -> tempfile.SpooledTemporaryFile:
        """The whole (content-decoded) body in a rewound temp file; raises if it is truncated."""
        url = response.url
        sink = tempfile.SpooledTemporaryFile(max_size=spool_bytes)
        try:
            for chunk in response.iter_content(chunk_size=1 << 20):
                sink.write(chunk)
        except (
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
            requests.ConnectionError,
            requests.Timeout,
            urllib3.exceptions.HTTPError,
        ) as error:
            sink.close()
            raise TruncatedDownloadError(
                self.vendor, f"download broke off ({type(error).__name__}); re-run the partition",
                status=response.status_code, url=url,
            ) from error
        finally:
            response.close()
        expected = response.headers.get("Content-Length")
        received = response.raw.tell() if hasattr(response.raw, "tell") else None
        if expected is not None and expected.isdigit() and received is not None:
            if received != int(expected):
                sink.close()
                raise TruncatedDownloadError(
                    self.vendor,
                    f"received {received} of {expected} bytes (Content-Length); "
                    "re-run the partition",
                    status=response.status_code, url=url,
                )
        sink.seek(0)
        return sink
