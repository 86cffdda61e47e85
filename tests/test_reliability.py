"""Fail closed and lose nothing: every way a run can go wrong ends in exit 2 (or a blocking verdict), never a pass,
and measuring leaves the database exactly as it was.

Each test here names the protection it proves; removing that protection makes the test fail.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from querywarden.baseline import BaselineStore, baseline_text
from querywarden.cli import main
from querywarden.database import Server, connect
from querywarden.errors import DatabaseError

from conftest import empty_database
from factories import observation

CLOSED_PORT_DSN = "postgresql://postgres@127.0.0.1:1/nowhere"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def error_line(result: Result) -> str:
    """The one `querywarden: error:` line a run that could not complete ends with."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("querywarden: error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no pyproject.toml supplies a seed or catalog: each test says what it measures."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)


SCHEMA = """
CREATE TABLE accounts (id serial PRIMARY KEY, email text UNIQUE NOT NULL, balance int NOT NULL);
CREATE INDEX accounts_balance_idx ON accounts (balance);
INSERT INTO accounts (email, balance) SELECT 'user' || g || '@example.com', g % 100 FROM generate_series(1, 2000) g;
CREATE TABLE audit (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now());
INSERT INTO audit (at) SELECT now() FROM generate_series(1, 50);
CREATE FUNCTION touch_audit() RETURNS bigint LANGUAGE sql VOLATILE AS
    $$ INSERT INTO audit (at) VALUES (now()) RETURNING id $$;
"""


