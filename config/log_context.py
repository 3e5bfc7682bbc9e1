"""What every log line says about where it comes from: the request id, and the pre-order and
charge attempt being worked on, where known. Bound with `bound(...)` around the work; read by
ContextFilter, which puts them on each record for the JSON formatter (and the plain one)."""

import contextlib
import contextvars
import logging
from collections.abc import Iterator

_FIELDS = ("request_id", "preorder_id", "charge_attempt_id")
_context: contextvars.ContextVar[dict[str, object] | None] = contextvars.ContextVar(
    "presale_log_context", default=None
)


@contextlib.contextmanager
def bound(**values: object) -> Iterator[None]:
    """Within this block, log records carry these values (request_id, preorder_id,
    charge_attempt_id); the previous ones come back afterwards."""
    unknown = set(values) - set(_FIELDS)
    if unknown:
        raise TypeError(f"Unknown log context fields: {sorted(unknown)}")
    token = _context.set({**(_context.get() or {}), **values})
    try:
        yield
    finally:
        _context.reset(token)


def enter(**values: object) -> contextvars.Token:
    """Like `bound`, for code that starts and ends in two callbacks (Celery's task signals);
    give the token back to `leave`."""
    return _context.set({**(_context.get() or {}), **values})


def leave(token: contextvars.Token) -> None:
    _context.reset(token)


def current() -> dict[str, object]:
    return dict(_context.get() or {})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        values = _context.get() or {}
        for field in _FIELDS:
            if not hasattr(record, field):
                setattr(record, field, values.get(field))
        return True
