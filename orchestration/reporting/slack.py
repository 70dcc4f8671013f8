"""Posting the weekly report and run-failure alerts to Slack with slack-sdk's WebClient.

Settings come from the environment (see ``SlackSettings.from_env``): ``SLACK_BOT_TOKEN``,
``SLACK_CHANNEL`` (a channel ID such as ``C0123456789``: ``conversations.history`` and file
uploads need the ID, not the name), ``SLACK_BASE_URL`` (a proxy or a test server; default
Slack's) and ``SLACK_TIMEOUT_SECONDS``. The bot needs ``chat:write``, ``files:write`` and
``channels:history`` (``groups:history`` for a private channel) and must be in the channel.

Once per week per channel. The summary is posted first with a marker for the week (message
metadata ``weekly_report`` / ``{"week": ...}`` and ``weekly-report:<week>`` in the text), the
ledger entry is written at once, then the HTML report and charts are uploaded into the message's
thread. A retry skips what the ledger says is done; if the ledger was lost or the process died
between posting and recording, the marker is found with ``conversations.history`` and the
message is reused rather than posted again. Attachments of a rediscovered message are uploaded
again only when its thread has no replies (an upload into a thread is a reply).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)

from orchestration.reporting.content import ReportData
from orchestration.reporting.ledger import DeliveryLedger
from orchestration.reporting.render import drop_off_sentence

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://slack.com/api/"
METADATA_EVENT_TYPE = "weekly_report"
HISTORY_PAGE_SIZE = 200
HISTORY_MAX_PAGES = 10
FIELDS_PER_SECTION = 10  # Block Kit's limit for a section's fields


class SlackDeliveryError(RuntimeError):
    """A Slack call failed; the message names the method and Slack's error code, never the
    token."""


@dataclass(frozen=True)
class SlackSettings:
    token: str = field(repr=False)
    channel: str
    base_url: str = DEFAULT_BASE_URL
    timeout_seconds: int = 30
    rate_limit_retries: int = 3
    connection_retries: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings | None:
        """The settings, or None when the token or channel is not set (delivery is skipped)."""
        env = os.environ if env is None else env
        token, channel = (
            env.get("SLACK_BOT_TOKEN", "").strip(),
            env.get("SLACK_CHANNEL", "").strip(),
        )
        if not token or not channel:
            return None
        return cls(
            token=token,
            channel=channel,
            base_url=env.get("SLACK_BASE_URL", "").strip() or DEFAULT_BASE_URL,
            timeout_seconds=int(env.get("SLACK_TIMEOUT_SECONDS", "30")),
        )

    @staticmethod
    def missing(env: Mapping[str, str] | None = None) -> list[str]:
        """Names of the unset variables that delivery needs (for a plain 'skipped' message)."""
        env = os.environ if env is None else env
        return [
            name for name in ("SLACK_BOT_TOKEN", "SLACK_CHANNEL") if not env.get(name, "").strip()
        ]


@dataclass(frozen=True)
class SlackDelivery:
    """What was delivered. Safe to put in metadata: holds no secret."""

    channel: str
    ts: str
    file_ids: list[str]
    status: str  # "posted", "already_sent" (ledger), "resumed" (message found, files uploaded now)
    permalink: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "slack_channel": self.channel,
            "slack_ts": self.ts,
            "slack_file_ids": list(self.file_ids),
            "slack_status": self.status,
        }


def report_marker(week: date) -> str:
    return f"weekly-report:{week.isoformat()}"


def build_client(settings: SlackSettings) -> WebClient:
    """A WebClient with slack-sdk's own retry handlers: 429s wait for Retry-After, dropped
    connections are retried."""
    return WebClient(
        token=settings.token,
        base_url=settings.base_url,
        timeout=settings.timeout_seconds,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=settings.connection_retries),
            RateLimitErrorRetryHandler(max_retry_count=settings.rate_limit_retries),
        ],
    )


def _headline_field(h) -> dict[str, str]:
    text = f"*{h.label}*\n{h.format_value()}"
    if h.change is not None:
        text += f"  ({h.format_change()} WoW)"
    if h.note:
        text += f"\n_{h.note}_"
    return {"type": "mrkdwn", "text": text}


def summary_blocks(data: ReportData, report_url: str | None = None) -> list[dict[str, Any]]:
    """Block Kit summary: headline numbers, biggest drop-off, recommendations, experiments."""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Weekly product report: {data.week_label}"},
        }
    ]
    fields = [_headline_field(h) for h in data.headlines]
    for start in range(0, len(fields), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[start : start + FIELDS_PER_SECTION]})
    blocks.append({"type": "divider"})
    if data.biggest_drop_off:
        drop = drop_off_sentence(data.biggest_drop_off)
    else:
        drop = "No funnel step lost users."
    blocks.append(
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Biggest drop-off*\n{drop}"}}
    )
    if data.ux_recommendations:
        recs = "\n".join(f"{i}. {t}" for i, t in enumerate(data.ux_recommendations, 1))
    else:
        recs = "No UX recommendations are available for this week."
    blocks.append(
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*UX recommendations*\n{recs}"[:3000]},
        }
    )
    if data.experiments:
        lines = []
        for e in data.experiments:
            lift = "" if e.relative_lift is None else f" lift {e.relative_lift * 100:+.1f}%"
            p = "" if e.p_value is None else f", p={e.p_value:.3g}"
            what = " / ".join(x for x in (e.metric, e.variant) if x)
            lines.append(f"• {e.experiment}{f' ({what})' if what else ''}:{lift}{p}")
        exp = "\n".join(lines)
    else:
        exp = "No experiment has a significant result this week."
    blocks.append(
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*Experiments*\n{exp}"[:3000]}}
    )
    context = f"`{report_marker(data.week_start)}`"
    if report_url:
        context = f"<{report_url}|Open the full report> · " + context
    else:
        context = "Full report and charts in the thread · " + context
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return blocks


def summary_text(data: ReportData) -> str:
    """The notification/fallback text; carries the week's marker for the history check."""
    parts = [f"{h.label} {h.format_value()}" for h in data.headlines[:2]]
    return (
        f"Weekly product report {data.week_label}: {', '.join(parts)} "
        f"({report_marker(data.week_start)})"
    )