def populate(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in SCHEMA.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("VACUUM ANALYZE")


@pytest.fixture
def app_db(scratch_db: str) -> str:
    """A small application database measured in place (no seed): the user's data that must survive."""
    populate(scratch_db)
    return scratch_db


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- Fail closed: the database goes away -----------------------------------------------------


class FlakyProxy:
    """A TCP front for the real server that hangs up on the first `drop` connections it accepts."""

    def __init__(self, target_port: int, drop: int) -> None:
        self.target_port = target_port
        self.drop = drop
        self.accepted = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.accepted <= self.drop:
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def dsn(self, dbname: str = "postgres", password: str | None = None) -> str:
        secret = f":{password}" if password else ""
        # sslmode=disable: one TCP connection per attempt (libpq's SSL fallback would open a second).
        return f"postgresql://postgres{secret}@127.0.0.1:{self.port}/{dbname}?sslmode=disable"

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxy_factory(pg_dsn: str) -> Iterator[type[FlakyProxy]]:
    made: list[FlakyProxy] = []
    port = int(psycopg.conninfo.conninfo_to_dict(pg_dsn).get("port") or 5432)

    class Bound(FlakyProxy):
        def __init__(self, drop: int) -> None:  # type: ignore[override]
            super().__init__(port, drop)
            made.append(self)

    yield Bound
    for proxy in made:
        proxy.close()


def test_first_contact_is_retried_when_the_server_hangs_up(proxy_factory: type[FlakyProxy]) -> None:
    proxy = proxy_factory(drop=1)  # type: ignore[call-arg]
    with connect(proxy.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert proxy.accepted == 2


def test_first_contact_retries_are_bounded_and_the_error_hides_the_password(proxy_factory: type[FlakyProxy]) -> None:
    proxy = proxy_factory(drop=1000)  # type: ignore[call-arg]
    with pytest.raises(DatabaseError) as caught:
        connect(proxy.dsn(password="Retry-Pw-7731"))
    assert proxy.accepted == 3
    assert str(caught.value).startswith("cannot connect to postgresql://postgres:***@127.0.0.1:")
    assert "Retry-Pw-7731" not in str(caught.value)


def test_a_definite_refusal_is_not_retried(proxy_factory: type[FlakyProxy]) -> None:
    proxy = proxy_factory(drop=0)  # type: ignore[call-arg]
    with pytest.raises(DatabaseError, match='database "qw_no_such_database" does not exist'):
        connect(proxy.dsn("qw_no_such_database"))
    assert proxy.accepted == 1


def _kill_when_running(admin_dsn: str, marker: str, action: str, done: threading.Event) -> None:
    """Wait until a statement holding `marker` runs (on the clone querywarden measures on), then
    terminate it or drop its database."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        for _ in range(600):
            row = conn.execute(
                "SELECT pid, datname FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
            if row is not None:
                if action == "terminate":
                    conn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                else:
                    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(row[1])))
                done.set()
                return
            time.sleep(0.05)


@pytest.mark.parametrize("action", ["terminate", "drop-database"])
def test_connection_lost_mid_query_exits_2_naming_the_query(
    app_db: str, pg_dsn: str, tmp_path: Path, action: str
) -> None:
    catalog = write(tmp_path / "q.sql", (
        "-- name: quick\nSELECT count(*) FROM accounts;\n\n"
        f"-- name: victim\nSELECT pg_sleep(5), 'qw-victim-{action}';\n\n"
        "-- name: after\nSELECT max(balance) FROM accounts;\n"
    ))
    done = threading.Event()
    killer = threading.Thread(target=_kill_when_running, args=(pg_dsn, f"qw-victim-{action}", action, done))
    killer.start()
    try:
        result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", app_db)
    finally:
        killer.join()
    assert done.is_set()
    assert result.exit_code == 2, result.output
    assert error_line(result).startswith(
        f"querywarden: error: lost the database connection while measuring query 'victim' ({catalog}:5): "
    )
    assert "passed" not in result.output and "BLOCKED" not in result.output


# --- Fail closed: baselines that cannot be trusted --------------------------------------------

GOOD = baseline_text(observation())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (GOOD[: len(GOOD) // 2], "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "cannot be read"),
        ("<<<<<<< HEAD\n" + GOOD + "=======\n" + GOOD + ">>>>>>> feature\n", "contains git merge-conflict markers"),
        (GOOD.replace('"format": 1', '"format": 2'), "baseline format 2 is not the supported format 1"),
        (GOOD.replace('"format": 1', '"format": true'), "baseline format True is not the supported format 1"),
        (GOOD.replace('"name": "running_timer"', '"name": "other_query"'), "holds the baseline of 'other_query'"),
        (GOOD.replace('"shared": 4', '"shared": "four"'), "malformed baseline (ValueError"),
        (GOOD.replace('"median_ms": 0.05', '"median_ms": NaN'), "NaN is not a number a baseline can hold"),
        (GOOD.replace('"count": 7', '"count": 1e999'), "the number 1e999 is out of range"),
        (GOOD.replace('"timing": {', '"timing": [{').replace('"probe_ms": null\n    }', '"probe_ms": null\n    }]'),
         "malformed baseline"),
        ('{"format": 1, "query": ' + "[" * 100_000 + "]" * 100_000 + "}", "not a usable baseline (RecursionError"),
        ("[]", "not a querywarden baseline"),
    ],
    ids=["truncated", "empty", "not-utf8", "merge-conflict", "wrong-version", "format-true", "renamed",
         "wrong-type", "nan", "overflow", "timing-list", "nested-deep", "not-an-object"],
)
def test_untrustworthy_baseline_exits_2_naming_the_file(tmp_path: Path, content: str | bytes, message: str) -> None:
    catalog = write(tmp_path / "q.sql", "-- name: running_timer\nSELECT 1;\n")
    store = BaselineStore(tmp_path / "baselines")
    store.directory.mkdir()
    path = store.path_for("running_timer")
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(store.directory), "--dsn", CLOSED_PORT_DSN)
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert line.startswith(f"querywarden: error: {path}: "), line
    assert message in line


def test_a_corrupt_baseline_of_another_query_also_stops_the_run(tmp_path: Path) -> None:
    """A file no query of the catalog loads is still read: it is never skipped as if it were missing."""
    catalog = write(tmp_path / "q.sql", "-- name: running_timer\nSELECT 1;\n")
    store = BaselineStore(tmp_path / "baselines")
    store.write(observation())
    stray = write(store.directory / "gone_query.json", GOOD[:100])
    for command in ("check", "update"):
        result = invoke(command, "--catalog", str(catalog), "--baselines", str(store.directory), "--dsn", CLOSED_PORT_DSN)
        assert result.exit_code == 2
        assert error_line(result).startswith(f"querywarden: error: {stray}: not valid JSON")


def test_a_directory_in_place_of_a_baseline_is_an_error(tmp_path: Path) -> None:
    catalog = write(tmp_path / "q.sql", "-- name: running_timer\nSELECT 1;\n")
    (tmp_path / "baselines" / "running_timer.json").mkdir(parents=True)
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "baselines"), "--dsn", CLOSED_PORT_DSN)
    assert result.exit_code == 2
    assert error_line(result).startswith(f"querywarden: error: {tmp_path / 'baselines' / 'running_timer.json'}: cannot be read")


# --- Fail closed: runaway queries and the whole-run cap ---------------------------------------


def test_run_cap_leaves_the_rest_unmeasured_and_exits_2(app_db: str, tmp_path: Path) -> None:
    # Each query runs at least 10 times (2 warm-ups, EXPLAIN, 7 samples): the first alone outlasts the cap,
    # so the others are never measured (the first too, when setting up the session already took the time).
    catalog = write(tmp_path / "q.sql", "".join(
        f"-- name: nap_{i}\nSELECT pg_sleep(0.2), {i};\n\n" for i in range(1, 4)
    ))
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", app_db,
                    "--max-run-time", "1")
    assert result.exit_code == 2, result.output
    assert re.fullmatch(
        r"querywarden: error: the run reached its time cap of 1 s \(--max-run-time / max-run-seconds\) with "
        r"(2 of 3 queries not measured: |3 of 3 queries not measured: nap_1, )nap_2, nap_3; raise the cap or guard "
        r"fewer queries \(a run that did not measure every query gives no verdict\)",
        error_line(result),
    ), error_line(result)
    assert "measuring nap_2" not in result.stderr
    assert "passed" not in result.output


def test_a_statement_outlasting_the_run_cap_is_cut_short_and_reported_unmeasured(app_db: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.querywarden]\nmax-run-seconds = 1\n")
    catalog = write(tmp_path / "q.sql", (
        "-- name: quick\nSELECT count(*) FROM accounts;\n\n"
        "-- name: forever\nSELECT pg_sleep(600);\n"
    ))
    baselines = tmp_path / "b"
    result = invoke("update", "--catalog", str(catalog), "--baselines", str(baselines), "--dsn", app_db)
    assert result.exit_code == 2, result.output
    assert "with 1 of 2 queries not measured: forever;" in error_line(result)
    assert not baselines.exists() or not any(baselines.iterdir())  # a cut run records nothing


def test_run_cap_must_be_positive(tmp_path: Path) -> None:
    catalog = write(tmp_path / "q.sql", "-- name: q\nSELECT 1;\n")
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path), "--dsn", CLOSED_PORT_DSN,
                    "--max-run-time", "0")
    assert result.exit_code == 2
    assert error_line(result) == "querywarden: error: --max-run-time must be a positive number of seconds"
    (tmp_path / "pyproject.toml").write_text("[tool.querywarden]\nmax-run-seconds = -3\n")
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path), "--dsn", CLOSED_PORT_DSN)
    assert result.exit_code == 2
    assert "`max-run-seconds` must be a number of seconds >= 0" in error_line(result)


def test_runaway_query_blocks_and_the_rest_is_still_measured(app_db: str, tmp_path: Path) -> None:
    catalog = write(tmp_path / "q.sql", (
        "-- name: runaway\nSELECT pg_sleep(600);\n\n"
        "-- name: fine\nSELECT count(*) FROM accounts;\n"
    ))
    results = tmp_path / "results.json"
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", app_db,
                    "--statement-timeout", "0.3", "--json", str(results))
    assert result.exit_code == 1, result.output
    verdicts = {q["name"]: (q["verdict"], q["blocking"]) for q in json.loads(results.read_text())["queries"]}
    assert verdicts == {"runaway": ("fail", True), "fine": ("new", False)}  # a cheap new query passes
    assert "exceeded the statement timeout of 0.3 s" in result.output


# --- Fail closed: catalogs ----------------------------------------------------------------------


def test_duplicate_names_across_files_exit_2_naming_both(tmp_path: Path) -> None:
    first = write(tmp_path / "a.sql", "-- name: one\nSELECT 1;\n\n-- name: twin\nSELECT 2;\n")
    second = write(tmp_path / "b.sql", "-- name: three\nSELECT 3;\n\n-- name: twin\nSELECT 4;\n")
    result = invoke("check", "--catalog", str(first), "--catalog", str(second), "--baselines", str(tmp_path),
                    "--dsn", CLOSED_PORT_DSN)
    assert result.exit_code == 2
    assert error_line(result).startswith(
        f"querywarden: error: {second}:5: query name 'twin' is already used at {first}:5"
    )


def test_sql_error_names_the_file_line_and_query_among_several(app_db: str, tmp_path: Path) -> None:
    catalog = write(tmp_path / "q.sql", (
        "-- name: fine\nSELECT 1;\n\n"
        "-- name: wrong_param_type\n-- params: {\"id\": \"not-a-number\"}\n\n"
        "SELECT email FROM accounts\nWHERE id = %(id)s::int;\n"
    ))
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", app_db)
    assert result.exit_code == 2
    assert error_line(result).startswith(
        f"querywarden: error: query 'wrong_param_type' ({catalog}:7): PostgreSQL rejected it: "
        'invalid input syntax for type integer: "not-a-number"'
    )


@pytest.fixture(scope="module")
def untouched_db(server: Server) -> Iterator[str]:
    """One empty database for tests whose runs must never reach it."""
    with empty_database(server) as dsn:
        yield dsn


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        ("-- name: p\nSELECT %(id)s, %(other)s;\n", "{cat}:1: query 'p': uses %(id)s, %(other)s but has no `-- params:` line"),
        ("-- name: p\n-- params: {\"id\": 1}\nSELECT %(id)s, %(other)s;\n", "{cat}:1: query 'p': `-- params:` has no value for other"),
        ("-- name: p\n-- params: [1]\nSELECT %s, %s;\n", "{cat}:1: query 'p': uses 2 %s placeholder(s); `-- params:` must be a list"),
        ("-- name: k\n-- calls-per-minut: 3\nSELECT 1;\n", "{cat}:2: query 'k': unknown metadata key 'calls-per-minut'"),
        ("-- name: k\n-- calls-per-minute: often\nSELECT 1;\n", "{cat}:1: query 'k': `-- calls-per-minute: often` is not a number"),
        ("SELECT 1;\n-- name: late\nSELECT 2;\n", "{cat}:1: SQL before the first `-- name:` line"),
        ("-- name: two\nSELECT 1; SELECT 2;\n", "{cat}:1: query 'two': holds 2 statements"),
    ],
    ids=["no-params", "missing-param", "positional-count", "unknown-key", "not-a-number", "sql-before-name", "two-statements"],
)
def test_catalog_defects_exit_2_naming_file_line_and_query(tmp_path: Path, catalog: str, message: str) -> None:
    path = write(tmp_path / "bad.sql", catalog)
    for extra in ((), ("--no-fail",)):
        result = invoke("check", "--catalog", str(path), "--baselines", str(tmp_path / "b"), "--dsn", CLOSED_PORT_DSN, *extra)
        assert result.exit_code == 2
        assert error_line(result).startswith("querywarden: error: " + message.format(cat=path)), error_line(result)


def test_no_fail_never_turns_could_not_run_into_a_pass(tmp_path: Path) -> None:
    catalog = write(tmp_path / "q.sql", "-- name: running_timer\nSELECT 1;\n")
    store = BaselineStore(tmp_path / "baselines")
    store.directory.mkdir()
    store.path_for("running_timer").write_text(GOOD[:10])
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(store.directory), "--dsn", CLOSED_PORT_DSN,
                    "--no-fail")
    assert result.exit_code == 2
    unreachable = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "none"), "--dsn", CLOSED_PORT_DSN,
                         "--no-fail")
    assert unreachable.exit_code == 2


@pytest.mark.parametrize(
    ("statement", "why"),
    [
        ("VACUUM accounts", "VACUUM statements cannot be measured and rolled back safely"),
        ("CREATE TABLE t2 (a int)", "CREATE statements cannot be measured and rolled back safely"),
        ("TRUNCATE accounts", "TRUNCATE statements cannot be measured and rolled back safely"),
        ("COPY accounts TO PROGRAM 'cat > /dev/null'", "COPY statements cannot be measured and rolled back safely"),
        ("NOTIFY qw_channel", "NOTIFY statements cannot be measured and rolled back safely"),
        # WHERE pid < 0: were the refusal ever removed, the test must fail, not kill the shared server
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid < 0",
         "it calls pg_terminate_backend(), whose effects a rollback does not undo"),
        ('SELECT "pg_terminate_backend"(pid) FROM pg_stat_activity WHERE pid < 0',
         "it calls pg_terminate_backend(), whose effects a rollback does not undo"),
        ("SELECT * FROM dblink('dbname=other', 'DELETE FROM t') AS d(x text)",
         "it calls dblink(), whose effects a rollback does not undo"),
        ("SELECT pg_create_physical_replication_slot('qw_slot')",
         "it calls pg_create_physical_replication_slot(), whose effects a rollback does not undo"),
        ("SELECT pg_advisory_lock(42)", "it calls pg_advisory_lock(), whose effects a rollback does not undo"),
        ("SELECT pg_stat_reset()", "it calls pg_stat_reset(), whose effects a rollback does not undo"),
    ],
    ids=["vacuum", "ddl", "truncate", "copy-program", "notify", "terminate", "terminate-quoted", "dblink",
         "replication-slot", "advisory-lock", "stat-reset"],
)
def test_unsafe_statement_is_refused_before_anything_is_measured(
    untouched_db: str, tmp_path: Path, statement: str, why: str
) -> None:
    catalog = write(tmp_path / "q.sql", f"-- name: harmless\nSELECT 1;\n\n-- name: unsafe\n{statement};\n")
    with psycopg.connect(untouched_db, autocommit=True) as watcher:
        slots = watcher.execute("SELECT slot_name FROM pg_replication_slots").fetchall()
        result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", untouched_db)
        assert watcher.execute("SELECT slot_name FROM pg_replication_slots").fetchall() == slots
        assert watcher.execute("SELECT pg_try_advisory_lock(42)").fetchone() == (True,)
    assert result.exit_code == 2
    assert error_line(result) == (
        f"querywarden: error: query 'unsafe' ({catalog}:5): refused: {why}; guard a SELECT/INSERT/UPDATE/DELETE/MERGE"
    )
    assert "measuring" not in result.stderr  # refused up front: not even the harmless query ran


# --- Lose nothing -------------------------------------------------------------------------------

WRITES_AND_SIDE_EFFECTS = """
-- name: read_one
-- params: {"id": 42}
SELECT id, email, balance FROM accounts WHERE id = %(id)s;

-- name: volatile_function
SELECT touch_audit();

-- name: insert_account
-- params: {"email": "new@example.com"}
INSERT INTO accounts (email, balance) VALUES (%(email)s, 0) RETURNING id;

-- name: update_balance
-- params: {"id": 42}
UPDATE accounts SET balance = balance + 1 WHERE id = %(id)s;

-- name: merge_account
-- params: {"id": 44}
MERGE INTO accounts a USING (SELECT %(id)s::int AS id) s ON a.id = s.id
WHEN MATCHED THEN UPDATE SET balance = 0
WHEN NOT MATCHED THEN INSERT (email, balance) VALUES ('merged@example.com', 0);
"""


def database_state(dsn: str) -> dict[str, object]:
    """Data, sequences and on-disk sizes of every table and index the catalog touches."""
    with psycopg.connect(dsn) as conn:
        def one(query: str) -> object:
            row = conn.execute(query).fetchone()
            assert row is not None
            return row

        state: dict[str, object] = {
            "accounts": one("SELECT count(*), sum(balance), md5(string_agg(id || email || balance, ',' ORDER BY id)) FROM accounts"),
            "audit": one("SELECT count(*), max(id) FROM audit"),
            "sequences": conn.execute("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1").fetchall(),
        }
        for relation in ("accounts", "accounts_pkey", "accounts_email_key", "accounts_balance_idx", "audit", "audit_pkey"):
            state[f"size:{relation}"] = one(f"SELECT pg_relation_size('{relation}')")
        return state


def test_measuring_writes_and_side_effects_leaves_the_database_as_it_was(app_db: str, tmp_path: Path) -> None:
    catalog = write(tmp_path / "q.sql", WRITES_AND_SIDE_EFFECTS)
    before = database_state(app_db)
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", app_db)
    assert result.exit_code == 0, result.output  # every query is new, and cheap: nothing blocks
    assert result.output.count("NEW") == 5
    assert database_state(app_db) == before
    # The reads that write were found out by their READ ONLY transaction and moved to a clone.
    assert "measuring volatile_function (on a throwaway clone)" in result.stderr
    assert "measuring read_one (on a throwaway clone)" not in result.stderr


@pytest.mark.parametrize(
    "pin",
    [
        "ALTER DATABASE {db} SET search_path = shadow, public",
        "ALTER ROLE CURRENT_USER IN DATABASE {db} SET search_path = shadow, public",
    ],
    ids=["database", "role"],
)
def test_search_path_of_the_role_or_database_does_not_change_what_is_measured(
    scratch_db: str, tmp_path: Path, pin: str
) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA shadow")
        conn.execute("CREATE TABLE public.items AS SELECT g AS id FROM generate_series(1, 3) g")
        conn.execute("CREATE TABLE shadow.items AS SELECT g AS id FROM generate_series(1, 5000) g")
        dbname = conn.execute("SELECT current_database()").fetchone()
        assert dbname is not None
        conn.execute(sql.SQL(pin.format(db="{}")).format(sql.Identifier(dbname[0])))
    with psycopg.connect(scratch_db) as conn:  # a new session picks the setting up
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (5000,)
    catalog = write(tmp_path / "q.sql", "-- name: count_items\nSELECT count(*) FROM items;\n")
    baselines = tmp_path / "b"
    result = invoke("update", "--catalog", str(catalog), "--baselines", str(baselines), "--dsn", scratch_db)
    assert result.exit_code == 0, result.output
    plan = json.loads((baselines / "count_items.json").read_text())["query"]["plan"]
    scan = plan["children"][0]
    assert (scan["node_type"], scan["relation"], scan["actual_rows"]) == ("Seq Scan", "items", 3)


def test_server_repr_never_shows_the_password() -> None:
    server = Server("postgresql://app:Repr-Pw-5521@db.internal:5432/app")
    assert "Repr-Pw-5521" not in repr(server)
