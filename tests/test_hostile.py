"""A hostile-input corpus against the real server: catalogs and baselines from a pull request that try
to change the user's data, touch another session or reset the server's statistics.

Each case runs `querywarden check` on a database holding known rows, with a second session alive.
After every case the rows, that session and the server's statistics must be as they were, and the
run must not pass. What protects (README, "What querywarden will never do"): untrusted SQL is measured
only on clones querywarden made, as a per-run role with no privileges beyond their tables, each text
checked over the extended protocol (one statement only), in READ ONLY transactions for reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from querywarden.baseline import baseline_text
from querywarden.cli import main
from querywarden.database import Server, dbname_of
from querywarden.fingerprint import identify

from factories import observation

ROWS = [(1, "alpha"), (2, "beta"), (3, "gamma")]


@pytest.fixture(autouse=True)
def outside_any_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No [tool.querywarden] seed from this checkout: the runs measure the DSN's database."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def victim(scratch_db: str) -> str:
    """The user's database: known rows, an audit table, dblink installed (as real databases have it)."""
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS dblink")
        conn.execute("CREATE TABLE keep (id int PRIMARY KEY, v text NOT NULL)")
        conn.execute("CREATE TABLE audit (id int)")
        conn.cursor().executemany("INSERT INTO keep VALUES (%s, %s)", ROWS)
        conn.execute("INSERT INTO audit SELECT generate_series(1, 10)")
    return scratch_db


