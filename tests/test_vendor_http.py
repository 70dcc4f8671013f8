"""The shared vendor HTTP helper on a local server: retries, Retry-After, budgets, truncation."""

from __future__ import annotations

import socket

import pytest
import requests
from werkzeug import Request, Response

from orchestration.ingest.vendors.http import (
    RetryPolicy,
    SlidingWindowLimiter,
    TruncatedDownloadError,
    VendorHTTPError,
    VendorSession,
    parse_retry_after,
    safe_url,
)


def session(sleeps: list[float], **retry) -> VendorSession:
    policy = RetryPolicy(**{"max_attempts": 4, "backoff_base": 1.0, **retry})
    return VendorSession("acme", auth=("user", "s3cr3t-pass"), timeout=5, retry=policy,
                         sleep=sleeps.append)


def test_429_retry_after_is_honoured(httpserver):
    httpserver.expect_ordered_request("/x").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"})
    httpserver.expect_ordered_request("/x").respond_with_data("ok")
    sleeps: list[float] = []
    response = session(sleeps).request("GET", httpserver.url_for("/x"))
    assert response.text == "ok"
    assert sleeps == [7.0]


def test_500_then_success_backs_off_exponentially(httpserver):
    for _ in range(2):
        httpserver.expect_ordered_request("/x").respond_with_data("boom", status=503)
    httpserver.expect_ordered_request("/x").respond_with_data("ok")
    sleeps: list[float] = []
    assert session(sleeps).request("GET", httpserver.url_for("/x")).text == "ok"
    assert sleeps == [1.0, 2.0]


def test_persistent_500_raises_clear_error_after_bounded_attempts(httpserver):
    httpserver.expect_request("/x").respond_with_data("internal", status=500)
    sleeps: list[float] = []
    with pytest.raises(VendorHTTPError) as caught:
        session(sleeps).request("GET", httpserver.url_for("/x"), params={"day": "2024-01-01"})
    message = str(caught.value)
    assert caught.value.status == 500 and caught.value.vendor == "acme"
    assert message.startswith("acme: HTTP 500 from http://localhost")
    assert "/x?day=2024-01-01" in message and "gave up after 4 attempts" in message
    assert "s3cr3t" not in message and "user" not in message.split("from")[1].split("/x")[0]
    assert len(httpserver.log) == 4 and sleeps == [1.0, 2.0, 4.0]


def test_retry_after_beyond_total_budget_fails_without_sleeping(httpserver):
    httpserver.expect_request("/x").respond_with_data("", status=429,
                                                      headers={"Retry-After": "3600"})
    sleeps: list[float] = []
    with pytest.raises(VendorHTTPError, match="retry budget exhausted"):
        session(sleeps, max_total_wait=60).request("GET", httpserver.url_for("/x"))
    assert sleeps == [] and len(httpserver.log) == 1


def test_client_errors_are_not_retried(httpserver):
    httpserver.expect_request("/x").respond_with_data('{"error": "bad auth"}', status=401)
    sleeps: list[float] = []
    with pytest.raises(VendorHTTPError, match=r"HTTP 401 .*not retried: .*bad auth"):
        session(sleeps).request("GET", httpserver.url_for("/x"))
    assert sleeps == [] and len(httpserver.log) == 1


def test_basic_auth_sent_in_header(httpserver):
    httpserver.expect_request(
        "/x", headers={"Authorization": requests.auth._basic_auth_str("user", "s3cr3t-pass")}
    ).respond_with_data("ok")
    assert session([]).request("GET", httpserver.url_for("/x")).text == "ok"


def test_connection_errors_are_retried_then_reported():
    with socket.socket() as probe:  # a port with nobody listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    with pytest.raises(VendorHTTPError, match=r"acme: request failed from http://127\.0\.0\.1"):
        session(sleeps, max_attempts=3).request("GET", f"http://127.0.0.1:{port}/x")
    assert sleeps == [1.0, 2.0]


def test_download_detects_short_body(httpserver):
    def short(request: Request) -> Response:
        # A generator body keeps werkzeug from correcting the announced length.
        return Response(iter([b"0123456789"]), headers={"Content-Length": "100"})

    httpserver.expect_request("/x").respond_with_handler(short)
    http = session([])
    response = http.request("GET", httpserver.url_for("/x"), stream=True)
    with pytest.raises(TruncatedDownloadError, match=r"acme: HTTP 200 .*re-run the partition"):
        http.download(response)


def test_download_returns_full_body(httpserver):
    httpserver.expect_request("/x").respond_with_data(b"a\nb\n" * 1000)
    http = session([])
    with http.download(http.request("GET", httpserver.url_for("/x"), stream=True)) as body:
        assert body.read() == b"a\nb\n" * 1000


def test_sliding_window_limiter_waits_for_the_oldest_call():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    limiter = SlidingWindowLimiter(3, 3600, clock=lambda: now[0], sleep=sleep)
    for t in (0.0, 10.0, 20.0):
        now[0] = t
        assert limiter.acquire() == 0.0
    now[0] = 30.0
    assert limiter.acquire() == pytest.approx(3570.0)  # until the call at t=0 ages out
    assert sleeps == [pytest.approx(3570.0)]
    now[0] = 3610.0 + 1
    assert limiter.acquire() == 0.0  # t=10 and t=20 have aged out


def test_safe_url_and_retry_after_parsing():
    assert safe_url("https://u:p@host.example:8443/a?api_key=xyz&day=1") == \
        "https://host.example:8443/a?api_key=%2A%2A%2A&day=1"
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2099 07:28:00 GMT") > 1e6
    assert parse_retry_after("garbage") is None
