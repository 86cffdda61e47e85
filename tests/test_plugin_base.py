"""`--querywarden-base REF` in real pytest sessions (pytester) against a real PostgreSQL: each captured
statement is replayed on a database built from the base revision's schema and seed, read from git,
and the two are timed interleaved; stored timings never decide.

The project is test_plugin's (2,000 owners, 200,000 items), committed on `main` with its baselines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import git, on_a_branch_off_main

from test_plugin import HOT, HOT_SQL, RARE, SCHEMA, write_project

pytest_plugins = ["pytester"]

# A view the rare path reads, and the same view made slower by a sleep per call: unchanged SQL.
VIEW = "CREATE VIEW owner_names AS SELECT id, name FROM owners;\n"
SLOW_VIEW = ("CREATE FUNCTION slow_name(name text) RETURNS text LANGUAGE plpgsql STABLE "
             "AS $$ BEGIN PERFORM pg_sleep(0.002); RETURN name; END $$;\n"
             "CREATE VIEW owner_names AS SELECT id, slow_name(name) AS name FROM owners;\n")
NAME_TEST = '''

@pytest.mark.hot_path(calls_per_minute=3000)
def test_owner_name(querywarden, querywarden_db):
    with querywarden.capture(querywarden_db):
        querywarden_db.execute("SELECT name FROM owner_names WHERE id = %s", (7,)).fetchone()
'''
NAME = "tests/test_app.py::test_owner_name"


@pytest.fixture
def committed(pytester: pytest.Pytester, pg_dsn: str) -> Path:
    """The project with its baselines recorded and committed on `main`, on a branch `change`."""
    root = pytester.path
    write_project(root, pg_dsn)
    (root / "schema.sql").write_text(SCHEMA + VIEW)
    with open(root / "tests" / "test_app.py", "a", encoding="utf-8") as tests:
        tests.write(NAME_TEST)
    assert pytester.runpytest("--querywarden-update").ret == pytest.ExitCode.OK
    on_a_branch_off_main(root)
    return root


def by_statement(path: Path) -> dict[str, dict[str, object]]:
    return {q["name"]: q for q in json.loads(path.read_text())["queries"]}


def test_unchanged_code_passes_on_the_same_run_comparison(pytester: pytest.Pytester, committed: Path) -> None:
    result = pytester.runpytest("--querywarden-base", "main", "--querywarden-json", "results.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    base = git(committed, "rev-parse", "main")[:12]
    result.stdout.fnmatch_lines([f"querywarden: base revision: {base} (the merge base of main and HEAD)"])
    found = by_statement(committed / "results.json")
    for name in (f"{HOT} #1", f"{RARE} #1", f"{NAME} #1"):
        assert found[name]["basis"] == f"same-run A/B against the base revision {base}: plan, work and timing"
        assert found[name]["blocking"] is False


def test_a_dropped_index_blocks_against_the_base(pytester: pytest.Pytester, committed: Path) -> None:
    (committed / "schema.sql").write_text(SCHEMA.replace("CREATE INDEX items_owner_idx ON items (owner_id);\n", "") + VIEW)
    result = pytester.runpytest("--querywarden-base", "main")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        f"querywarden: {HOT} (12,000 calls/min, 1 statement) got slower and blocks: 1 of 1 statements block",
        f"  FAIL #1 {HOT_SQL}",
        "      at app.py:2 in owner_items",
        "      - buffers * → * (×*)",
        "      - *Bitmap Heap Scan on items* became Seq Scan*",
        "      - same-run A/B against the base revision *",
        "      - hot: 12,000 calls/min (threshold 1,000)",
    ])
    result.stdout.fnmatch_lines(["      - compared: same-run A/B against the base revision *: plan, work and timing"])


def test_a_slower_view_with_unchanged_sql_blocks_on_the_same_run_timing(pytester: pytest.Pytester, committed: Path) -> None:
    (committed / "schema.sql").write_text(SCHEMA + SLOW_VIEW)
    result = pytester.runpytest("--querywarden-base", "main", "--querywarden-json", "results.json")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=2, failed=1)
    name = by_statement(committed / "results.json")[f"{NAME} #1"]
    assert name["blocking"] is True
    reasons = [str(r) for r in name["reasons"]]  # type: ignore[union-attr]
    assert any(r.startswith("same-run A/B against the base revision") for r in reasons), reasons
    assert not any(r.startswith("buffers") for r in reasons), reasons  # the same blocks: only the timing saw it