@pytest.fixture
def bystander(server: Server) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Another session on the server (in the `postgres` database, so the victim can still be cloned)."""
    with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as conn:
        conn.execute("SET application_name = 'qw_bystander'")
        yield conn


def server_state(server: Server, victim: str, bystander_pid: int) -> dict[str, object]:
    with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as conn:
        return {
            "stats_reset": conn.execute(
                "SELECT stats_reset FROM pg_stat_database WHERE datname = %s", (dbname_of(victim),)
            ).fetchone(),
            "bgwriter_reset": conn.execute("SELECT stats_reset FROM pg_stat_bgwriter").fetchone(),
            "bystander": conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (bystander_pid,)
            ).fetchone(),
            "slots": conn.execute("SELECT slot_name FROM pg_replication_slots ORDER BY 1").fetchall(),
            "superusers": conn.execute("SELECT rolname FROM pg_roles WHERE rolsuper ORDER BY 1").fetchall(),
        }


def data(victim: str) -> dict[str, object]:
    with psycopg.connect(victim) as conn:
        return {
            "keep": conn.execute("SELECT id, v FROM keep ORDER BY id").fetchall(),
            "audit": conn.execute("SELECT count(*) FROM audit").fetchone(),
            "tables": conn.execute("SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1").fetchall(),
        }


DBLINK = "dbname={db} host=127.0.0.1 port=5432 user=postgres"

# (id, catalog SQL); {db} is the victim database, {pid} the bystander's backend.
CORPUS = [
    # several statements smuggled as one
    ("e-string-commit", "SELECT E'\\''; COMMIT; DELETE FROM keep; SELECT ''"),
    ("plain-second-statement", "SELECT 1; DELETE FROM keep"),
    ("comment-hidden-commit", "SELECT 1 /* ; */; COMMIT; UPDATE keep SET v = 'x'"),
    ("dollar-quoted-then-commit", "SELECT $$;$$; COMMIT; DELETE FROM audit"),
    ("rollback-then-write", "SELECT 1; ROLLBACK; INSERT INTO keep VALUES (99, 'x')"),
    # forbidden names written differently
    ("unicode-escaped-stat-reset", 'SELECT U&"pg\\005fstat\\005freset"()'),
    ("query-to-xml-stat-reset", "SELECT query_to_xml('SELECT pg_stat_reset()', true, true, '')"),
    ("query-to-xml-terminate", "SELECT query_to_xml('SELECT pg_terminate_backend({pid})', true, true, '')"),
    ("query-to-xml-cancel", "SELECT query_to_xml('SELECT pg_cancel_backend({pid})', true, true, '')"),
    ("concat-name-terminate", "SELECT query_to_xml('SELECT pg_' || 'terminate_backend({pid})', true, true, '')"),
    ("query-to-xml-dblink-delete",
     "SELECT query_to_xml('SELECT dblink_exec(''" + DBLINK + "'', ''DELETE FROM keep'')', true, true, '')"),
    ("unicode-escaped-dblink-update",
     'SELECT U&"dblink\\005fexec"(\'' + DBLINK + "', 'UPDATE keep SET v = ''x''')"),
    ("query-to-xml-slot-changes",
     "SELECT query_to_xml('SELECT * FROM pg_logical_slot_get_changes(''qw_slot'', NULL, NULL)', true, true, '')"),
    ("query-to-xml-stat-statements-reset", "SELECT query_to_xml('SELECT pg_stat_statements_reset()', true, true, '')"),
    ("query-to-xml-read-file", "SELECT query_to_xml('SELECT pg_read_file(''/etc/passwd'')', true, true, '')"),
    ("query-to-xml-set-role", "SELECT query_to_xml('SELECT set_config(''role'', ''postgres'', false)', true, true, '')"),
    ("query-to-xml-write", "SELECT query_to_xml('DELETE FROM keep RETURNING id', true, true, '')"),
    ("lo-import-quoted", 'SELECT "lo_import"(\'/etc/passwd\')'),
    ("alter-role-in-cte", "WITH x AS (SELECT query_to_xml('ALTER ROLE CURRENT_USER SUPERUSER', true, true, '')) SELECT * FROM x"),
]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def first_error(result: Result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("querywarden: error: ")]
    return lines[0] if lines else ""


def check(tmp_path: Path, victim: str, sql: str) -> Result:
    catalog = tmp_path / "hostile.sql"
    catalog.write_text(f"-- name: hostile\n{sql};\n", encoding="utf-8")
    return invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "baselines"), "--dsn", victim)


@pytest.mark.parametrize(("case", "template"), CORPUS, ids=[case for case, _ in CORPUS])
def test_hostile_catalog_sql_changes_nothing_and_never_passes(
    tmp_path: Path, server: Server, victim: str, bystander: psycopg.Connection[tuple[object, ...]], case: str, template: str
) -> None:
    pid = bystander.info.backend_pid
    sql = template.format(db=dbname_of(victim), pid=pid)
    before_data, before_server = data(victim), server_state(server, victim, pid)
    result = check(tmp_path, victim, sql)
    assert result.exit_code == 2, result.output
    assert first_error(result), result.output
    assert "Traceback" not in result.output
    assert data(victim) == before_data
    assert server_state(server, victim, pid) == before_server
    assert bystander.execute("SELECT 1").fetchone() == (1,)


HOSTILE_BASELINE_SQL = [
    ("smuggled", "SELECT 1; DELETE FROM keep"),
    ("dblink-delete", "SELECT * FROM dblink_exec('" + DBLINK + "', 'DELETE FROM keep')"),
    ("e-string-commit", "SELECT E'\\''; COMMIT; DELETE FROM keep; SELECT ''"),
    ("query-to-xml-reset", "SELECT query_to_xml('SELECT pg_stat_reset()', true, true, '')"),
]


@pytest.mark.parametrize(("case", "template"), HOSTILE_BASELINE_SQL, ids=[case for case, _ in HOSTILE_BASELINE_SQL])
def test_hostile_baseline_sql_is_never_replayed_against_the_data(
    tmp_path: Path, server: Server, victim: str, bystander: psycopg.Connection[tuple[object, ...]], case: str, template: str
) -> None:
    # The catalog's query is harmless; the baseline beside it, edited by hand, holds the attack. The SQL
    # differs, so a same-run replay would run the baseline's SQL.
    sql = template.format(db=dbname_of(victim))
    identity = identify(sql)
    edited = replace(observation("hostile", sql=sql), fingerprint=identity.fingerprint, normalized_sql=identity.normalized)
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "hostile.json").write_text(baseline_text(edited), encoding="utf-8")
    pid = bystander.info.backend_pid
    before_data, before_server = data(victim), server_state(server, victim, pid)
    result = check(tmp_path, victim, "SELECT count(*) FROM keep")
    assert result.exit_code == 2, result.output
    assert "hostile" in first_error(result), result.output
    assert data(victim) == before_data
    assert server_state(server, victim, pid) == before_server
    assert bystander.execute("SELECT 1").fetchone() == (1,)


def test_a_harmless_query_on_the_same_setup_is_measured(tmp_path: Path, server: Server, victim: str) -> None:
    """The corpus fails for the right reason: the same harness measures an ordinary query."""
    result = check(tmp_path, victim, "SELECT v FROM keep WHERE id = 2")
    assert not first_error(result), result.output
    assert "NEW" in result.output and "hostile" in result.output  # measured, awaiting a first baseline
    assert data(victim)["keep"] == ROWS


def test_an_empty_copy_of_the_schema_is_incomparable_not_an_improvement(tmp_path: Path, server: Server, victim: str) -> None:
    """Baselines record what data they were measured on even without a seed."""
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: by_id\nSELECT v FROM keep WHERE id = 2;\n", encoding="utf-8")
    baselines = str(tmp_path / "baselines")
    assert invoke("update", "--catalog", str(catalog), "--baselines", baselines, "--dsn", victim).exit_code == 0
    with psycopg.connect(victim, autocommit=True) as conn:
        conn.execute("TRUNCATE keep")  # the CI service container: migrations, no data
    result = invoke("check", "--catalog", str(catalog), "--baselines", baselines, "--dsn", victim)
    assert "incomparable" in result.output.lower(), result.output
    assert "improved" not in result.output.lower()


@pytest.mark.parametrize("cursor_class", [psycopg.Cursor, psycopg.ClientCursor, psycopg.RawCursor])
def test_a_text_the_scanner_took_for_one_statement_still_runs_alone(victim: str, cursor_class: type[psycopg.Cursor[object]]) -> None:
    """Behind the scanner: each text is first sent over the extended protocol, where the server itself
    refuses a second statement, whatever cursor (binding) captured it."""
    from querywarden.measure import _alone

    with psycopg.connect(victim, autocommit=True) as conn, cursor_class(conn) as cur:
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            _alone(cur, "SELECT 1; COMMIT; DELETE FROM keep", None, True)
        _alone(cur, "SELECT v FROM keep WHERE id = 1", None, True)
    assert data(victim)["keep"] == ROWS
