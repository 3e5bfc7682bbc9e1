"""gunicorn's settings for the `web` process (Procfile): `gunicorn config.wsgi --config
python:config.gunicorn`. Workers from WEB_CONCURRENCY, the address from GUNICORN_BIND or PORT.
Its own log lines are JSON like the app's (LOG_FORMAT); its access log stays off, since the app
writes one line per request with the request id."""

import os

from config.env import env_int, env_str
from config.logging_config import FORMATTERS

bind = env_str("GUNICORN_BIND", f"0.0.0.0:{env_str('PORT', '8000')}")
workers = env_int("WEB_CONCURRENCY", 3)
# Sync workers measured best here (FIELD_NOTES); requests are short, Stripe calls have timeouts.
worker_class = "sync"
timeout = env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = 30
# Load the app before forking: a settings error stops start-up once, with its message.
preload_app = True
forwarded_allow_ips = env_str("FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = None
# gunicorn's runtime control socket is one fixed path per user: two instances on a machine
# would fight over it, and nothing here uses it.
control_socket_disable = True

_format = env_str("LOG_FORMAT", "json" if os.environ.get("DJANGO_ENV") == "production" else "plain")
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": FORMATTERS,
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": _format}},
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
    },
    "root": {"handlers": [], "level": "WARNING"},
}
