"""Throttling of sign-in attempts and password-reset requests, on Django's cache framework.

A counter per key whose window opens at the first failure and lasts
LOGIN_THROTTLE_WINDOW_SECONDS (not windows aligned to the clock, which would let an attacker
spend two windows' attempts either side of a boundary). The window's end is kept with it, so
the time left can be shown ("wait 7 minutes"). Keys are a SHA-256 of the email as Django
authenticates it (stripped, NFKC-normalised, lower-cased), or of the client's IP address (an
IPv6 address by its /64, which one client usually owns whole), so the cache holds no addresses.

The client IP is REMOTE_ADDR, unless LOGIN_THROTTLE_PROXY_COUNT says how many reverse proxies
that we trust append to X-Forwarded-For (1 by default in production behind a proxy): a client can
write anything into that header, and only the entries our own proxies added are believed.

The counters live in the default cache. Locmem (the embedded default) is per process: a
production site with several web processes must set REDIS_URL so they share one count."""

import hashlib
import ipaddress
import math
import time
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

LOGIN_EMAIL = "login-email"
LOGIN_IP = "login-ip"
RESET_EMAIL = "reset-email"
RESET_IP = "reset-ip"
_PREFIX = "throttle"


@dataclass(frozen=True)
class Refusal:
    """A refused attempt: why, and how long until the window ends."""

    scope: str
    retry_after: int  # seconds

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))

    @property
    def wait(self) -> str:
        return f"{self.minutes} minute{'' if self.minutes == 1 else 's'}"


def normalise_email(value: object) -> str:
    """The key Django signs in with: the form field strips and NFKC-normalises the address (as
    UsernameField does) and the member lookup lower-cases it. Counting any other key would let
    `ｂob@example.com` (fullwidth b) sign in as Bob with fresh attempts while Bob is locked."""
    if not isinstance(value, str):
        return ""
    return unicodedata.normalize("NFKC", value.strip()).strip().lower()


def client_ip(request: HttpRequest) -> str:
    """The address the request came from: REMOTE_ADDR, or the entry of X-Forwarded-For that the
    outermost of our LOGIN_THROTTLE_PROXY_COUNT trusted proxies saw, if the header has it."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    trusted = settings.LOGIN_THROTTLE_PROXY_COUNT
    if trusted > 0:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        hops = [h for h in hops if h]
        if len(hops) >= trusted:
            remote = hops[-trusted]
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote  # not an address (a test client, a unix socket): count it as it is
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def _key(scope: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{_PREFIX}:{scope}:{digest}"


def _count(scope: str, value: str) -> int:
    return cache.get(_key(scope, value), 0)


def _seconds_left(scope: str, value: str) -> int:
    until = cache.get(_key(scope, value) + ":until")
    if until is None:
        return max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS)
    return max(1, math.ceil(until - time.time()))


def _hit(scope: str, value: str) -> int:
    """Add one to the counter and return its new value (atomic on Redis and memcached)."""
    key = _key(scope, value)
    length = max(1, settings.LOGIN_THROTTLE_WINDOW_SECONDS)
    if cache.add(key, 1, timeout=length):  # the first failure opens the window
        cache.set(key + ":until", time.time() + length, timeout=length)
        return 1
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.add(key, 1, timeout=length)
        cache.set(key + ":until", time.time() + length, timeout=length)
        return 1


def refusal(checks: list[tuple[str, str]]) -> Refusal | None:
    """A Refusal if any (scope, value) has used up its attempts in this window."""
    limit = settings.LOGIN_THROTTLE_ATTEMPTS
    if limit <= 0:
        return None  # throttling turned off
    for scope, value in checks:
        if value and _count(scope, value) >= limit:
            return Refusal(scope=scope, retry_after=_seconds_left(scope, value))
    return None


# --- Sign-in ----------------------------------------------------------------------------------


def _login_checks(request: HttpRequest, email: object) -> list[tuple[str, str]]:
    return [(LOGIN_EMAIL, normalise_email(email)), (LOGIN_IP, client_ip(request))]


def login_refusal(request: HttpRequest, email: object) -> Refusal | None:
    return refusal(_login_checks(request, email))


def login_failed(request: HttpRequest, email: object) -> None:
    for scope, value in _login_checks(request, email):
        if value:
            _hit(scope, value)


def login_succeeded(email: object) -> None:
    """A successful sign-in clears the email's failures (not the IP's: a shared address, or an
    attacker with one account of their own, must not be able to reset it)."""
    value = normalise_email(email)
    if value:
        key = _key(LOGIN_EMAIL, value)
        cache.delete_many([key, key + ":until"])


# --- Password reset requests ------------------------------------------------------------------


def _reset_checks(request: HttpRequest, email: object) -> list[tuple[str, str]]:
    # By IP, and by address too, so nobody can flood one member's inbox from many addresses.
    return [(RESET_IP, client_ip(request)), (RESET_EMAIL, normalise_email(email))]


def reset_refusal(request: HttpRequest, email: object) -> Refusal | None:
    return refusal(_reset_checks(request, email))


def reset_requested(request: HttpRequest, email: object) -> None:
    for scope, value in _reset_checks(request, email):
        if value:
            _hit(scope, value)
