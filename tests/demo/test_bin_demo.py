"""`./bin/demo` itself, as a newcomer runs it: from a clean clone's files (no var/, nothing
generated), on free ports. It answers, every printed login works, the invitation link opens, a
member can pre-order (and the worker emails them), staff close, approve and charge on the staff
pages and the member's ticket arrives through the demo's own worker, it stops cleanly on Ctrl-C
with nothing left running, and starting it again gives a fresh, playable week. Its start-up
prints no warning."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.stripe_helpers import SUCCEEDS, confirm_card_setup

ROOT = Path(__file__).resolve().parents[2]
OURS = (
    "DJANGO_", "STRIPE_", "RESEND_", "MAILERSEND_", "SMTP_URL", "ANYMAIL_", "PRESALE_",
    "SENTRY_", "REDIS_URL", "CELERY_", "DATABASE_URL", "LOCALSTRIPE_", "SITE_URL", "APP_PORT",
)  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def clone(tmp_path) -> Path:
    """The files a fresh clone has (what git tracks, or would with the next commit), with this
    checkout's .venv lent to it so that no package is downloaded again."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    target = tmp_path / "clone"
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    assert not (target / "var").exists()
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


class Demo:
    def __init__(self, folder: Path, log: Path) -> None:
        self.folder, self.log_path = folder, log
        self.port, self.stripe_port = free_port(), free_port()
        self.site = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
        env |= {"APP_PORT": str(self.port), "LOCALSTRIPE_PORT": str(self.stripe_port)}
        with log.open("w") as out:
            self.process = subprocess.Popen(
                ["./bin/demo"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def output(self) -> str:
        return self.log_path.read_text()

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"bin/demo exited:\n{self.output[-4000:]}"
            try:
                if requests.get(f"{self.site}/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"bin/demo did not answer:\n{self.output[-4000:]}")

    def stop(self) -> int:
        """Ctrl-C, as a person stops it; everything it started must be gone afterwards."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise AssertionError(f"bin/demo did not stop:\n{self.output[-3000:]}") from None
        deadline = time.monotonic() + 10
        while True:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return code
            if time.monotonic() > deadline:
                os.killpg(self.process.pid, signal.SIGKILL)
                raise AssertionError("processes started by bin/demo were left running")
            time.sleep(0.2)


def signed_in(site: str, email: str, password: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{site}/login/", timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = session.post(
        f"{site}/login/",
        data={"username": email, "password": password, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, f"{email} could not sign in"
    return session


def post_form(session: requests.Session, site: str, page_path: str, to: str, **data) -> str:
    """Post one of the page's forms as a browser would (with the page's CSRF token)."""
    page = session.get(site + page_path, timeout=10).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = session.post(site + to, data={**data, "csrfmiddlewaretoken": token}, timeout=60)
    assert response.status_code == 200, f"{to} answered {response.status_code}"
    return response.text


def place_preorder(demo: Demo, session: requests.Session) -> str:
    dashboard = session.get(f"{demo.site}/", timeout=10).text
    place = re.search(r'href="(/events/\d+/pre-order/)"', dashboard)
    assert place, "no event open for pre-orders on the dashboard"
    page = session.get(demo.site + place.group(1), timeout=10).text
    secret = re.search(r'data-client-secret="([^"]+)"', page).group(1)
    stripe = f"http://127.0.0.1:{demo.stripe_port}"
    assert confirm_card_setup(stripe, secret, SUCCEEDS)["status"] == "succeeded"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    placed = session.post(
        demo.site + place.group(1),
        data={"setup_intent_id": secret.split("_secret_")[0], "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=30,
    )
    assert placed.status_code == 302 and "/pre-orders/" in placed.headers["Location"]
    return re.search(r"/pre-orders/(\d+)/", placed.headers["Location"]).group(1)


def warnings_in(output: str) -> list[str]:
    if os.geteuid() == 0:
        # Tests here run as root, and Celery rightly warns about that; a person's laptop does
        # not run the demo as root. Nothing else may warn.
        output = output.replace("SecurityWarning: You're running the worker with superuser", "")
        output = output.replace("_warn_or_raise_security_error(", "")
    return [line for line in output.splitlines() if re.search("warn", line, re.IGNORECASE)]


def test_bin_demo_starts_answers_stops_and_restarts_with_a_fresh_week(clone, tmp_path):
    demo = Demo(clone, tmp_path / "first.log")
    try:
        demo.wait_until_up()
        output = demo.output
        logins = re.findall(r"(?:Staff|Member):\s+(\S+@\S+) / (\S+)", output)
        assert len(logins) >= 4, output
        for email, password in logins:
            signed_in(demo.site, email, password)
        invite = re.search(r"Invite:\s+(http\S+)", output).group(1)
        assert "Create my account" in requests.get(invite, timeout=10).text

        alice = signed_in(demo.site, "alice@example.com", "club-member-demo")
        preorder_id = place_preorder(demo, alice)
        assert "Pending" in alice.get(f"{demo.site}/", timeout=10).text
        # The worker runs: it delivered the pre-order's email into the staff outbox.
        staff = signed_in(demo.site, "staff@harrys.club", "club-staff-demo")
        deadline = time.monotonic() + 60
        while "alice@example.com" not in staff.get(f"{demo.site}/staff/outbox/", timeout=10).text:
            assert time.monotonic() < deadline, "the worker never delivered the email"
            time.sleep(1)
        # The README's week in five minutes, on the staff pages: close, approve, charge. The
        # demo's own worker charges at localstripe, its webhook settles, the ticket is emailed.
        events = staff.get(f"{demo.site}/staff/events/", timeout=10).text
        cycle_id = re.search(r'action="/staff/cycles/(\d+)/close-early/"', events).group(1)
        post_form(staff, demo.site, "/staff/events/", f"/staff/cycles/{cycle_id}/close-early/")
        preorder = f"/staff/pre-orders/{preorder_id}/"
        post_form(staff, demo.site, preorder, preorder + "decide/", action="approve")
        run = f"/staff/cycles/{cycle_id}/charge-run/"
        post_form(staff, demo.site, run, f"{run}start/", confirm="charge")
        deadline = time.monotonic() + 90
        while "Successful – Ticket Sent" not in alice.get(f"{demo.site}/", timeout=10).text:
            assert time.monotonic() < deadline, "no ticket: " + demo.output[-3000:]
            time.sleep(1)
        assert "Your ticket" in staff.get(f"{demo.site}/staff/outbox/", timeout=10).text
    finally:
        code = demo.stop()
    assert "SIGKILL" not in demo.output, demo.output[-2000:]
    # 130: stopped by Ctrl-C (128 + SIGINT), after every process stopped by itself.
    assert code == 130, f"bin/demo exited with {code}"
    assert not warnings_in(demo.output), warnings_in(demo.output)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{demo.site}/healthz", timeout=2)

    again = Demo(clone, tmp_path / "second.log")
    try:
        again.wait_until_up()
        alice = signed_in(again.site, "alice@example.com", "club-member-demo")
        assert "Pending" not in alice.get(f"{again.site}/", timeout=10).text
        place_preorder(again, alice)  # the week is playable again, on a fresh localstripe
    finally:
        again.stop()
