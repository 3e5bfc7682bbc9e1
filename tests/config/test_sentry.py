"""Errors go to Sentry when SENTRY_DSN is set (here a local stand-in for Sentry's ingest
endpoint), without members' personal data; with no DSN, the SDK is not even started."""

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.config.production import manage

REPORT_AN_ERROR = """
import logging, sentry_sdk
print("active", sentry_sdk.get_client().is_active())
logging.getLogger("payments.charging").error("The charge run broke for pre-order 42")
sentry_sdk.flush(timeout=10)
"""


@pytest.fixture
def sentry_inbox():
    received: list[bytes] = []

    class Ingest(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.append(body)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ingest)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], received
    server.shutdown()


def test_with_a_dsn_errors_reach_sentry(sentry_inbox):
    port, received = sentry_inbox
    result = manage(
        "shell", "--no-imports", "-c", REPORT_AN_ERROR,
        SENTRY_DSN=f"http://publickey@127.0.0.1:{port}/7",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "active True" in result.stdout
    reports = [body for body in received if b"The charge run broke for pre-order 42" in body]
    assert reports, received
    assert b'"environment":"production"' in reports[0].replace(b" ", b"")


def test_without_a_dsn_nothing_is_started(sentry_inbox):
    _port, received = sentry_inbox
    result = manage("shell", "--no-imports", "-c", REPORT_AN_ERROR, SENTRY_DSN=None)
    assert result.returncode == 0, result.stderr
    assert "active False" in result.stdout
    assert not received
