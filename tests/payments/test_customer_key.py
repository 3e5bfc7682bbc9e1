"""The one idempotency key sent outside a charge (creating a member's Stripe Customer) carries
the installation's prefix too: another database's member 1 must never get our member 1's
Customer replayed. Seen on the wire, through a recording server in front of localstripe."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from payments import gateway
from payments.installation import installation_prefix

pytestmark = [pytest.mark.django_db, pytest.mark.stripe]


@pytest.fixture
def recording_stripe(stripe_server, settings):
    """Forwards every request to localstripe and keeps its Idempotency-Key header."""
    keys: list[str] = []

    class Forward(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            keys.append(self.headers.get("Idempotency-Key", ""))
            answer = requests.post(
                stripe_server + self.path,
                data=body,
                headers={"Authorization": self.headers["Authorization"],
                         "Content-Type": self.headers["Content-Type"]},
                timeout=10,
            )  # fmt: skip
            self.send_response(answer.status_code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(answer.content)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{server.server_address[1]}"
    yield keys
    server.shutdown()


def test_the_customer_idempotency_key_carries_the_installation_prefix(recording_stripe):
    customer = gateway.create_customer(email="a@example.com", name="Ada", member_id=1)

    assert customer.startswith("cus_")
    assert recording_stripe == [f"{installation_prefix()}-member-1-customer"]
