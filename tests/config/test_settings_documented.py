"""Every environment variable the project reads is documented for whoever deploys it: in the
README's settings table (which docs/deploy.md points to) or in docs/deploy.md itself. The names
are found in the code (every env_* reader and os.environ.get with a literal name, and the
Procfile's ${...}), so a new setting without documentation fails here."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "config", "members", "events", "preorders", "payments", "notifications", "tickets",
    "operations", "demo",
)  # fmt: skip
READERS = {"env_str", "env_bool", "env_int", "env_list", "env_secret", "get", "getenv"}
# Read by the process machinery, not settings of this project.
NOT_OURS = {"DJANGO_SETTINGS_MODULE"}


def _names_read(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        function = node.func
        is_attribute = isinstance(function, ast.Attribute)
        called = function.attr if is_attribute else getattr(function, "id", "")
        if called == "get" and not (is_attribute and ast.unparse(function.value) == "os.environ"):
            continue  # dict.get, not the environment
        first = node.args[0]
        if called in READERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
            names.add(first.value)
    return names


def variables_read() -> set[str]:
    names = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" not in path.parts:
                names |= _names_read(path.read_text())
    names |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "Procfile").read_text()))
    return names - NOT_OURS


def documented() -> str:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Settings", 1)[1].split("\n## ", 1)[0]
    return table + (ROOT / "docs" / "deploy.md").read_text()


def test_the_scan_finds_the_settings_it_should():
    read = variables_read()
    # Spread over settings, gunicorn's config and the Procfile, some on a line of their own.
    assert {"DJANGO_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "WEB_CONCURRENCY"} <= read
    assert {"CELERY_BEAT_SCHEDULE_FILE", "PRESALE_OUTBOX_IN_PRODUCTION"} <= read
    assert len(read) > 50


def test_every_environment_variable_read_is_documented():
    text = documented()
    missing = sorted(name for name in variables_read() if not re.search(rf"`{name}[`=]", text))
    assert not missing, f"Document these in the README's settings table: {missing}"


def test_the_deploy_guide_points_to_the_settings_table():
    assert "README" in (ROOT / "docs" / "deploy.md").read_text().split("## Settings", 1)[1]
