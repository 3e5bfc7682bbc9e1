"""The door on a phone, in Chromium: a door account picks tonight's event, types codes and sees
each of the five answers, big and announced; the count follows other doors' scans; axe finds
nothing serious. A second test points a fake camera at a ticket's QR code (made as the email
makes it) and lets the page's scanner read it. Screenshots land in test-artifacts/door-*.png."""

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from events import london
from preorders.states import Status
from tests.axe import assert_accessible
from tests.browser import log_in
from tests.conftest import ARTIFACTS, _chromium_path, screenshot
from tickets import checkin
from tickets.delivery import qr_symbol
from tickets.models import CheckIn

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-Good-passw0rd"


@pytest.fixture
def tonight(make_event):
    return make_event(title="Jazz in the Cellar", starts_at=timezone.now() + dt.timedelta(hours=1))


def answer_shows(page, result: str, headline: str) -> None:
    box = page.get_by_test_id("door-answer")
    expect(box).to_have_attribute("data-result", result)
    expect(box).to_contain_text(headline)
    expect(box).to_have_attribute("aria-live", "assertive")


def scan(page, code: str) -> None:
    field = page.get_by_label("Ticket code")
    field.fill(code)
    field.press("Enter")


def test_a_door_account_types_codes_and_sees_each_answer(
    live_server, phone_page, tonight, make_event, member, make_member, issue_ticket, door_staff
):
    page = phone_page
    folk = make_event(title="Folk Night", starts_at=timezone.now() + dt.timedelta(days=6))
    alice = issue_ticket(tonight, member, code="HC-AL1C-E000-0001")
    bob = issue_ticket(folk, make_member(full_name="Bob Baker"), code="HC-B0B0-0000-0002")
    refunded = issue_ticket(tonight, code="HC-REFD-0000-0003", status=Status.REFUNDED)
    other = issue_ticket(tonight, make_member(full_name="Cleo Cole"), code="HC-CLE0-0000-0004")

    log_in(page, live_server.url, door_staff.email, PASSWORD)
    page.get_by_role("link", name="Door").click()
    expect(page.get_by_role("heading", name="At the door")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Jazz in the Cellar"))).to_contain_text(
        "Tonight"
    )
    expect(page.get_by_role("link", name=re.compile("Folk Night"))).not_to_contain_text("Tonight")
    assert_accessible(page, "door events")
    screenshot(page, "door-1-events")
    page.get_by_role("link", name=re.compile("Jazz in the Cellar")).click()
    expect(page.get_by_test_id("door-count")).to_contain_text("0 of 2 tickets checked in")
    expect(page.get_by_label("Ticket code")).to_be_focused()
    assert_accessible(page, "door page")

    scan(page, alice.code.lower())
    answer_shows(page, "valid", "Valid — welcome Alice Archer")
    expect(page.get_by_test_id("door-count")).to_contain_text("1 of 2 tickets checked in")
    expect(page.get_by_label("Ticket code")).to_have_value("")
    expect(page.get_by_label("Ticket code")).to_be_focused()
    expect(page.get_by_test_id("door-recent").locator("li")).to_have_count(1)
    expect(page.get_by_test_id("door-recent")).to_contain_text(f"{alice.code} · Alice Archer")
    assert_accessible(page, "valid answer")
    screenshot(page, "door-2-valid")

    scan(page, alice.code)
    clock = f"{london.to_london(CheckIn.objects.get(ticket=alice).checked_in_at):%H:%M}"
    answer_shows(page, "already_checked_in", f"Already checked in at {clock} by Dan Door")
    assert_accessible(page, "already answer")
    screenshot(page, "door-3-already")

    scan(page, bob.code)
    answer_shows(page, "wrong_event", "Not for this event")
    expect(page.get_by_test_id("door-answer")).to_contain_text("is for Folk Night on")
    assert_accessible(page, "wrong event answer")
    screenshot(page, "door-4-wrong-event")

    scan(page, refunded.code)
    answer_shows(page, "void", "Refunded or void")
    assert_accessible(page, "void answer")
    screenshot(page, "door-5-void")

    scan(page, f"https://evil.example/t/{other.code}?x=<b>")
    answer_shows(page, "unknown", "Unknown code")
    expect(page.get_by_test_id("door-recent").locator("li")).to_have_count(5)
    expect(page.get_by_test_id("door-recent").locator("li").first).to_contain_text("Unknown code")
    assert_accessible(page, "unknown answer")
    screenshot(page, "door-6-unknown")

    page.get_by_label("Ticket code").fill("")
    page.get_by_role("button", name="Check in").click()
    expect(page.get_by_test_id("door-answer")).to_contain_text("Type or scan a ticket code first.")

    # Another door lets Cleo in: this page's count follows within its 5-second refresh.
    checkin.check_in(tonight.pk, other.code, door=door_staff)
    expect(page.get_by_test_id("door-count")).to_contain_text(
        "2 of 2 tickets checked in", timeout=12_000
    )
    # Every scan is in the record, newest first, after a reload.
    page.reload()
    recent = page.get_by_test_id("door-recent")
    expect(recent.locator("li").first).to_contain_text("Valid")
    expect(recent).to_contain_text("Unknown code")
    assert CheckIn.objects.filter(undone_at__isnull=True).count() == 2
    screenshot(page, "door-7-after-reload")

    # Signed out meanwhile: the door is told so, not shown a stale or wrong answer.
    page.context.clear_cookies()
    scan(page, alice.code)
    expect(page.get_by_test_id("door-answer")).to_contain_text(
        "Nothing was checked in: reload the page"
    )
    expect(page.get_by_test_id("door-answer")).not_to_have_attribute("data-result", re.compile("."))


