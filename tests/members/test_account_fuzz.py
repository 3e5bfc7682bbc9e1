"""Random form data at the account page's forms and at the saved-card choice of the pre-order
form (the same judge as tests/test_fuzz_inputs.py): never a 5xx, and a refusal changes
nothing."""

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from tests.test_fuzz_inputs import FUZZ, characters, encodings, form_data, fuzz_post, value

pytestmark = pytest.mark.django_db

PASSWORD = "a-Good-passw0rd"
card_ids = st.one_of(st.text(characters, max_size=30).map(lambda s: "pm_" + s), value)


@pytest.fixture(autouse=True)
def _this_weeks_cycle(open_cycle):
    """Pages create this week's cycle on first view: make it first (see test_fuzz_inputs)."""


@FUZZ
@given(
    data=form_data({"full_name": value, "email": st.one_of(st.emails(), value)}),
    encoding=encodings,
)
def test_changing_details(member, data, encoding):
    fuzz_post(member, reverse("members:account_details"), data, encoding)


@FUZZ
@given(
    data=form_data(
        {
            "old_password": st.one_of(st.just(PASSWORD), value),
            "new_password1": value,
            "new_password2": value,
        }
    ),
    encoding=encodings,
)
def test_changing_the_password(member, data, encoding):
    fuzz_post(member, reverse("members:account_password"), data, encoding)


@FUZZ
@given(data=form_data({"card": card_ids}), encoding=encodings)
def test_choosing_or_removing_a_card(member, data, encoding):
    fuzz_post(member, reverse("members:default_card"), data, encoding)
    fuzz_post(member, reverse("members:remove_card"), data, encoding)


@FUZZ
@given(data=form_data({"password": st.one_of(st.just(PASSWORD), value)}), encoding=encodings)
def test_leaving(member, data, encoding):
    fuzz_post(member, reverse("members:leave"), data, encoding)


@FUZZ
@given(data=form_data({"payment_method_id": card_ids}), encoding=encodings)
def test_placing_with_a_saved_card(stripe_server, member, make_event, data, encoding):
    fuzz_post(member, reverse("preorders:place", args=[make_event().pk]), data, encoding)
