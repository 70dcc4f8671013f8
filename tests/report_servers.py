"""Local servers that speak the real protocols, shared by the delivery and weekly-report tests.

* ``FakeSlack`` (on pytest-httpserver): the Slack Web API methods the report uses, with Slack's
  JSON shapes and ``ok`` semantics: ``chat.postMessage``, ``files.getUploadURLExternal``, the upload
  URL it hands out, ``files.completeUploadExternal`` and ``conversations.history`` (with message
  metadata and thread ``reply_count``). It checks the Bearer token and can answer 429 with
  Retry-After or an ``ok: false`` error on demand.
* ``smtp_server``: aiosmtpd requiring STARTTLS and AUTH, with a self-signed certificate made here
  with ``cryptography``; clients trust it only through ``SMTP_CA_FILE``.

Use the fixtures by importing them into a test module (``from tests.report_servers import ...``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import json
import re
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

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


USER, PASSWORD = "reports", "s3cret-smtp-password"
RECIPIENTS = ["ana@example.com", "ben@example.com"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class Inbox:
    def __init__(self):
        self.envelopes = []
        self.logins = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append((session, envelope))
        return "250 Message accepted for delivery"


def _authenticator(inbox: Inbox):
    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data == (
            USER.encode(),
            PASSWORD.encode(),
        )
        inbox.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)

    return authenticate


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_server(certificate):
    cert_path, key_path = certificate
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        tls_context=tls,
        require_starttls=True,
        authenticator=_authenticator(inbox),
        auth_required=True,
    )
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


def slack_env(slack: FakeSlack) -> dict[str, str]:
    """The environment that points the Slack delivery at the stand-in."""
    return {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_CHANNEL": CHANNEL,
        "SLACK_BASE_URL": slack.server.url_for("/api/"),
    }


def smtp_env(controller, certificate, **overrides) -> dict[str, str]:
    """The environment that points the e-mail delivery at the local SMTP server."""
    return {
        "SMTP_HOST": "localhost",
        "SMTP_PORT": str(controller.port),
        "SMTP_USER": USER,
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_FROM": "Analytics <reports@analytics.example>",
        "REPORT_EMAIL_TO": " , ".join(RECIPIENTS),
        "SMTP_STARTTLS": "true",
        "SMTP_TIMEOUT_SECONDS": "5",
        "SMTP_CA_FILE": str(certificate[0]),
        **overrides,
    }
