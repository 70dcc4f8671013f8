"""E-mail delivery against a local aiosmtpd server that requires STARTTLS and AUTH
(``tests.report_servers.smtp_server``); the client trusts its self-signed certificate only through
``SMTP_CA_FILE`` (the module's ssl-context setting), so certificate checking stays on.
"""

from __future__ import annotations

import email
import email.policy

import pytest

from orchestration.reporting.charts import build_charts
from orchestration.reporting.content import build_report_data
from orchestration.reporting.email import EmailDeliveryError, EmailSettings, send_report_email
from orchestration.reporting.ledger import DeliveryLedger
from orchestration.reporting.render import render_markdown
from tests.report_servers import PASSWORD, PNG_MAGIC, RECIPIENTS, smtp_env
from tests.test_report_content import WEEK, report_marts


def _settings(controller, certificate, **overrides) -> EmailSettings:
    return EmailSettings.from_env(smtp_env(controller, certificate, **overrides))


@pytest.fixture(scope="module")
def report():
    marts = report_marts()
    data = build_report_data(WEEK, marts)
    charts = build_charts(WEEK, marts)
    return data, charts, render_markdown(data, list(charts))


def test_settings_from_env():
    assert EmailSettings.from_env({"SMTP_HOST": "mail"}) is None
    assert EmailSettings.missing({"SMTP_HOST": "mail"}) == ["SMTP_FROM", "REPORT_EMAIL_TO"]
    settings = EmailSettings.from_env(
        {"SMTP_HOST": "mail", "SMTP_FROM": "a@b", "REPORT_EMAIL_TO": "x@y", "SMTP_PASSWORD": "pw"}
    )
    assert (settings.port, settings.starttls, settings.user) == (587, True, None)
    assert "pw" not in repr(settings)


def test_report_arrives_over_starttls_with_text_html_and_inline_charts(
    smtp_server, certificate, report, tmp_path
):
    controller, inbox = smtp_server
    data, charts, markdown = report
    ledger = DeliveryLedger(tmp_path / "ledger.json")
    result = send_report_email(
        data,
        markdown=markdown,
        charts=charts,
        settings=_settings(controller, certificate),
        ledger=ledger,
    )
    assert result["status"] == "sent" and result["recipients"] == RECIPIENTS
    assert PASSWORD not in repr(result)

    [(session, envelope)] = inbox.envelopes
    assert session.ssl is not None  # the message travelled after STARTTLS
    assert session.authenticated and inbox.logins[-1][1] is True
    assert envelope.mail_from == "reports@analytics.example"
    assert envelope.rcpt_tos == RECIPIENTS

    message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
    assert message["Subject"] == "Weekly product report: 2026-09-14 to 2026-09-20"
    assert message["Message-ID"] == result["message_id"]
    assert message.get_content_type() == "multipart/alternative"
    text_part, related = message.get_payload()
    assert text_part.get_content_type() == "text/plain"
    text = text_part.get_content()
    assert "| Active users | 4 | 2 | +100.0% |" in text
    assert "| Revenue | 15.00 | 20.00 | -25.0% |" in text

    assert related.get_content_type() == "multipart/related"
    html_part, *images = related.get_payload()
    html = html_part.get_content()
    assert html_part.get_content_type() == "text/html"
    assert "22.5%" in html and "-17.5 pp" in html and "data:image" not in html
    assert len(images) == len(charts)
    for image in images:
        cid = image["Content-ID"].strip().strip("<>")
        assert f'src="cid:{cid}"' in html
        assert image.get_content_type() == "image/png"
        assert image.get_content_disposition() == "inline"
        payload = image.get_content()
        assert payload.startswith(PNG_MAGIC) and payload == charts[image.get_filename()]

    # Once per week per recipient list: a retry does not send again.
    again = send_report_email(
        data,
        markdown=markdown,
        charts=charts,
        settings=_settings(controller, certificate),
        ledger=ledger,
    )
    assert again["status"] == "already_sent" and len(inbox.envelopes) == 1


def test_wrong_password_fails_clearly_without_the_password(smtp_server, certificate, report):
    controller, inbox = smtp_server
    data, charts, markdown = report
    settings = _settings(controller, certificate, SMTP_PASSWORD="wrong-password")
    with pytest.raises(EmailDeliveryError, match="SMTPAuthenticationError") as info:
        send_report_email(data, markdown=markdown, charts=charts, settings=settings)
    assert "wrong-password" not in str(info.value)
    assert inbox.envelopes == []


def test_untrusted_certificate_is_refused(smtp_server, certificate, report):
    controller, inbox = smtp_server
    data, charts, markdown = report
    settings = _settings(controller, certificate, SMTP_CA_FILE="")  # system CAs only
    with pytest.raises(EmailDeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
        send_report_email(data, markdown=markdown, charts=charts, settings=settings)
    assert inbox.envelopes == []
