"""Steps a member takes in the browser, shared by the journey tests."""

from tests.stripe_helpers import SUCCEEDS


def log_in(page, base_url: str, email: str, password: str, *, lands_on: str = "/") -> None:
    """Sign in; members land on their dashboard, staff who review on the events page."""
    page.goto(f"{base_url}/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}{lands_on}")


def fill_card(page, number: str = SUCCEEDS) -> None:
    """Type into localstripe's stand-in Card Element (real Stripe's lives in an iframe)."""
    card = page.locator("#card-element")
    card.locator("input[placeholder=number]").fill(number)
    card.locator("input[placeholder=exp_month]").fill("12")
    card.locator("input[placeholder=exp_year]").fill("34")
    card.locator("input[placeholder=cvc]").fill("123")
    card.locator("input[placeholder=postal_code]").fill("N1 9GU")
