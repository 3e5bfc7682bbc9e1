"""From payment to the door: a pre-order charged through localstripe gets its ticket email; the
QR code attached to that email, read by the door page's own QR reader (the vendored jsQR, in
Chromium), gives the code that checks the ticket in; a second scan says when it was used."""

import base64
from pathlib import Path

import pytest
from django.test import Client
from django.urls import reverse

from notifications.models import OutboundEmail
from preorders.states import Status
from tests.stripe_helpers import SUCCEEDS
from tests.test_ticket_delivery import charge
from tickets.models import CheckIn, Ticket

pytestmark = [
    pytest.mark.browser,
    pytest.mark.stripe,
    pytest.mark.django_db(transaction=True),
]

JSQR = Path(__file__).resolve().parents[2] / "static" / "vendor" / "jsqr" / "jsQR.js"


def read_qr(browser, png: bytes) -> str:
    """What a QR reader sees in a PNG, decoded in Chromium by the door page's fallback reader."""
    page = browser.new_page()
    try:
        page.set_content(
            f'<img id="qr" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
        page.add_script_tag(content=JSQR.read_text())
        return page.evaluate(
            """() => {
                const img = document.getElementById("qr");
                const canvas = document.createElement("canvas");
                canvas.width = img.naturalWidth;
                canvas.height = img.naturalHeight;
                const context = canvas.getContext("2d");
                context.drawImage(img, 0, 0);
                const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
                const found = jsQR(pixels.data, canvas.width, canvas.height);
                return found ? found.data : "";
            }"""
        )
    finally:
        page.close()


def test_the_emailed_qr_code_checks_the_ticket_in_once(
    browser, approved_preorder_factory, door_staff
):
    preorder = charge(approved_preorder_factory(SUCCEEDS))
    assert preorder.status == Status.TICKET_SENT
    ticket = Ticket.objects.get(preorder=preorder)
    email = OutboundEmail.objects.get(template="ticket", preorder=preorder)
    png = bytes(email.attachments.get(filename="ticket-qr.png").content)

    code = read_qr(browser, png)
    assert code == ticket.code

    door = Client()
    door.force_login(door_staff)
    url = reverse("tickets:door_scan", args=[preorder.event_id])
    first = door.post(url, {"code": code}, HTTP_ACCEPT="application/json").json()
    second = door.post(url, {"code": code}, HTTP_ACCEPT="application/json").json()
    assert first["headline"] == f"Valid — welcome {preorder.member.full_name}"
    assert second["result"] == "already_checked_in"
    assert second["headline"].startswith("Already checked in at ")
    assert CheckIn.objects.filter(ticket=ticket).count() == 1