def qr_video(code: str, path, *, size: int = 480, frames: int = 4) -> None:
    """A few frames of raw video (YUV4MPEG2, the format Chromium's fake camera reads) showing the
    ticket's QR code, drawn from the same segno symbol the email and dashboard use."""
    rows = [list(row) for row in qr_symbol(code).matrix_iter(scale=8, border=4)]
    offset = (size - len(rows)) // 2
    luma = bytearray([235]) * (size * size)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                luma[(y + offset) * size + x + offset] = 16
    chroma = bytes([128]) * (size * size // 4)
    with open(path, "wb") as video:
        video.write(f"YUV4MPEG2 W{size} H{size} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            video.write(b"FRAME\n" + bytes(luma) + chroma + chroma)


def test_the_camera_reads_a_ticket_qr_code(
    live_server, browser, tonight, member, issue_ticket, door_staff, tmp_path
):
    alice = issue_ticket(tonight, member)
    video = tmp_path / "ticket.y4m"
    qr_video(alice.code, video)
    camera_browser = browser.browser_type.launch(
        executable_path=_chromium_path(),
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = camera_browser.new_context(viewport={"width": 390, "height": 844})
        context.set_default_timeout(15_000)
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        log_in(page, live_server.url, door_staff.email, PASSWORD)
        page.goto(f"{live_server.url}/staff/door/{tonight.pk}/")
        page.get_by_role("button", name="Scan with the camera").click()
        expect(page.get_by_role("button", name="Stop the camera")).to_have_attribute(
            "aria-pressed", "true"
        )
        answer_shows(page, "valid", "Valid — welcome Alice Archer")
        expect(page.get_by_test_id("door-count")).to_contain_text("1 of 1 ticket checked in")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "door-8-camera.png", full_page=True)
        # The code stays in front of the camera: it is read once, not once a frame.
        page.wait_for_timeout(1500)
        assert CheckIn.objects.filter(ticket=alice).count() == 1
        assert alice.door_scans.count() == 1
        page.get_by_role("button", name="Stop the camera").click()
        expect(page.locator("#camera-view")).to_be_hidden()
        context.close()
    finally:
        camera_browser.close()


def test_a_manager_sees_who_came_and_undoes_a_check_in(
    live_server, browser, tonight, member, issue_ticket, door_staff, staff
):
    alice = issue_ticket(tonight, member)
    checkin.check_in(tonight.pk, alice.code, door=door_staff)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, live_server.url, staff.email, PASSWORD)
        page.goto(f"{live_server.url}/staff/events/{tonight.pk}/")
        section = page.get_by_test_id("attendance")
        expect(section.get_by_test_id("attendance-count")).to_have_text("1 of 1")
        expect(section).to_contain_text("Alice Archer")
        expect(section).to_contain_text("Dan Door")
        assert_accessible(page, "staff event page with who came")
        section.scroll_into_view_if_needed()
        screenshot(page, "door-9-who-came")

        section.get_by_role("link", name="Undo…").click()
        expect(page.get_by_role("heading", name="Undo a check-in")).to_be_visible()
        assert_accessible(page, "undo page")
        page.get_by_label("Why?").fill("Scanned the wrong phone")
        page.get_by_role("button", name="Undo the check-in").click()
        expect(page.get_by_role("status")).to_contain_text("is undone: it can be scanned in again")
        section = page.get_by_test_id("attendance")
        expect(section.get_by_test_id("attendance-count")).to_have_text("0 of 1")
        expect(section).to_contain_text("“Scanned the wrong phone”")
        screenshot(page, "door-10-undone")
        assert checkin.check_in(tonight.pk, alice.code, door=door_staff).admitted
    finally:
        context.close()
