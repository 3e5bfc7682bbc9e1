"""Accessibility checks in the browser tests: axe-core (from npm, see package.json) run on a
Playwright page. Serious and critical violations fail the test, each named with its elements."""

from pathlib import Path

AXE_JS = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


def _axe_source() -> str:
    if not AXE_JS.exists():
        raise AssertionError(
            f"axe-core is missing ({AXE_JS}): run 'npm ci' at the repository root "
            "(bin/test does it for you)."
        )
    return AXE_JS.read_text()


def axe_violations(page) -> list[dict]:
    """axe's violations on the page as it is now, WCAG 2.x A and AA rules. Evaluated through the
    DevTools protocol, so a strict Content-Security-Policy does not block it."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    result = page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa',
                                            'best-practice']},
            resultTypes: ['violations'],
        })"""
    )
    return result["violations"]


def assert_accessible(page, label: str = "") -> None:
    """Fail with a readable list if axe finds a serious or critical violation on the page."""
    blocking = [v for v in axe_violations(page) if v.get("impact") in BLOCKING]
    if blocking:
        lines = [f"axe found {len(blocking)} serious/critical violation(s) on {label or page.url}:"]
        for violation in blocking:
            targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
            lines.append(
                f"- [{violation['impact']}] {violation['id']}: {violation['help']} ({targets})"
            )
        raise AssertionError("\n".join(lines))