def _fail(method: str, error: SlackClientError, channel: str) -> SlackDeliveryError:
    if isinstance(error, SlackApiError):
        code = error.response.get("error", "unknown_error")
        status = error.response.status_code
        return SlackDeliveryError(
            f"Slack {method} failed for channel {channel}: {code} (HTTP {status})"
        )
    return SlackDeliveryError(f"Slack {method} failed for channel {channel}: {error}")


class SlackReporter:
    """Slack delivery for the weekly report. Knows nothing of Dagster."""

    def __init__(self, settings: SlackSettings, client: WebClient | None = None):
        self.settings = settings
        self.client = client or build_client(settings)

    @property
    def channel(self) -> str:
        return self.settings.channel

    def find_posted(self, week: date) -> dict[str, Any] | None:
        """The channel's message carrying this week's marker, if any (newest first)."""
        oldest = datetime.combine(week, time.min, tzinfo=UTC).timestamp()
        marker = report_marker(week)
        cursor = None
        for _ in range(HISTORY_MAX_PAGES):
            try:
                page = self.client.conversations_history(
                    channel=self.channel,
                    oldest=f"{oldest:.6f}",
                    limit=HISTORY_PAGE_SIZE,
                    include_all_metadata=True,
                    cursor=cursor,
                )
            except SlackClientError as error:
                raise _fail("conversations.history", error, self.channel) from error
            for message in page.get("messages", []):
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (
                    metadata.get("event_type") == METADATA_EVENT_TYPE
                    and payload.get("week") == week.isoformat()
                ) or marker in (message.get("text") or ""):
                    return message
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not page.get("has_more") or not cursor:
                return None
        log.warning(
            "Slack history scan stopped after %d pages without finding %s",
            HISTORY_MAX_PAGES,
            marker,
        )
        return None

    def message(self, ts: str) -> dict[str, Any] | None:
        """One message of the channel by its ts (``conversations.history`` pinned to it)."""
        try:
            page = self.client.conversations_history(
                channel=self.channel, oldest=ts, latest=ts, inclusive=True, limit=1
            )
        except SlackClientError as error:
            raise _fail("conversations.history", error, self.channel) from error
        messages = [m for m in page.get("messages", []) if m.get("ts") == ts]
        return messages[0] if messages else None

    def post_report(
        self,
        data: ReportData,
        *,
        ledger: DeliveryLedger,
        html: str | bytes,
        charts: Mapping[str, bytes],
        report_url: str | None = None,
        html_filename: str | None = None,
    ) -> SlackDelivery:
        """Post the summary and upload the report and charts into its thread, once per week.

        Raises ``SlackDeliveryError`` on any Slack failure (after slack-sdk's retries); what was
        done before the failure is in the ledger, so a re-run carries on from there.
        """
        week, channel = data.week_start, self.channel
        entry = ledger.get(week, channel)
        if entry and entry.get("complete"):
            log.info("Weekly report for %s already sent to %s (ts %s)", week, channel, entry["ts"])
            return SlackDelivery(
                channel, entry["ts"], list(entry.get("file_ids", [])), "already_sent"
            )

        files_done = False
        if entry and entry.get("ts"):
            # Posted earlier, uploads not recorded: they may have finished before the ledger
            # write was lost, so ask Slack whether the thread already has them.
            ts, status = entry["ts"], "resumed"
            message = self.message(ts)
            files_done = message is not None and int(message.get("reply_count") or 0) > 0
        else:
            found = self.find_posted(week)
            if found is not None:
                ts, status = found["ts"], "resumed"
                files_done = int(found.get("reply_count") or 0) > 0
                log.info(
                    "Found this week's report already in %s (ts %s); not posting again", channel, ts
                )
            else:
                try:
                    response = self.client.chat_postMessage(
                        channel=channel,
                        text=summary_text(data),
                        blocks=summary_blocks(data, report_url),
                        metadata={
                            "event_type": METADATA_EVENT_TYPE,
                            "event_payload": {"week": week.isoformat()},
                        },
                        unfurl_links=False,
                    )
                except SlackClientError as error:
                    raise _fail("chat.postMessage", error, channel) from error
                ts, status = response["ts"], "posted"
            ledger.record(week, channel, kind="slack", ts=ts, complete=files_done, file_ids=[])

        file_ids: list[str] = list((entry or {}).get("file_ids", []))
        if not files_done:
            uploads = [
                {
                    "file": html.encode("utf-8") if isinstance(html, str) else html,
                    "filename": html_filename or f"weekly-report-{week.isoformat()}.html",
                    "title": f"Weekly product report {data.week_label}",
                }
            ]
            uploads += [
                {"file": png, "filename": name, "title": name} for name, png in charts.items()
            ]
            try:
                completed = self.client.files_upload_v2(
                    file_uploads=uploads, channel=channel, thread_ts=ts
                )
            except SlackClientError as error:
                raise _fail("files_upload_v2", error, channel) from error
            file_ids = [f["id"] for f in completed.get("files", [])]
        ledger.record(week, channel, kind="slack", ts=ts, complete=True, file_ids=file_ids)
        return SlackDelivery(channel, ts, file_ids, status)

    def post_failure_alert(
        self,
        *,
        run_id: str,
        job_name: str,
        failed_steps: Sequence[str] = (),
        assets: Sequence[str] = (),
        checks: Sequence[str] = (),
        error: str | None = None,
        run_url: str | None = None,
    ) -> str:
        """Post a run-failure alert naming the job, steps, assets and checks; returns the ts."""
        lines = [f":rotating_light: *Run failed:* `{job_name}` (run `{run_id[:8]}`)"]
        if assets:
            lines.append("*Assets:* " + ", ".join(f"`{a}`" for a in assets))
        if checks:
            lines.append("*Checks:* " + ", ".join(f"`{c}`" for c in checks))
        if failed_steps:
            lines.append("*Failed steps:* " + ", ".join(f"`{s}`" for s in failed_steps))
        if error:
            lines.append("```" + error[:1500] + "```")
        if run_url:
            lines.append(f"<{run_url}|Open the run>")
        text = "\n".join(lines)
        try:
            response = self.client.chat_postMessage(
                channel=self.channel,
                text=f"Run failed: {job_name} ({run_id})",
                blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}],
                metadata={"event_type": "run_failure", "event_payload": {"run_id": run_id}},
                unfurl_links=False,
            )
        except SlackClientError as error_:
            raise _fail("chat.postMessage", error_, self.channel) from error_
        return response["ts"]
