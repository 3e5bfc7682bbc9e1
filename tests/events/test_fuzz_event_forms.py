"""Random input at the staff event forms (create, edit, delete, copy a week), in the style of
tests/test_fuzz_inputs.py: never a 5xx, and a refused request changes no event, no log entry,
no ticket and no pre-order. PRESALE_FUZZ_EXAMPLES sets the number of examples."""

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from events.models import Event, EventLogEntry, PresaleCycle
from preorders.models import PreOrder
from tests.events.conftest import london
from tests.test_fuzz_inputs import (
    FUZZ,
    encodings,
    form_data,
    real_or_random,
    rolled_back,
    send,
    verdict,
)
from tickets.models import Ticket

pytestmark = pytest.mark.django_db


def snapshot() -> dict:
    return {
        "events": list(Event.objects.order_by("pk").values()),
        "log": EventLogEntry.objects.count(),
        "tickets": list(Ticket.objects.order_by("pk").values_list("pk", "event_id")),
        "preorders": list(PreOrder.objects.order_by("pk").values_list("pk", "event_id", "status")),
        "cycles": list(PresaleCycle.objects.order_by("pk").values()),
    }


def fuzz_post(user, path: str, data: dict, encoding: str) -> str:
    with rolled_back():
        client = Client()
        client.force_login(user)
        before = snapshot()
        response = send(client, path, data, encoding)
        assert response.status_code < 500, (path, data, response.status_code)
        outcome = verdict(response)
        if outcome == "refused":
            assert snapshot() == before, f"{path} refused {data!r} yet changed something"
        return outcome


@pytest.fixture
def world(this_week, next_week, reviewer, make_member):
    from events.planning import EventDetails, create_event
    from events.selectors import planning_cycles

    planning_cycles()  # the pages create the weeks ahead on first sight: do it before any snapshot
    booked = create_event(
        EventDetails(
            cycle=this_week,
            title="Booked",
            starts_at=london(2026, 12, 12, 20, 0),
            venue="The Cellar",
            public_price_pence=2500,
        ),
        actor=reviewer,
    )
    empty = create_event(
        EventDetails(
            cycle=next_week,
            title="Empty",
            starts_at=london(2026, 12, 19, 20, 0),
            venue="Main Room",
            public_price_pence=1800,
        ),
        actor=reviewer,
    )
    member = make_member()
    PreOrder.objects.create(
        member=member,
        event=booked,
        cycle=this_week,
        amount_pence=booked.member_price_pence,
        stripe_customer_id="cus_f",
        payment_method_id="pm_f",
        setup_intent_id="seti_f",
    )
    return {"booked": booked, "empty": empty, "cycles": [this_week.pk, next_week.pk]}


def event_fields(cycles: list[int]) -> st.SearchStrategy:
    times = st.one_of(
        st.sampled_from(
            ["2026-12-12T20:00", "2026-12-08T19:00", "2026-12-19T21:30", "2027-03-28T01:30"]
        ),
        st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
    )
    money = st.one_of(
        st.sampled_from(["0.29", "0.30", "25", "22.50", "1e3", "-1", "99999.99"]),
        st.decimals(allow_nan=True, allow_infinity=True).map(str),
    )
    return form_data(
        {
            "cycle": st.one_of(st.sampled_from(cycles), st.integers().map(str)),
            "title": st.text(max_size=250),
            "starts_at": times,
            "venue": st.text(max_size=250),
            "description": st.text(max_size=50),
            "public_price": money,
            "discount_kind": st.sampled_from(["default", "percent", "fixed", "other"]),
            "discount_percent": st.integers(min_value=-5, max_value=120).map(str),
            "discount_fixed": money,
            "fulfilment_mode": st.sampled_from(["fifo", "ballot", "lottery"]),
            "public_sale_url": st.sampled_from(["", "https://x.example/a", "javascript:alert(1)"]),
            "public_sale_at": times,
            "confirm_price_change": st.sampled_from(["True", "", "on"]),
        }
    )


@FUZZ
@given(data=st.data(), encoding=encodings)
def test_creating_an_event(reviewer, world, data, encoding):
    fields = data.draw(event_fields(world["cycles"]), label="fields")
    fuzz_post(reviewer, reverse("staff:event_new"), fields, encoding)


@FUZZ
@given(data=st.data(), encoding=encodings)
def test_editing_an_event(reviewer, world, data, encoding):
    target = data.draw(st.sampled_from([world["booked"].pk, world["empty"].pk]), label="event")
    fields = data.draw(event_fields(world["cycles"]), label="fields")
    fuzz_post(reviewer, reverse("staff:event_edit", args=[target]), fields, encoding)


@FUZZ
@given(data=st.data(), fields=form_data(["post", "confirm"]), encoding=encodings)
def test_deleting_an_event(reviewer, world, data, fields, encoding):
    target = data.draw(real_or_random(world["booked"].pk, world["empty"].pk), label="event")
    fuzz_post(reviewer, reverse("staff:event_delete", args=[target]), fields, encoding)


@FUZZ
@given(data=st.data(), fields=form_data(["week"]), encoding=encodings)
def test_copying_a_week(reviewer, world, data, fields, encoding):
    target = data.draw(real_or_random(*world["cycles"]), label="cycle")
    fuzz_post(reviewer, reverse("staff:copy_week", args=[target]), fields, encoding)
