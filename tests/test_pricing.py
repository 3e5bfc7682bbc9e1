"""Member prices in integer pence: percentage and fixed discounts, and how prices are shown."""

import re
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from events.pricing import Discount, format_pence, member_price_pence

prices = st.integers(min_value=0, max_value=10_000_000)
percents = st.integers(min_value=0, max_value=100)
fixed_amounts = st.integers(min_value=0, max_value=20_000_000)
discounts = st.one_of(
    st.builds(Discount),
    st.builds(Discount, percent=percents),
    st.builds(Discount, fixed_pence=fixed_amounts),
)


def half_up_discount(price: int, percent: int) -> int:
    return int((Decimal(price) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


# --- Discount ------------------------------------------------------------------------------------


def test_a_discount_is_not_both_a_percentage_and_a_fixed_amount():
    with pytest.raises(ValueError, match="not both"):
        Discount(percent=10, fixed_pence=100)


@pytest.mark.parametrize("percent", [-1, 101, 1000, -100])
def test_a_percentage_is_between_0_and_100(percent):
    with pytest.raises(ValueError):
        Discount(percent=percent)


@pytest.mark.parametrize("fixed", [-1, -2500])
def test_a_fixed_discount_is_not_negative(fixed):
    with pytest.raises(ValueError):
        Discount(fixed_pence=fixed)


@pytest.mark.parametrize("percent", [0, 1, 50, 99, 100])
def test_percentages_at_the_edges_are_accepted(percent):
    assert Discount(percent=percent).percent == percent


@pytest.mark.parametrize(
    ("discount", "text"),
    [
        (Discount(percent=10), "10% member discount"),
        (Discount(percent=100), "100% member discount"),
        (Discount(fixed_pence=250), "£2.50 member discount"),
        (Discount(fixed_pence=500), "£5 member discount"),
        (Discount(percent=0), "no member discount"),
        (Discount(), "no member discount"),
    ],
)
def test_describe(discount, text):
    assert discount.describe() == text


# --- member_price_pence --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("public", "percent", "member"),
    [
        (2500, 10, 2250),
        (1999, 10, 1799),  # 199.9p off rounds to 200p
        (1994, 10, 1795),  # 199.4p off rounds to 199p
        (1995, 10, 1795),  # 199.5p off: a half penny goes to the member
        (15, 10, 13),
        (5, 10, 4),
        (1, 50, 0),
        (3, 50, 1),
        (2500, 0, 2500),
        (2500, 100, 0),
        (0, 10, 0),
        (999, 33, 669),  # 329.67p off rounds to 330p
    ],
)
def test_percentage_discount_is_rounded_half_up_in_the_members_favour(public, percent, member):
    assert member_price_pence(public, Discount(percent=percent)) == member


@pytest.mark.parametrize(
    ("public", "fixed", "member"),
    [
        (2500, 500, 2000),
        (2500, 0, 2500),
        (2500, 2499, 1),
        (2500, 2500, 0),
        (2500, 9999, 0),
        (0, 100, 0),
    ],
)
def test_fixed_discount_comes_off_the_public_price_but_never_below_zero(public, fixed, member):
    assert member_price_pence(public, Discount(fixed_pence=fixed)) == member


def test_no_discount_charges_the_public_price():
    assert member_price_pence(2500, Discount()) == 2500


@pytest.mark.parametrize("public", [-1, -2500])
def test_a_negative_price_is_refused(public):
    with pytest.raises(ValueError):
        member_price_pence(public, Discount(percent=10))


@given(prices, discounts)
def test_member_price_is_whole_pence_between_zero_and_the_public_price(public, discount):
    member = member_price_pence(public, discount)

    assert type(member) is int
    assert 0 <= member <= public
    assert member == public - discount.amount_off(public)


@given(prices, percents)
def test_percentage_discount_is_exact_to_the_penny(public, percent):
    member = member_price_pence(public, Discount(percent=percent))

    exact = Decimal(public) * percent / 100
    assert public - member == half_up_discount(public, percent)
    assert -Decimal("0.5") < (public - member) - exact <= Decimal("0.5")


@given(prices, fixed_amounts)
def test_fixed_discount_is_exact_to_the_penny(public, fixed):
    assert member_price_pence(public, Discount(fixed_pence=fixed)) == max(public - fixed, 0)


@given(prices, percents, percents)
def test_a_bigger_percentage_never_costs_more(public, smaller, bigger):
    assume(smaller <= bigger)

    assert member_price_pence(public, Discount(percent=bigger)) <= member_price_pence(
        public, Discount(percent=smaller)
    )


@given(prices, prices, percents)
def test_a_dearer_event_never_has_a_cheaper_member_price(cheaper, dearer, percent):
    assume(cheaper <= dearer)

    assert member_price_pence(cheaper, Discount(percent=percent)) <= member_price_pence(
        dearer, Discount(percent=percent)
    )


# --- format_pence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pence", "text"),
    [
        (1250, "£12.50"),
        (1200, "£12"),
        (1205, "£12.05"),
        (5, "£0.05"),
        (99, "£0.99"),
        (100, "£1"),
        (0, "£0"),
        (123_456, "£1,234.56"),
        (100_000, "£1,000"),
        (123_456_789, "£1,234,567.89"),
        (-150, "-£1.50"),
        (-5, "-£0.05"),
        (-200, "-£2"),
    ],
)
def test_format_pence(pence, text):
    assert format_pence(pence) == text


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_format_pence_reads_back_to_the_same_amount(pence):
    text = format_pence(pence)
    match = re.fullmatch(r"(-?)£(\d{1,3}(?:,\d{3})*)(?:\.(\d{2}))?", text)

    assert match, text
    sign, pounds, rest = match.groups()
    assert rest != "00"
    amount = int(pounds.replace(",", "")) * 100 + int(rest or 0)
    assert (-amount if sign else amount) == pence
