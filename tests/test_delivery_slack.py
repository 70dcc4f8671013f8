"""Slack delivery against a local stand-in for the Slack Web API that slack-sdk talks to.

The stand-in (served by pytest-httpserver) implements the methods the delivery uses with Slack's
JSON shapes and ``ok`` semantics: ``chat.postMessage``, ``files.getUploadURLExternal``, the upload
URL it hands out, ``files.completeUploadExternal`` and ``conversations.history`` (with message
metadata and thread ``reply_count``). It checks the Bearer token and can answer 429 with
Retry-After or an ``ok: false`` error on demand.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orchestration.reporting.charts import build_charts
from orchestration.reporting.content import build_report_data
from orchestration.reporting.ledger import DeliveryLedger
from orchestration.reporting.render import render_html
from orchestration.reporting.slack import (
    SlackDeliveryError,
    SlackReporter,
    SlackSettings,
    report_marker,
)
from tests.test_report_content import WEEK, report_marts

TOKEN = "xoxb-test-0000-secret"
CHANNEL = "C0REPORTS1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeSlack:
    """A stateful stand-in for the Slack Web API methods the report uses."""

    def __init__(self, server: HTTPServer):
        self.server = server
        self.channels = {CHANNEL: []}  # channel -> messages, oldest first
        self.calls: list[tuple[str, dict]] = []
        self.auth_headers: list[str] = []
        self.uploads: dict[str, dict] = {}  # file_id -> {"filename", "length", "data"}
        self.rate_limit: dict[str, int] = {}  # method -> how many 429s to answer first
        self.fail: dict[str, str] = {}  # method -> Slack error code to answer with ok: false
        self._ts = itertools.count(1)
        self._file_ids = itertools.count(1)
        server.expect_request(re.compile(r"^/api/[\w.]+$")).respond_with_handler(self.api)
        server.expect_request(re.compile(r"^/upload/v1/\w+$"), method="POST").respond_with_handler(
            self.upload
        )

    # -- helpers ----------------------------------------------------------------------------
    def method_calls(self, method: str) -> list[dict]:
        return [params for name, params in self.calls if name == method]

    def _ok(self, **body) -> Response:
        return Response(json.dumps({"ok": True, **body}), content_type="application/json")

    def _error(self, code: str, status: int = 200, headers=None) -> Response:
        return Response(
            json.dumps({"ok": False, "error": code}),
            status=status,
            content_type="application/json",
            headers=headers,
        )

    # -- Web API ----------------------------------------------------------------------------
    def api(self, request: Request) -> Response:
        method = request.path.rsplit("/", 1)[1]
        if request.mimetype == "application/json":
            params = request.get_json()
        else:
            params = request.values.to_dict()
        self.calls.append((method, params))
        self.auth_headers.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._error("invalid_auth")
        if self.rate_limit.get(method, 0) > 0:
            self.rate_limit[method] -= 1
            return self._error("ratelimited", status=429, headers={"Retry-After": "0"})
        if method in self.fail:
            return self._error(self.fail[method])
        handler = getattr(self, "m_" + method.replace(".", "_"), None)
        if handler is None:
            return self._error("unknown_method")
        return handler(params)

    def _channel(self, params: dict) -> list | None:
        return self.channels.get(params.get("channel") or params.get("channel_id"))

    def m_chat_postMessage(self, params: dict) -> Response:
        messages = self._channel(params)
        if messages is None:
            return self._error("channel_not_found")
        ts = f"17900000{next(self._ts):02d}.000100"
        message = {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B0BOT",
            "app_id": "A0APP",
            "text": params.get("text", ""),
            "ts": ts,
            "blocks": params.get("blocks", []),
        }
        if params.get("metadata"):
            message["metadata"] = params["metadata"]
        if params.get("thread_ts"):
            self._reply(messages, params["thread_ts"])
        else:
            messages.append(message)
        shown = {k: v for k, v in message.items() if k != "metadata"}
        return self._ok(channel=params["channel"], ts=ts, message=shown)

    def _reply(self, messages: list, thread_ts: str) -> None:
        for message in messages:
            if message["ts"] == thread_ts:
                message["thread_ts"] = thread_ts
                message["reply_count"] = message.get("reply_count", 0) + 1

    def m_files_getUploadURLExternal(self, params: dict) -> Response:
        if not params.get("filename") or not params.get("length"):
            return self._error("invalid_arguments")
        file_id = f"F0FILE{next(self._file_ids):04d}"
        self.uploads[file_id] = {
            "filename": params["filename"],
            "length": int(params["length"]),
            "data": None,
        }
        return self._ok(upload_url=self.server.url_for(f"/upload/v1/{file_id}"), file_id=file_id)

    def upload(self, request: Request) -> Response:
        file_id = request.path.rsplit("/", 1)[1]
        if file_id not in self.uploads:
            return Response("not found", status=404)
        self.uploads[file_id]["data"] = request.get_data()
        return Response("OK - " + str(len(request.get_data())), content_type="text/plain")

    def m_files_completeUploadExternal(self, params: dict) -> Response:
        messages = self._channel(params)
        if messages is None:
            return self._error("channel_not_found")
        files = json.loads(params["files"])
        out = []
        for item in files:
            upload = self.uploads.get(item["id"])
            if upload is None or upload["data"] is None or len(upload["data"]) != upload["length"]:
                return self._error("file_not_found")
            out.append(
                {
                    "id": item["id"],
                    "name": upload["filename"],
                    "title": item.get("title"),
                    "mimetype": "application/octet-stream",
                }
            )
        if params.get("thread_ts"):
            self._reply(messages, params["thread_ts"])
        return self._ok(files=out)

    def m_conversations_history(self, params: dict) -> Response:
        messages = self._channel(params)
        if messages is None:
            return self._error("channel_not_found")
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or "inf")
        inclusive = params.get("inclusive") in ("1", "true", "True")

        def in_range(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        include_metadata = params.get("include_all_metadata") in ("1", "true", "True")
        limit = int(params.get("limit") or 100)
        newest_first = [m for m in reversed(messages) if in_range(float(m["ts"]))]
        start = int(params.get("cursor") or 0)
        page = newest_first[start : start + limit]
        if not include_metadata:
            page = [{k: v for k, v in m.items() if k != "metadata"} for m in page]
        more = start + limit < len(newest_first)
        return self._ok(
            messages=page,
            has_more=more,
            response_metadata={"next_cursor": str(start + limit) if more else ""},
        )


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver)


@pytest.fixture
def reporter(slack: FakeSlack) -> SlackReporter:
    settings = SlackSettings.from_env(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_CHANNEL": CHANNEL,
            "SLACK_BASE_URL": slack.server.url_for("/api/"),
        }
    )
    return SlackReporter(settings)


@pytest.fixture(scope="module")
def report():
    marts = report_marts()
    data = build_report_data(WEEK, marts)
    charts = build_charts(WEEK, marts)
    return data, charts, render_html(data, charts)


def deliver(reporter, report, ledger):
    data, charts, html = report
    return reporter.post_report(data, ledger=ledger, html=html, charts=charts)


def test_settings_come_from_env_and_hide_the_token():
    assert SlackSettings.from_env({}) is None
    assert SlackSettings.missing({"SLACK_CHANNEL": "C1"}) == ["SLACK_BOT_TOKEN"]
    settings = SlackSettings.from_env({"SLACK_BOT_TOKEN": TOKEN, "SLACK_CHANNEL": "C1"})
    assert settings.base_url == "https://slack.com/api/"
    assert TOKEN not in repr(settings)


def test_report_arrives_with_the_mart_numbers_and_the_files(slack, reporter, report, tmp_path):
    ledger = DeliveryLedger(tmp_path / "ledger.json")
    delivery = deliver(reporter, report, ledger)

    assert delivery.status == "posted"
    assert set(slack.auth_headers) == {f"Bearer {TOKEN}"}
    [post] = slack.method_calls("chat.postMessage")
    assert post["channel"] == CHANNEL
    assert post["metadata"] == {
        "event_type": "weekly_report",
        "event_payload": {"week": "2026-09-14"},
    }
    assert report_marker(WEEK) in post["text"]
    fields = {
        f["text"].split("\n")[0]: f["text"]
        for b in post["blocks"]
        if b["type"] == "section"
        for f in b.get("fields", [])
    }
    # The hand-computed numbers of tests.test_report_content.report_marts():
    assert fields["*Active users*"].startswith("*Active users*\n4  (+100.0% WoW)")
    assert fields["*New persons*"].startswith("*New persons*\n3  (+50.0% WoW)")
    assert fields["*Revenue*"].startswith("*Revenue*\n15.00  (-25.0% WoW)")
    assert fields["*D7 retention*"].startswith("*D7 retention*\n22.5%  (-17.5 pp WoW)")
    assert fields["*signup conversion*"].startswith("*signup conversion*\n30.0%")
    assert fields["*checkout conversion*"].startswith("*checkout conversion*\n40.0%")
    body = json.dumps(post["blocks"])
    assert "60 users dropped off from visit to signup" in body

    # Files: the HTML report and every chart, uploaded and shared into the message's thread.
    [complete] = slack.method_calls("files.completeUploadExternal")
    assert complete["channel_id"] == CHANNEL and complete["thread_ts"] == delivery.ts
    names = {u["filename"]: u["data"] for u in slack.uploads.values()}
    assert set(names) == {"weekly-report-2026-09-14.html", *report[1]}
    for name, png in report[1].items():
        assert names[name].startswith(PNG_MAGIC) and names[name] == png
    assert names["weekly-report-2026-09-14.html"].decode() == report[2]
    assert sorted(delivery.file_ids) == sorted(slack.uploads)

    entry = ledger.get(WEEK, CHANNEL)
    assert entry["ts"] == delivery.ts and entry["complete"] is True
    assert (
        TOKEN not in json.dumps(delivery.metadata())
        and TOKEN not in (tmp_path / "ledger.json").read_text()
    )


def test_a_retry_does_not_post_again(slack, reporter, report, tmp_path):
    ledger = DeliveryLedger(tmp_path / "ledger.json")
    first = deliver(reporter, report, ledger)
    calls = len(slack.calls)

    again = deliver(reporter, report, ledger)
    assert again.status == "already_sent" and again.ts == first.ts
    assert len(slack.calls) == calls  # the ledger answered: Slack was not called

    # The ledger is lost (or the process died before recording): the marker in the channel's
    # history stops a second post, and the thread already has the files.
    lost = DeliveryLedger(tmp_path / "other-ledger.json")
    third = deliver(reporter, report, lost)
    assert third.status == "resumed" and third.ts == first.ts
    assert len(slack.method_calls("chat.postMessage")) == 1
    assert len(slack.method_calls("files.completeUploadExternal")) == 1
    assert slack.method_calls("conversations.history")[-1]["include_all_metadata"] in ("1", "true")
    assert lost.already_sent(WEEK, CHANNEL)


def test_history_marker_is_found_beyond_the_first_page(slack, reporter, report, tmp_path):
    deliver(reporter, report, DeliveryLedger(tmp_path / "a.json"))
    for i in range(250):  # newer chatter pushes the report off the first history page
        slack.channels[CHANNEL].append(
            {"type": "message", "user": "U1", "text": f"hi {i}", "ts": f"17900010{i:03d}.000100"}
        )
    again = deliver(reporter, report, DeliveryLedger(tmp_path / "b.json"))
    assert again.status == "resumed"
    assert len(slack.method_calls("chat.postMessage")) == 1
    assert len(slack.method_calls("conversations.history")) >= 3  # two pages on the second run


def test_a_failed_upload_is_resumed_without_posting_again(slack, reporter, report, tmp_path):
    ledger = DeliveryLedger(tmp_path / "ledger.json")
    slack.fail["files.getUploadURLExternal"] = "internal_error"
    with pytest.raises(SlackDeliveryError, match="internal_error"):
        deliver(reporter, report, ledger)
    entry = ledger.get(WEEK, CHANNEL)
    assert entry["ts"] and entry["complete"] is False

    del slack.fail["files.getUploadURLExternal"]
    # Even without the ledger, the message is found and the files (missing: no replies) follow.
    resumed = deliver(reporter, report, DeliveryLedger(tmp_path / "lost.json"))
    assert resumed.status == "resumed" and resumed.ts == entry["ts"]
    assert len(slack.method_calls("chat.postMessage")) == 1
    [complete] = slack.method_calls("files.completeUploadExternal")
    assert complete["thread_ts"] == entry["ts"]
    assert len(resumed.file_ids) == 1 + len(report[1])


def test_uploads_done_but_not_recorded_are_not_repeated(slack, reporter, report, tmp_path):
    ledger = DeliveryLedger(tmp_path / "ledger.json")
    first = deliver(reporter, report, ledger)
    # The process died after the uploads but before the ledger said so.
    ledger.record(WEEK, CHANNEL, complete=False, file_ids=[])
    again = deliver(reporter, report, ledger)
    assert again.status == "resumed" and again.ts == first.ts
    assert len(slack.method_calls("chat.postMessage")) == 1
    assert len(slack.method_calls("files.completeUploadExternal")) == 1
    assert ledger.already_sent(WEEK, CHANNEL)


def test_a_429_is_retried_by_slack_sdk(slack, reporter, report, tmp_path):
    slack.rate_limit["chat.postMessage"] = 1
    slack.rate_limit["files.getUploadURLExternal"] = 1
    delivery = deliver(reporter, report, DeliveryLedger(tmp_path / "ledger.json"))
    assert delivery.status == "posted"
    # Each method was called twice in a row (429, then success); one message exists.
    assert len(slack.method_calls("chat.postMessage")) == 2
    assert len(slack.channels[CHANNEL]) == 1
    assert len(slack.method_calls("files.getUploadURLExternal")) == 1 + 1 + len(report[1])


def test_slack_errors_raise_clearly(slack, report, tmp_path):
    settings = SlackSettings(
        token=TOKEN, channel="C0MISSING", base_url=slack.server.url_for("/api/")
    )
    with pytest.raises(
        SlackDeliveryError,
        match="conversations.history failed for channel C0MISSING: channel_not_found",
    ) as info:
        deliver(SlackReporter(settings), report, DeliveryLedger(tmp_path / "ledger.json"))
    assert TOKEN not in str(info.value)

    wrong = SlackSettings(
        token="xoxb-wrong", channel=CHANNEL, base_url=slack.server.url_for("/api/")
    )
    with pytest.raises(SlackDeliveryError, match="invalid_auth"):
        deliver(SlackReporter(wrong), report, DeliveryLedger(tmp_path / "ledger.json"))
    assert not DeliveryLedger(tmp_path / "ledger.json").get(WEEK, CHANNEL)


def test_post_failure_alert_names_the_asset_and_check(slack, reporter):
    ts = reporter.post_failure_alert(
        run_id="0123456789abcdef",
        job_name="weekly_report_job",
        failed_steps=["weekly_report"],
        assets=["weekly_report"],
        checks=["funnel_conversion_not_empty"],
        error="Check failed",
        run_url="http://localhost:3000/runs/0123456789abcdef",
    )
    [post] = slack.method_calls("chat.postMessage")
    text = post["blocks"][0]["text"]["text"]
    assert ts == slack.channels[CHANNEL][-1]["ts"]
    assert "`weekly_report_job`" in text and "`weekly_report`" in text
    assert "`funnel_conversion_not_empty`" in text
    assert "<http://localhost:3000/runs/0123456789abcdef|Open the run>" in text
