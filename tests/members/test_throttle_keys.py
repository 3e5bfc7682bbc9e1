"""The sign-in throttle counts the key Django signs in with, and the right client address
behind our proxy (fail closed: no lookalike address gets fresh attempts, and one proxy address
does not lock the whole site out)."""

import pytest
from django.test import Client
from django.urls import reverse

from members import throttling

LOGIN = reverse("members:login")
PASSWORD = "a-Good-passw0rd"
pytestmark = pytest.mark.django_db


@pytest.fixture
def limits(settings):
    settings.LOGIN_THROTTLE_ATTEMPTS = 5
    settings.LOGIN_THROTTLE_WINDOW_SECONDS = 900
    settings.LOGIN_THROTTLE_PROXY_COUNT = 0


def sign_in(email: str, password: str = "wrong", ip: str = "203.0.113.7", **headers):
    return Client(REMOTE_ADDR=ip, **headers).post(LOGIN, {"username": email, "password": password})


def test_a_fullwidth_lookalike_signs_in_as_the_member_so_it_is_counted_as_them(make_member, limits):
    make_member("bob@example.com", PASSWORD)
    for n in range(5):
        sign_in("bob@example.com", ip=f"198.51.100.{n}")

    # Django's form NFKC-normalises a fullwidth "b" into "b": the same account, the same lock.
    lookalike = sign_in("\uff42ob@example.com", PASSWORD, ip="198.51.100.50")

    assert lookalike.status_code == 429
    assert "_auth_user_id" not in lookalike.wsgi_request.session


@pytest.mark.parametrize(
    "typed",
    [
        "  bob@example.com ",
        "BOB@EXAMPLE.COM",
        "\uff42\uff4f\uff42@example.com",
        "bob\uff20example.com",
    ],
)
def test_the_throttle_key_is_the_address_django_authenticates(typed):
    assert throttling.normalise_email(typed) == "bob@example.com"


def test_production_behind_a_proxy_counts_each_client_not_the_proxy(make_member, settings):
    """DJANGO_BEHIND_PROXY is on by default in production; its default proxy count is 1."""
    from tests.config.production import settings_value

    assert settings_value("LOGIN_THROTTLE_PROXY_COUNT") == "1"
    # The case: the proxy named, its count not.
    assert settings_value("LOGIN_THROTTLE_PROXY_COUNT", DJANGO_BEHIND_PROXY="1") == "1"
    assert settings_value("LOGIN_THROTTLE_PROXY_COUNT", DJANGO_BEHIND_PROXY="0") == "0"

    settings.LOGIN_THROTTLE_ATTEMPTS = 5
    settings.LOGIN_THROTTLE_PROXY_COUNT = 1
    make_member("alice@example.com", PASSWORD)
    proxy = "10.0.0.1"
    for n in range(5):
        sign_in(f"nobody{n}@example.com", ip=proxy, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")

    another_client = sign_in(
        "alice@example.com", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.9"
    )
    assert another_client.status_code == 302
