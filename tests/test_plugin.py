"""The pytest plugin end to end: real pytest sessions (pytester) against real PostgreSQL.

One small project (2,000 owners, 200,000 items) goes through the life of a guarded suite, once in a
plain session and once under pytest-xdist with two workers:

    no baseline → fails naming --querywarden-update → update passes → unchanged passes (files untouched)
    → an index dropped from the schema fails the hot test → an N+1 rewrite fails the hot test
    → a slower rare path only warns → a removed test leaves a stale baseline (fails under --strict)
    → updating removes it and leaves unchanged baselines untouched

Each distinct schema is seeded once into a fingerprinted template and reused by later runs.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

# Loaded here so the inner in-process sessions find them imported (pytester drops what they import).
import querywarden.config  # noqa: F401
import querywarden.engine  # noqa: F401
import querywarden.plugin.outcome  # noqa: F401

pytest_plugins = ["pytester"]
# Plugins the inner projects do not use; hypothesis alone costs seconds per inner session.
INNER_ADDOPTS = "-p no:cacheprovider -p no:hypothesispytest -p no:benchmark -p no:django -p no:asyncio"

SCHEMA = """\
CREATE TABLE owners (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE items (
    id integer PRIMARY KEY,
    owner_id integer NOT NULL,
    category integer NOT NULL,
    title text NOT NULL
);
CREATE INDEX items_owner_idx ON items (owner_id);
CREATE INDEX items_category_idx ON items (category);
"""

DATA = """\
INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(1, 2000) AS g;
INSERT INTO items SELECT g, 1 + g % 2000, g % 5000, 'item ' || g FROM generate_series(1, 200000) AS g;
"""

APP = '''\
def owner_items(conn, owner_id):
    return conn.execute(
        "SELECT i.id, i.title, o.name FROM items i JOIN owners o ON o.id = i.owner_id WHERE i.owner_id = %s",
        (owner_id,),
    ).fetchall()


def category_report(conn, category):
    return conn.execute("SELECT count(*), max(title) FROM items WHERE category = %s", (category,)).fetchone()
'''

# The same page, now one query for the items and one per item for its owner's name.
APP_N_PLUS_ONE = '''\
def owner_items(conn, owner_id):
    rows = conn.execute("SELECT i.id, i.title, i.owner_id FROM items i WHERE i.owner_id = %s", (owner_id,)).fetchall()
    return [
        (id_, title, conn.execute("SELECT name FROM owners WHERE id = %s", (owner,)).fetchone()[0])
        for id_, title, owner in rows
    ]


def category_report(conn, category):
    return conn.execute("SELECT count(*), max(title) FROM items WHERE category = %s", (category,)).fetchone()
'''

TESTS = '''\
import pytest

import app


@pytest.mark.hot_path(calls_per_minute=12000)
def test_owner_items(querywarden, querywarden_db):
    with querywarden.capture(querywarden_db):
        rows = app.owner_items(querywarden_db, 7)
    assert len(rows) == 100


def test_category_report(querywarden, querywarden_db):
    with querywarden.capture(querywarden_db):
        app.category_report(querywarden_db, 11)
'''

HOT = "tests/test_app.py::test_owner_items"
RARE = "tests/test_app.py::test_category_report"
BASELINES = {
    HOT: "baselines/tests_test_app.py_test_owner_items.json",
    RARE: "baselines/tests_test_app.py_test_category_report.json",
}
HOT_SQL = "SELECT i.id, i.title, o.name FROM items i JOIN owners o ON o.id = i.owner_id WHERE i.owner_id = %s"


def write_project(root: Path, dsn: str) -> None:
    (root / "tests").mkdir()
    (root / "schema.sql").write_text(SCHEMA)
    (root / "data.sql").write_text(DATA)
    (root / "app.py").write_text(APP)
    (root / "tests" / "test_app.py").write_text(TESTS)
    (root / "pytest.ini").write_text(
        textwrap.dedent(
            f"""\
            [pytest]
            pythonpath = .
            addopts = {INNER_ADDOPTS}
            querywarden_dsn = {dsn}
            querywarden_schema = schema.sql
            querywarden_seed = data.sql
            querywarden_baselines = baselines
            querywarden_calls_per_minute = 6
            """
        )
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_lifecycle_of_a_guarded_suite(pytester: pytest.Pytester, pg_dsn: str, workers: list[str]) -> None:
    root = pytester.path
    write_project(root, pg_dsn)

    # 1. No baselines yet: every guarded test fails and says how to record one; nothing is written.
    result = pytester.runpytest(*workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            f"querywarden: {HOT} (12,000 calls/min, 1 statement) has no baseline ({BASELINES[HOT]} does not exist).",
            "  Review what the test ran and record its baseline with --querywarden-update:",
            f"  #1 {HOT_SQL}",
            "      at app.py:2 in owner_items",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            f"NO BASELINE {RARE} (6 calls/min (default rate), 1 statement): run with --querywarden-update",
            f"NO BASELINE {HOT} (12,000 calls/min, 1 statement): run with --querywarden-update",
            "querywarden: BLOCKED: 2 guarded tests (2 no-baseline)",
        ]
    )
    assert not (root / "baselines").exists()

    # 2. Recording passes and writes one file per test.
    result = pytester.runpytest("--querywarden-update", *workers)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"written {BASELINES[HOT]} (was: new)", "querywarden: passed: 2 guarded tests (2 written)"])
    recorded = (root / BASELINES[HOT]).read_text()
    recorded_mtime = (root / BASELINES[HOT]).stat().st_mtime_ns

    # 3. Unchanged code passes.
    result = pytester.runpytest(*workers)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    # nothing blocks; a stored-timing `warn` from a noisy neighbour is allowed by design, nothing else
    result.stdout.fnmatch_lines(["querywarden: passed: 2 guarded tests (*)"])

    # 4. A migration drops the index of the hot path: its test fails and says why; the run fails.
    (root / "schema.sql").write_text(SCHEMA.replace("CREATE INDEX items_owner_idx ON items (owner_id);\n", ""))
    result = pytester.runpytest(*workers, "--querywarden-json", "results.json", "--querywarden-html", "report.html")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # the controller alone writes the reports, with every worker's statements in them
    document = json.loads((root / "results.json").read_text())
    assert document["verdict"] == "fail"
    assert {(q["name"], q["verdict"]) for q in document["queries"]} == {(f"{HOT} #1", "fail"), (f"{RARE} #1", "pass")}
    assert f"{HOT} #1" in (root / "report.html").read_text()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"querywarden: {HOT} (12,000 calls/min, 1 statement) got slower and blocks: 1 of 1 statements block",
            f"  FAIL #1 {HOT_SQL}",
            "      at app.py:2 in owner_items",
            "      - buffers * → * (×*)",
            "      - *Bitmap Heap Scan on items* became Seq Scan*",
            "      - hot: 12,000 calls/min (threshold 1,000)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            f"  baseline: {BASELINES[HOT]}",
            "  If this change is intended, review it and record it with --querywarden-update.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            f"FAIL {HOT} (12,000 calls/min, 1 statement) got slower and blocks: 1 of 1 statements block (see its failure)",
            "querywarden: BLOCKED: 2 guarded tests (1 fail, 1 *)",
        ]
    )

    # 5. The schema is back, but the code now runs one query per item (N+1): the hot test fails.
    (root / "schema.sql").write_text(SCHEMA)
    (root / "app.py").write_text(APP_N_PLUS_ONE)
    result = pytester.runpytest(*workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            f"querywarden: {HOT} (12,000 calls/min, 101 statements) got slower and blocks: 1 of 2 statements block",
            "  - the path issues 101 statements instead of 1; #2 ran ×100",
            "  - hot path: 12,000 calls/min (threshold 1,000)",
        ]
    )
    # The new statement is judged on its own cost too: the loop, at the path's rate, breaks the budget.
    result.stdout.fnmatch_lines(
        [
            "  NEW #2 ×100 SELECT name FROM owners WHERE id = %s",
            "      at app.py:4 in *",
            "      - new on this path (not in its baseline)",
            "      - N+1: issued ×100 in one call of the path, at 12,000 calls/min of the path",
            "      - new, and too costly to record: * at 1,200,000 calls/min ≈ * cores of a 16-core database (budget 0.5 cores a query)",
        ]
    )

    # 6. The code is back; the rare report loses its index: slower, reported, but the run passes.
    (root / "app.py").write_text(APP)
    (root / "schema.sql").write_text(SCHEMA.replace("CREATE INDEX items_category_idx ON items (category);\n", ""))
    result = pytester.runpytest(*workers)
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"WARN {RARE} (6 calls/min (default rate), 1 statement)",
            "  warn #1 SELECT count(*), max(title) FROM items WHERE category = %s",
            "      at app.py:9 in category_report",
            "      - *Bitmap Heap Scan on items* became Seq Scan*",
        ]
    )
    result.stdout.fnmatch_lines(["      - rare: 6 calls/min (threshold 1,000)", "querywarden: passed: 2 guarded tests (*warn*)"])

    # 7. The rare test is deleted: its baseline is stale, reported, and fails the run under --strict;
    #    --querywarden-update removes it and leaves the unchanged baseline byte for byte untouched.
    (root / "schema.sql").write_text(SCHEMA)
    (root / "tests" / "test_app.py").write_text(TESTS[: TESTS.index("\n\ndef test_category_report")] + "\n")
    result = pytester.runpytest("--querywarden-strict", *workers)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            f"stale baseline {BASELINES[RARE]} ({RARE}: its test no longer exists); delete it with "
            "--querywarden-update (fails the run under --querywarden-strict)",
            "querywarden: BLOCKED: 1 guarded tests (1 *), 1 stale baselines",
        ]
    )
    result = pytester.runpytest("--querywarden-update", *workers)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            f"removed stale baseline {BASELINES[RARE]} ({RARE}: its test no longer exists)",
            "querywarden: passed: 1 guarded tests (1 unchanged), 1 stale baselines removed",
        ]
    )
    assert not (root / BASELINES[RARE]).exists()
    assert (root / BASELINES[HOT]).read_text() == recorded
    assert (root / BASELINES[HOT]).stat().st_mtime_ns == recorded_mtime


CONFTEST_PYTEST_POSTGRESQL = '''\
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict
from pytest_postgresql import factories

_server = conninfo_to_dict({dsn!r})
postgresql_noproc = factories.postgresql_noproc(
    host=_server.get("host"),
    port=_server.get("port"),
    user=_server.get("user"),
    password=_server.get("password"),
    dbname="qw_test_pgpg_{suffix}",
    load=[Path(__file__).parent / "schema.sql", Path(__file__).parent / "data.sql"],
)
postgresql = factories.postgresql("postgresql_noproc")
'''

TESTS_PYTEST_POSTGRESQL = '''\
import pytest

import app


@pytest.mark.hot_path(calls_per_minute=3000)
def test_rename_then_read(querywarden, postgresql):
    with querywarden.capture(postgresql):
        postgresql.execute("UPDATE owners SET name = %s WHERE id = %s", ("renamed", 7))
        postgresql.commit()
        assert len(app.owner_items(postgresql, 7)) == 100
'''


def test_connections_of_pytest_postgresql_fixtures_are_guarded_in_place(pytester: pytest.Pytester, pg_dsn: str) -> None:
    """No seed of ours: reads are measured on the test's own database, writes there in rolled-back transactions."""
    root = pytester.path
    (root / "schema.sql").write_text(SCHEMA)
    (root / "data.sql").write_text(DATA)
    (root / "app.py").write_text(APP)
    (root / "conftest.py").write_text(CONFTEST_PYTEST_POSTGRESQL.format(dsn=pg_dsn, suffix=root.name[-12:].lower()))
    (root / "test_pgpg.py").write_text(TESTS_PYTEST_POSTGRESQL)
    (root / "pytest.ini").write_text(f"[pytest]\npythonpath = .\naddopts = {INNER_ADDOPTS}\nquerywarden_baselines = baselines\n")

    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["written baselines/test_pgpg.py_test_rename_then_read.json (was: new)"])
    recorded = json.loads((root / "baselines" / "test_pgpg.py_test_rename_then_read.json").read_text())
    assert [s["sql"].split()[0] for s in recorded["statements"]] == ["UPDATE", "SELECT"]
    assert "seed" not in recorded["environment"]  # not a clone of our template: no seed to match

    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["querywarden: passed: 1 guarded tests (*)"])


def test_without_a_dsn_an_embedded_cluster_serves_the_session(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)
    root = pytester.path
    (root / "schema.sql").write_text("CREATE TABLE owners (id integer PRIMARY KEY, name text NOT NULL);\n")
    (root / "data.sql").write_text("INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(1, 50) AS g;\n")
    (root / "test_tiny.py").write_text(
        "def test_owner(querywarden, querywarden_db):\n"
        "    with querywarden.capture(querywarden_db):\n"
        "        querywarden_db.execute('SELECT name FROM owners WHERE id = %s', (7,)).fetchone()\n"
    )
    (root / "pytest.ini").write_text(
        f"[pytest]\naddopts = {INNER_ADDOPTS}\nquerywarden_schema = schema.sql\nquerywarden_seed = data.sql\n"
        "querywarden_baselines = baselines\n"
    )
    result = pytester.runpytest("--querywarden-update", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "querywarden: database an embedded throwaway cluster, started on first use *",
            "*querywarden: no --querywarden-dsn, $QUERYWARDEN_DSN or querywarden_dsn; starting an embedded PostgreSQL cluster",
        ]
    )
    result.stdout.fnmatch_lines(["written baselines/test_tiny.py_test_owner.json (was: new)"])
