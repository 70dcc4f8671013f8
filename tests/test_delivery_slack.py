"""Slack delivery against a local stand-in for the Slack Web API that slack-sdk talks to
(``tests.report_servers.FakeSlack``)."""

from __future__ import annotations

import json

import pytest

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
from tests.report_servers import CHANNEL, PNG_MAGIC, TOKEN, FakeSlack, slack_env
from tests.test_report_content import WEEK, report_marts


@pytest.fixture
def reporter(slack: FakeSlack) -> SlackReporter:
    return SlackReporter(SlackSettings.from_env(slack_env(slack)))


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
