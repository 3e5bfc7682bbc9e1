"""The hashed lock files are what gets installed (bin/_env.sh, docs/deploy.md), so they must
hold every dependency pyproject.toml pins, at that version, each package with its hashes."""

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
STALE = "requirements/{name}.txt is stale: run bin/lock (it regenerates both lock files)."


def locked(name: str) -> dict[str, str]:
    """package -> version, checking that every pinned package carries at least one hash."""
    text = (ROOT / "requirements" / f"{name}.txt").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    versions = {}
    for entry in entries:
        requirement = entry.split(" \\")[0].split(";")[0].strip()
        package, _, version = requirement.partition("==")
        assert version, f"{requirement!r} in requirements/{name}.txt is not pinned"
        assert "--hash=sha256:" in entry, f"{package} in requirements/{name}.txt has no hash"
        versions[canonicalize_name(package)] = version
    return versions


@pytest.mark.parametrize(
    ("lock", "dependencies"),
    [
        ("base", PYPROJECT["dependencies"]),
        ("dev", PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["dev"]),
    ],
)
def test_the_lock_holds_every_pinned_dependency_with_hashes(lock, dependencies):
    versions = locked(lock)
    for line in dependencies:
        requirement = Requirement(line)
        (pin,) = requirement.specifier
        assert pin.operator == "==", f"{line} in pyproject.toml is not pinned"
        name = canonicalize_name(requirement.name)
        assert versions.get(name) == pin.version, STALE.format(name=lock)


def test_the_production_lock_has_no_test_tools():
    assert {"pytest", "playwright", "ruff"}.isdisjoint(locked("base"))
