"""pytest-postgresql's server and fixtures under querywarden: a project that already has them keeps
them. Real pytest sessions (pytester) on the real PostgreSQL, through pytest-postgresql's
`postgresql_noproc` (its `postgresql_proc` needs a server it may start, which root cannot)."""

from __future__ import annotations

import textwrap
import uuid

import pytest

from test_plugin import INNER_ADDOPTS
from test_plugin_transactions import DATA, SCHEMA, _rows, _statements, _walk

pytest_plugins = ["pytester"]

CONFTEST = """\
    import pytest
    from pytest_postgresql import factories

    def load(host, port, user, dbname, password=None, **_):
        import psycopg
        with psycopg.connect(host=host, port=port, user=user, dbname=dbname, password=password, autocommit=True) as conn:
            conn.execute("CREATE TABLE tags (id serial PRIMARY KEY, name text NOT NULL)")

    pg_server = factories.postgresql_noproc(host="127.0.0.1", port=5432, user="postgres", dbname="{dbname}", load=[load])
    postgresql = factories.postgresql("pg_server")


    @pytest.fixture(scope="session")
    def querywarden_server(pg_server):
        return pg_server
    """

TESTS = """\
    import pytest


    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_on_the_seed(querywarden, querywarden_db):
        with querywarden.capture(querywarden_db):
            rows = querywarden_db.execute("SELECT id FROM notes WHERE owner = %s", (7,)).fetchall()
        assert len(rows) == 40


    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_on_pytest_postgresql_s_own_database(querywarden, postgresql):
        postgresql.execute("INSERT INTO tags (name) SELECT 'tag ' || g FROM generate_series(1, 25) AS g")
        with querywarden.capture(postgresql):
            found = postgresql.execute("SELECT count(*) FROM tags WHERE name LIKE %s", ("tag 1%",)).fetchone()
        assert found == (11,)
    """


def test_the_server_of_pytest_postgresql_seeds_and_its_connections_are_guarded(pytester: pytest.Pytester) -> None:
    dbname = f"qw_pgp_{uuid.uuid4().hex[:8]}"
    (pytester.path / "schema.sql").write_text(SCHEMA)
    (pytester.path / "data.sql").write_text(DATA)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "conftest.py").write_text(textwrap.dedent(CONFTEST).replace("{dbname}", dbname))
    (pytester.path / "tests" / "test_paths.py").write_text(textwrap.dedent(TESTS))
    (pytester.path / "pytest.ini").write_text(textwrap.dedent(f"""\
        [pytest]
        addopts = {INNER_ADDOPTS}
        querywarden_schema = schema.sql
        querywarden_seed = data.sql
        querywarden_baselines = baselines
        """))
    result = pytester.runpytest("--querywarden-update", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    assert "starting an embedded PostgreSQL cluster" not in result.stdout.str()
    (seeded,) = _statements(pytester.path, "test_on_the_seed")
    assert [_rows(node) for node in _walk(seeded["plan"]) if node.get("index")] == [40.0]  # type: ignore[arg-type]
    (tags,) = _statements(pytester.path, "test_on_pytest_postgresql_s_own_database")
    scans = [node for node in _walk(tags["plan"]) if node.get("relation") == "tags"]  # type: ignore[arg-type]
    assert [_rows(node) for node in scans] == [11.0]  # the test's own uncommitted rows, seen by the measurement

    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["querywarden: passed: 2 guarded tests (*)"])
