"""The production shape, end to end: the Procfile's release step, then exactly its web
(gunicorn), worker and beat processes with DJANGO_ENV=production on PostgreSQL and Redis, with
localstripe as Stripe. A week is played over HTTP: a member pre-orders, staff close the window,
approve and start the run, the charge goes through, localstripe's webhook reaches gunicorn, and
the ticket email is delivered. Then the logs are checked: JSON, request ids, no warnings."""

import json
import os
import re

import pytest
import requests

from tests.operations.production_stack import procfile, production_stack, wait_for
from tests.stripe_helpers import SUCCEEDS, confirm_card_setup

pytestmark = pytest.mark.stripe


class Browser:
    """Just enough of a browser over HTTP: cookies (kept by hand, since production marks them
    Secure and this test talks plain HTTP to gunicorn as the proxy would) and CSRF tokens."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        response = requests.request(
            method, self.site + path, headers=headers, allow_redirects=False, timeout=30,
            **kwargs,
        )  # fmt: skip
        self.cookies.update(response.cookies.get_dict())
        return response

    def get(self, path: str) -> requests.Response:
        return self.request("GET", path)

    def post(self, path: str, data: dict, *, form_page: str | None = None) -> requests.Response:
        page = self.get(form_page or path).text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        return self.request("POST", path, data={**data, "csrfmiddlewaretoken": token})

    def sign_in(self, email: str, password: str) -> None:
        response = self.post("/login/", {"username": email, "password": password})
        assert response.status_code == 302, response.text[:500]


def test_the_procfile_runs_a_week_in_production(tmp_path):
    assert set(procfile()) == {"release", "web", "worker", "beat"}
    with production_stack(tmp_path) as stack:
        release = stack.run(procfile()["release"], DJANGO_SECURE_SSL_REDIRECT="1")
        assert release.returncode == 0, release.stdout + release.stderr
        assert "System check identified no issues" in release.stdout
        # A clean start warns about nothing, the release step included.
        assert "warn" not in (release.stdout + release.stderr).lower(), release.stderr
        seeded = stack.run("python manage.py seed_demo")
        assert seeded.returncode == 0, seeded.stderr

        # Our proxy redirects to HTTPS; here localstripe's webhooks reach gunicorn directly.
        stack.env["DJANGO_SECURE_SSL_REDIRECT"] = "0"
        for name in ("web", "worker", "beat"):
            stack.start(name)
        wait_for(lambda: _status(stack.site + "/healthz") == 200, timeout=60, what="gunicorn",
                 stack=stack)  # fmt: skip
        wait_for(lambda: _status(stack.site + "/readyz") == 200, timeout=90,
                 what="/readyz (database, Redis, broker, beat heartbeat)", stack=stack)  # fmt: skip

        alice = Browser(stack.site)
        alice.sign_in("alice@example.com", "club-member-demo")
        dashboard = alice.get("/").text
        place = re.search(r'href="(/events/\d+/pre-order/)"', dashboard).group(1)
        page = alice.get(place).text
        client_secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
        stripe_url = stack.env["STRIPE_API_BASE"]
        assert confirm_card_setup(stripe_url, client_secret, SUCCEEDS)["status"] == "succeeded"
        placed = alice.post(place, {"setup_intent_id": client_secret.split("_secret_")[0]})
        assert placed.status_code == 302, placed.text[:500]
        preorder_id = int(re.search(r"/pre-orders/(\d+)/", placed.headers["Location"]).group(1))
        event_id = int(re.search(r"/events/(\d+)/", place).group(1))

        staff = Browser(stack.site)
        staff.sign_in("staff@harrys.club", "club-staff-demo")
        events = staff.get("/staff/events/").text
        cycle_id = int(re.search(r"/staff/cycles/(\d+)/close-early/", events).group(1))
        closed = staff.post(
            f"/staff/cycles/{cycle_id}/close-early/", {}, form_page="/staff/events/"
        )
        assert closed.status_code == 302
        decided = staff.post(
            f"/staff/events/{event_id}/decide/",
            {"action": "approve", "ids": str(preorder_id), "confirmed": "on"},
            form_page=f"/staff/events/{event_id}/",
        )
        assert decided.status_code == 302
        assert _status_of(stack, preorder_id) == "approved"
        started = staff.post(
            f"/staff/cycles/{cycle_id}/charge-run/start/",
            {"confirm": "charge"},
            form_page=f"/staff/cycles/{cycle_id}/charge-run/",
        )
        assert started.status_code == 302

        wait_for(lambda: _status_of(stack, preorder_id) == "ticket_sent", timeout=120,
                 what="the ticket to be sent", stack=stack)  # fmt: skip
        # The webhook reached gunicorn, was verified and handled by the worker.
        wait_for(lambda: stack.sql(
            "SELECT 1 FROM payments_stripeevent WHERE type = 'payment_intent.succeeded' "
            "AND status = 'processed'"), timeout=60, what="the webhook", stack=stack)  # fmt: skip
        (email,) = stack.sql(
            "SELECT status FROM notifications_outboundemail "
            "WHERE template = 'ticket' AND preorder_id = %s", preorder_id,
        )  # fmt: skip
        assert email == ("sent",)
        assert "Successful" in alice.get(f"/pre-orders/{preorder_id}/").text

        codes = stack.stop()
        assert all(code in (0, -15) for code in codes.values()), codes
        _check_logs(stack)


def _status(url: str) -> int | None:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return None


def _status_of(stack, preorder_id: int) -> str:
    return stack.sql("SELECT status FROM preorders_preorder WHERE id = %s", preorder_id)[0][0]


def _check_logs(stack) -> None:
    for name in ("web", "worker", "beat"):
        text = stack.log(name)
        lines = [line for line in text.splitlines() if line.strip()]
        assert lines, f"{name} wrote nothing"
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                # Celery's start-up banner is plain text on purpose (not a log record).
                assert name != "web", f"web wrote a line that is not JSON: {line!r}"
        root_warning = "SecurityWarning: You're running the worker with superuser"
        if os.geteuid() == 0:
            # This machine runs tests as root; Celery rightly warns about that (docs/deploy.md:
            # run every process as an unprivileged user), as a JSON record like any warning.
            # Nothing else may warn.
            records = [r for r in records if root_warning not in str(r.get("message"))]
            text = text.replace(root_warning, "")
        assert not [r for r in records if r.get("level") in ("WARNING", "ERROR", "CRITICAL")], (
            f"{name} warned: {[r for r in records if r.get('level') != 'INFO'][:5]}"
        )
        assert "Warning" not in text, f"{name} printed a warning:\n{text[-3000:]}"
    web = [json.loads(line) for line in stack.log("web").splitlines() if line.strip()]
    access = [r for r in web if r["logger"] == "presale.access"]
    assert access and all(r["request_id"] and r["status"] for r in access)
    # One line per request: no request id twice.
    ids = [r["request_id"] for r in access]
    assert len(ids) == len(set(ids))
    worker = [json.loads(x) for x in stack.log("worker").splitlines() if x.startswith("{")]
    assert any(r.get("charge_attempt_id") and r.get("preorder_id") for r in worker)
    # The worker's lines for a webhook carry the request id of the webhook's request.
    webhook_requests = {r["request_id"] for r in access if r["path"] == "/payments/stripe/webhook/"}
    handled = [r for r in worker if r["logger"] == "payments.stripe_events"]
    assert handled and all(r["request_id"] in webhook_requests for r in handled), handled
