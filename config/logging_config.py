"""The LOGGING setting. Production: one JSON object per line, each with the request id and,
where known, the pre-order and charge attempt (config.log_context). Development: plain lines.
One access line per request, from config.middleware, when `access_log` is on."""

from config.env import env_str

# The app's lines and gunicorn's (config/gunicorn.py) in the same two shapes.
FORMATTERS = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        "timestamp": False,
    },
}


def logging_config(*, log_format: str, access_log: bool) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "config.log_context.ContextFilter"}},
        "formatters": FORMATTERS,
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
        "loggers": {
            # The SDK logs every request at INFO; keep that for debugging only.
            "stripe": {"level": env_str("STRIPE_LOG_LEVEL", "WARNING")},
            # Our access line replaces these in production (they would say the same thing twice).
            "django.request": {"level": "ERROR" if access_log else "WARNING"},
            "gunicorn.access": {"level": "WARNING"},
            # /readyz names what is down; the library's traceback for each probe would flood logs.
            "health_check": {"level": "ERROR"},
        },
    }
