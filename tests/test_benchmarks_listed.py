"""`bench/all` runs every benchmark: each runnable bench/ module is in its list, and each listed
one exists with a main() (no benchmark runs here: they are measured, never timed in tests)."""

import ast
from pathlib import Path

from bench.run_all import BENCHMARKS

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _runnable(path: Path) -> bool:
    return '__name__ == "__main__"' in path.read_text()


def _has_main(path: Path) -> bool:
    tree = ast.parse(path.read_text())
    return any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body)


def test_bench_all_runs_every_benchmark():
    listed = {name for name, _title in BENCHMARKS}
    runnable = {
        path.stem for path in BENCH.glob("*.py") if path.stem != "run_all" and _runnable(path)
    }
    assert runnable == listed
    assert all(_has_main(BENCH / f"{name}.py") for name in listed)
    assert (BENCH / "all").stat().st_mode & 0o111, "bench/all must be executable"
