"""Guarded tests whose data lives in their own open transaction (pytest-django's `db`, SQLAlchemy's
external-transaction pattern, querywarden's own `querywarden_db`): the statements are measured on
the rows the test created (as its transaction stands when the test ends), and the measuring leaves
the test's transaction as the test left it.

Real pytest sessions (pytester) against the real PostgreSQL; the baseline files say what was seen.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import psycopg
import pytest

import querywarden.engine  # noqa: F401  (imported once here: pytester's inner sessions drop what they import)
import querywarden.hosting  # noqa: F401
import querywarden.plugin.outcome  # noqa: F401

from conftest import empty_database
from test_plugin import INNER_ADDOPTS

pytest_plugins = ["pytester"]

SCHEMA = """\
CREATE TABLE notes (id serial PRIMARY KEY, owner integer NOT NULL, body text NOT NULL);
CREATE INDEX notes_owner_idx ON notes (owner);
"""
DATA = "INSERT INTO notes (owner, body) SELECT g % 500, 'note ' || g FROM generate_series(1, 20000) AS g;\n"


def _project(root: Path, dsn: str, tests: str, conftest: str = "") -> None:
    (root / "tests").mkdir()
    (root / "schema.sql").write_text(SCHEMA)
    (root / "data.sql").write_text(DATA)
    (root / "tests" / "test_paths.py").write_text(textwrap.dedent(tests))
    (root / "tests" / "conftest.py").write_text(textwrap.dedent(conftest))
    (root / "pytest.ini").write_text(textwrap.dedent(f"""\
        [pytest]
        addopts = {INNER_ADDOPTS}
        querywarden_dsn = {dsn}
        querywarden_schema = schema.sql
        querywarden_seed = data.sql
        querywarden_baselines = baselines
        """))


def _baseline(root: Path, test: str) -> dict[str, object]:
    return dict(json.loads((root / "baselines" / f"tests_test_paths.py_{test}.json").read_text()))


def _statements(root: Path, test: str) -> list[dict[str, object]]:
    return list(_baseline(root, test)["statements"])  # type: ignore[call-overload]


def _measured_in(root: Path, test: str) -> object:
    return _baseline(root, test)["environment"]["measured_in"]  # type: ignore[index]


def _rows(node: dict[str, object]) -> float:
    return float(node["actual_rows"])  # type: ignore[arg-type]


OWN_ROWS = """\
    import pytest

    NEW_OWNER = 9999  # no seeded note has it


    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_a_reads_its_own_rows(querywarden, querywarden_db):
        querywarden_db.execute(
            "INSERT INTO notes (owner, body) SELECT %s, 'mine ' || g FROM generate_series(1, 300) AS g", (NEW_OWNER,))
        querywarden_db.commit()  # a savepoint: the fixture rolls the test's transaction back
        with querywarden.capture(querywarden_db):
            rows = querywarden_db.execute("SELECT id, body FROM notes WHERE owner = %s", (NEW_OWNER,)).fetchall()
            querywarden_db.execute("INSERT INTO notes (owner, body) VALUES (%s, 'another owner')", (NEW_OWNER + 1,))
        assert len(rows) == 300


    def test_b_sees_the_seeded_data_only(querywarden_db):
        assert querywarden_db.execute("SELECT count(*) FROM notes WHERE owner = %s", (NEW_OWNER,)).fetchone() == (0,)
        assert querywarden_db.execute("SELECT count(*) FROM notes").fetchone() == (20000,)
    """


def test_querywarden_db_measures_the_rows_the_test_wrote_and_keeps_none(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester.path, pg_dsn, OWN_ROWS)
    result = pytester.runpytest("--querywarden-update", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    read, write = _statements(pytester.path, "test_a_reads_its_own_rows")
    assert read["sql"] == "SELECT id, body FROM notes WHERE owner = %s"
    # the plan saw the 300 rows that exist only inside the test's transaction
    assert _rows(read["plan"]) == 300.0  # type: ignore[arg-type]
    assert write["sql"].startswith("INSERT INTO notes")  # type: ignore[union-attr]
    assert _measured_in(pytester.path, "test_a_reads_its_own_rows") == "test transaction"

    # Checked again against the baseline: the same rows, so it passes.
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["querywarden: passed: 1 guarded tests (*)"])


LEFT_AS_IT_WAS = """\
    import psycopg
    import pytest


    @pytest.fixture
    def own_conn(request):
        conn = psycopg.connect(request.config.getini("own_dsn"))
        yield conn
        # after the guard measured (its INSERT many times, each rolled back): exactly the test's own rows
        counted = conn.execute("SELECT count(*), max(body) FROM scratch").fetchone()
        conn.rollback()
        conn.close()
        assert counted == (301, "row 99"), counted


    def test_own_connection(querywarden, own_conn):
        own_conn.execute("INSERT INTO scratch (body) SELECT 'row ' || g FROM generate_series(1, 300) AS g")
        with querywarden.capture(own_conn):
            found = own_conn.execute("SELECT count(*) FROM scratch WHERE id BETWEEN %s AND %s", (101, 300)).fetchone()
            own_conn.execute("INSERT INTO scratch (body) VALUES (%s)", ("row 0",))
        assert found == (200,)
    """


def test_a_test_transaction_on_its_own_connection_is_left_as_the_test_left_it(
    pytester: pytest.Pytester, pg_dsn: str, server: object
) -> None:
    from querywarden.database import Server

    assert isinstance(server, Server)
    with empty_database(server) as own:
        with psycopg.connect(own, autocommit=True) as conn:
            conn.execute("CREATE TABLE scratch (id serial PRIMARY KEY, body text NOT NULL)")
        _project(pytester.path, pg_dsn, LEFT_AS_IT_WAS)
        with (pytester.path / "pytest.ini").open("a") as ini:
            ini.write(f"own_dsn = {own}\n")
        (pytester.path / "tests" / "conftest.py").write_text(
            "def pytest_addoption(parser):\n    parser.addini('own_dsn', 'the test database')\n")
        result = pytester.runpytest("--querywarden-update")
        result.assert_outcomes(passed=1)
        count, insert = _statements(pytester.path, "test_own_connection")
        assert _rows(count["plan"]) == 1.0 and count["plan"]["children"]  # type: ignore[index]
        assert _rows(count["plan"]["children"][0]) == 200.0  # type: ignore[index]
        assert _measured_in(pytester.path, "test_own_connection") == "test transaction"
        with psycopg.connect(own) as conn:  # and the test's own rows were rolled back by its fixture
            assert conn.execute("SELECT count(*) FROM scratch").fetchone() == (0,)


ORM_ROWS = """\
    import pytest
    from sqlalchemy import Integer, String, func, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


    class Base(DeclarativeBase):
        pass


    class Note(Base):
        __tablename__ = "notes"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        owner: Mapped[int] = mapped_column(Integer)
        body: Mapped[str] = mapped_column(String)


    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_orm_reads_its_own_rows(querywarden, querywarden_session):
        querywarden_session.add_all([Note(owner=7777, body=f"orm {n}") for n in range(300)])
        querywarden_session.commit()  # releases a savepoint: the fixture's transaction is rolled back
        with querywarden.capture(querywarden_session):
            counted = querywarden_session.scalar(select(func.count()).select_from(Note).where(Note.owner == 7777))
        assert counted == 300


    def test_then_the_seeded_data_only(querywarden_session):
        assert querywarden_session.scalar(select(func.count()).select_from(Note)) == 20000


    def test_session_begin_as_sqlalchemy_2_writes_it(querywarden, querywarden_session):
        with querywarden.capture(querywarden_session) as captured:
            with querywarden_session.begin():  # a SAVEPOINT of the joined session, not recorded
                querywarden_session.add(Note(owner=7778, body="begun"))
            counted = querywarden_session.scalar(select(func.count()).select_from(Note).where(Note.owner == 7778))
        assert counted == 1
        assert [statement.sql.split()[0] for statement in captured] == ["INSERT", "SELECT"]
    """


def test_sqlalchemy_session_in_an_external_transaction_is_measured_on_its_rows(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester.path, pg_dsn, ORM_ROWS)
    result = pytester.runpytest("--querywarden-update", "-p", "no:randomly")
    result.assert_outcomes(passed=3)
    (count,) = _statements(pytester.path, "test_orm_reads_its_own_rows")
    scans = [node for node in _walk(count["plan"]) if node.get("relation") == "notes"]  # type: ignore[arg-type]
    assert [_rows(node) for node in scans] == [300.0]
    assert _measured_in(pytester.path, "test_orm_reads_its_own_rows") == "test transaction"


def _walk(node: dict[str, object]) -> list[dict[str, object]]:
    found = [node]
    for child in node.get("children", ()):  # type: ignore[attr-defined]
        found.extend(_walk(child))
    return found


ERROR_LATER = """\
    import psycopg
    import pytest


    def test_swallowed_error(querywarden, querywarden_db):
        querywarden_db.execute("INSERT INTO notes (owner, body) SELECT 4242, 'x' FROM generate_series(1, 7)")
        with querywarden.capture(querywarden_db):
            assert querywarden_db.execute("SELECT count(*) FROM notes WHERE owner = %s", (4242,)).fetchone() == (7,)
        with pytest.raises(psycopg.errors.UndefinedTable):
            querywarden_db.execute("SELECT * FROM no_such_table")
    """


def test_a_statement_is_measured_as_it_ran_even_if_the_transaction_fails_later(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester.path, pg_dsn, ERROR_LATER)
    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(passed=1)
    (count,) = _statements(pytester.path, "test_swallowed_error")
    assert [_rows(node) for node in _walk(count["plan"]) if node.get("index")] == [7.0]  # type: ignore[arg-type]


CHANGES_WHAT_IT_MATCHES = """\
    def test_moves_its_rows(querywarden, querywarden_db):
        querywarden_db.execute("INSERT INTO notes (owner, body) SELECT 4242, 'x' FROM generate_series(1, 5)")
        with querywarden.capture(querywarden_db):
            moved = querywarden_db.execute("UPDATE notes SET owner = 4243 WHERE owner = %s", (4242,)).rowcount
            querywarden_db.execute("INSERT INTO notes (id, owner, body) VALUES (%s, 1, 'chosen')", (900001,))
        assert moved == 5
    """


def test_a_write_is_measured_on_the_rows_it_changed_before_it_changed_them(pytester: pytest.Pytester, pg_dsn: str) -> None:
    # Measured after the test instead, the UPDATE would find no row left to move, and the INSERT its key taken.
    _project(pytester.path, pg_dsn, CHANGES_WHAT_IT_MATCHES)
    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(passed=1)
    update, insert = _statements(pytester.path, "test_moves_its_rows")
    assert [_rows(node) for node in _walk(update["plan"]) if node.get("index")] == [5.0]  # type: ignore[arg-type]
    assert insert["sql"].startswith("INSERT INTO notes (id")  # type: ignore[union-attr]
    assert _measured_in(pytester.path, "test_moves_its_rows") == "test transaction"


COMMITS = """\
    def test_a_commits_for_real(querywarden_db):
        querywarden_db.execute("INSERT INTO notes (owner, body) VALUES (5151, 'kept')")
        querywarden_db.execute("COMMIT")


    def test_b_gets_a_clean_clone(querywarden_db):
        assert querywarden_db.execute("SELECT count(*) FROM notes WHERE owner = 5151").fetchone() == (0,)
    """


def test_a_real_commit_on_the_shared_clone_gives_the_next_test_a_new_one(pytester: pytest.Pytester, pg_dsn: str) -> None:
    _project(pytester.path, pg_dsn, COMMITS)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)


REPEATED_WRITES = """\
    import pytest


    @pytest.mark.parametrize("run", range(6))
    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_writes_then_reads(querywarden, querywarden_db, run):
        querywarden_db.execute(
            "INSERT INTO notes (owner, body) SELECT 9999, 'mine ' || g FROM generate_series(1, 300) AS g")
        with querywarden.capture(querywarden_db):
            rows = querywarden_db.execute("SELECT id, body FROM notes WHERE owner = %s", (9999,)).fetchall()
        assert len(rows) == 300
    """


def test_rolled_back_writes_leave_nothing_for_the_next_test_to_read_past(pytester: pytest.Pytester, pg_dsn: str) -> None:
    # Without the VACUUM after each test, each run's lookup also reads the dead index entries and
    # heap pages of every earlier run's rolled-back rows: its buffers grow test after test.
    _project(pytester.path, pg_dsn, REPEATED_WRITES)
    result = pytester.runpytest("--querywarden-update", "-p", "no:randomly")
    result.assert_outcomes(passed=6)
    buffers = set()
    for run in range(6):
        (read,) = _statements(pytester.path, f"test_writes_then_reads_{run}")
        buffers.add(json.dumps(read["plan"]["buffers"]))  # type: ignore[index]
    assert len(buffers) == 1, buffers
