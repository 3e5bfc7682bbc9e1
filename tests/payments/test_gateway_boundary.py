"""Only payments/gateway talks to Stripe: no other app module imports the SDK (tests, benchmarks
and the development stand-ins may, to play Stripe's part)."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_APP = {"tests", "bench", "devtools", ".venv", "node_modules", "static", "var"}


def _imports_stripe(path: Path) -> bool:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "stripe" for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "stripe":
            return True
    return False


def test_only_the_gateway_imports_the_stripe_sdk():
    app_modules = [
        path for path in ROOT.rglob("*.py") if not NOT_APP & set(path.relative_to(ROOT).parts[:1])
    ]
    assert any(path.match("payments/gateway/charges.py") for path in app_modules)
    importers = {str(path.relative_to(ROOT)) for path in app_modules if _imports_stripe(path)}
    assert importers, "the walk found no module importing stripe: it looks in the wrong place"
    outside = {name for name in importers if not name.startswith("payments/gateway/")}
    assert outside == set()
