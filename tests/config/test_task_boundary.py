"""Business rules never import tasks: views, commands and tasks start background work, and a
service that must hand work on sends a signal its app's ready() connects to the task."""

import ast
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
APPS = ("events", "members", "notifications", "operations", "payments", "preorders", "tickets")


def _may_start_tasks(path: Path) -> bool:
    name = path.name
    return (
        name in {"tasks.py", "apps.py"}
        or name.endswith("views.py")
        or "commands" in path.parts
        or "migrations" in path.parts
    )


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_business_module_imports_a_task_module():
    checked = []
    offenders = {}
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if _may_start_tasks(path):
                continue
            checked.append(path)
            tasks = {name for name in _imported_modules(path) if name.split(".")[-1] == "tasks"}
            if tasks:
                offenders[str(path.relative_to(ROOT))] = sorted(tasks)
    assert any(path.match("notifications/services.py") for path in checked)
    assert offenders == {}


def test_each_hand_off_signal_reaches_its_task():
    """The receivers that replace the imports are connected (a missing one would leave emails,
    tickets and Stripe events to the sweeps alone)."""
    from notifications.models import OutboundEmail
    from notifications.signals import email_committed
    from payments.models import StripeEvent
    from payments.signals import stripe_event_stored
    from tickets.models import Ticket
    from tickets.signals import ticket_due

    assert apps.ready
    assert email_committed.has_listeners(OutboundEmail)
    assert ticket_due.has_listeners(Ticket)
    assert stripe_event_stored.has_listeners(StripeEvent)
