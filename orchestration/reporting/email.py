"""Sending the weekly report by SMTP: STARTTLS, an HTML body with inline charts, a text part.

The message is ``multipart/alternative``: a ``text/plain`` part (the Markdown report) and a
``multipart/related`` part holding the HTML and each chart as an inline image referenced by
``cid:``. (Mail clients block ``data:`` URIs, so the e-mail HTML references Content-IDs rather
than reusing the self-contained HTML file.)

Settings, from the environment (``EmailSettings.from_env``): ``SMTP_HOST``, ``SMTP_PORT`` (587),
``SMTP_USER`` and ``SMTP_PASSWORD`` (login only when a user is set), ``SMTP_FROM``,
``REPORT_EMAIL_TO`` (comma-separated), ``SMTP_STARTTLS`` (true), ``SMTP_TIMEOUT_SECONDS`` (30)
and ``SMTP_CA_FILE`` (a CA bundle to trust instead of the system's, e.g. an internal relay's).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from orchestration.reporting.content import ReportData
from orchestration.reporting.ledger import DeliveryLedger
from orchestration.reporting.render import render_html

log = logging.getLogger(__name__)


class EmailDeliveryError(RuntimeError):
    """Sending failed; the message names the server and the SMTP error, never the password."""


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class EmailSettings:
    host: str
    sender: str
    recipients: tuple[str, ...]
    port: int = 587
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = True
    timeout_seconds: float = 30.0
    ca_file: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EmailSettings | None:
        """The settings, or None when host, sender or recipients are not set."""
        env = os.environ if env is None else env
        host, sender = env.get("SMTP_HOST", "").strip(), env.get("SMTP_FROM", "").strip()
        recipients = tuple(
            a.strip() for a in env.get("REPORT_EMAIL_TO", "").split(",") if a.strip()
        )
        if not host or not sender or not recipients:
            return None
        return cls(
            host=host,
            sender=sender,
            recipients=recipients,
            port=int(env.get("SMTP_PORT", "587")),
            user=env.get("SMTP_USER", "").strip() or None,
            password=env.get("SMTP_PASSWORD") or None,
            starttls=_truthy(env.get("SMTP_STARTTLS", "true")),
            timeout_seconds=float(env.get("SMTP_TIMEOUT_SECONDS", "30")),
            ca_file=env.get("SMTP_CA_FILE", "").strip() or None,
        )

    @staticmethod
    def missing(env: Mapping[str, str] | None = None) -> list[str]:
        env = os.environ if env is None else env
        return [
            n for n in ("SMTP_HOST", "SMTP_FROM", "REPORT_EMAIL_TO") if not env.get(n, "").strip()
        ]

    @property
    def channel(self) -> str:
        """The ledger's channel key: the recipient list."""
        return "email:" + ",".join(sorted(self.recipients))

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


def build_message(
    data: ReportData, markdown: str, charts: Mapping[str, bytes], settings: EmailSettings
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"Weekly product report: {data.week_label}"
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(settings.sender)[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(idstring=f"weekly-report-{data.week_start}", domain=domain)
    message.set_content(markdown)

    cids = {name: make_msgid(domain=domain) for name in charts}  # short: no header folding
    # render_html gets "cid:" URIs in place of data URIs: same template, mail-safe images.
    html = render_html(
        data, {}, image_uris={name: "cid:" + cid[1:-1] for name, cid in cids.items()}
    )
    message.add_alternative(html, subtype="html")
    html_part = message.get_payload()[1]
    for name, png in charts.items():
        html_part.add_related(
            png,
            maintype="image",
            subtype="png",
            cid=cids[name],
            filename=name,
            disposition="inline",
        )
    return message


def send_report_email(
    data: ReportData,
    *,
    markdown: str,
    charts: Mapping[str, bytes],
    settings: EmailSettings,
    ledger: DeliveryLedger | None = None,
) -> dict[str, object]:
    """Send the report once per week to these recipients; returns metadata (no secrets).

    ``status`` is ``sent`` or ``already_sent``. Raises ``EmailDeliveryError`` when the server
    refuses the connection, TLS, login or any recipient.
    """
    week: date = data.week_start
    if ledger is not None and ledger.already_sent(week, settings.channel):
        entry = ledger.get(week, settings.channel) or {}
        return {
            "status": "already_sent",
            "message_id": entry.get("message_id"),
            "recipients": list(settings.recipients),
        }
    message = build_message(data, markdown, charts, settings)
    where = f"{settings.host}:{settings.port}"
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
            smtp.ehlo()
            if settings.starttls:
                smtp.starttls(context=settings.ssl_context())
                smtp.ehlo()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            refused = smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise EmailDeliveryError(
            f"sending the weekly report via {where} failed: {error!r}"
        ) from error
    if ledger is not None:
        ledger.record(
            week,
            settings.channel,
            kind="email",
            complete=True,
            message_id=message["Message-ID"],
            refused=sorted(refused),
        )
    if refused:
        # The others got it (and the ledger says so): a re-run will not resend to them.
        raise EmailDeliveryError(f"{where} refused recipients: {sorted(refused)}")
    log.info(
        "Weekly report for %s e-mailed to %d recipients via %s",
        week,
        len(settings.recipients),
        where,
    )
    return {
        "status": "sent",
        "message_id": message["Message-ID"],
        "recipients": list(settings.recipients),
    }
