"""Typed readers for environment variables: every setting comes from here (12-factor)."""

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str:
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise ImproperlyConfigured(f"Set the environment variable {name}.")
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_required_in_production(name: str, *, production: bool, default: str) -> str:
    """A setting whose embedded default (SQLite, the filesystem broker, links to 127.0.0.1)
    must never stand in for production's: there it must be set and not blank, or start-up
    stops naming it. In development, as env_str."""
    value = os.environ.get(name)
    if not production:
        return default if value is None else value
    if value is None or not value.strip():
        raise ImproperlyConfigured(f"Set the environment variable {name} (required in production).")
    return value


# Values that are public in this repository (the embedded defaults): never secrets in production.
DEVELOPMENT_SECRETS = frozenset(
    {
        "dev-only-insecure-key-" + "x" * 40,
        "sk_test_localstripe",
        "pk_test_localstripe",
        "whsec_localstripe_dev",
    }
)


def env_secret(name: str, *, production: bool, development_default: str) -> str:
    """A secret. In production it must be set, non-empty and not one of this repository's
    development values, or start-up stops with a message naming it (fail closed)."""
    value = os.environ.get(name)
    if not production:
        return value if value else development_default
    if value is None or not value.strip():
        raise ImproperlyConfigured(f"Set the environment variable {name} (production secret).")
    if value.strip() in DEVELOPMENT_SECRETS or value.strip().startswith("django-insecure"):
        raise ImproperlyConfigured(f"{name} holds a development value; set the production secret.")
    return value
