"""import-stats: production call rates from a real pg_stat_statements export into the catalog.

The end-to-end tests start an embedded cluster with pg_stat_statements preloaded, run the example's
queries a known number of times the way an application does (psycopg, %(name)s placeholders), export
with the exact SQL documented in docs/production-stats.md through psql, and import the result.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from querywarden.catalog import load_catalogs, parse_catalog
from querywarden.cli import main
from querywarden.cli.import_stats import import_stats
from querywarden.embedded import EmbeddedCluster
from querywarden.errors import QuerywardenError
from querywarden.call_rates import (
    ProductionStatement,
    StatsExport,
    StatsImportError,
    format_rate,
    is_application_statement,
    match_export,
    read_export,
    rewrite_rates,
    statement_key,
)
from querywarden.seeding.seed import Seed

from conftest import EXAMPLE, REPO

if "import-stats" not in main.commands:  # cli.py registers it; until then the tests do
    main.add_command(import_stats)

DOCS = REPO / "docs" / "production-stats.md"
# How many times each catalog query runs in "production"; monthly_workspace_report never does.
RUNS = {
    "running_timer": 40,
    "recent_entries": 25,
    "active_projects": 12,
    "week_totals_by_project": 7,
    "tag_autocomplete": 3,
    "start_timer": 5,
    "stop_timer": 2,
    "user_by_email": 1,
}
UNGUARDED_SQL = "SELECT id, name FROM clients WHERE workspace_id = %s ORDER BY name"
UNGUARDED_RUNS = 30


def documented_query(kind: str) -> str:
    """The export query of docs/production-stats.md, found by its `-- querywarden export: KIND` line."""
    text = DOCS.read_text(encoding="utf-8")
    for block in re.findall(r"```sql\n(.*?)```", text, flags=re.DOTALL):
        if block.startswith(f"-- querywarden export: {kind}\n"):
            return str(block)
    raise AssertionError(f"no `-- querywarden export: {kind}` block in {DOCS}")


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, ["import-stats", *args], catch_exceptions=False)


# --------------------------------------------------------------------------------------------------
# A real pg_stat_statements
# --------------------------------------------------------------------------------------------------


class Production:
    def __init__(self, dsn: str, psql: Path) -> None:
        self.dsn = dsn
        self.psql = psql

    def export(self, kind: str, out: Path) -> Path:
        script = out.with_suffix(".sql")
        script.write_text(documented_query(kind), encoding="utf-8")
        if kind == "json":
            command = [str(self.psql), self.dsn, "-X", "-A", "-t", "-q", "-f", str(script), "-o", str(out)]
        else:
            command = [str(self.psql), self.dsn, "-X", "-q", "--csv", "-f", str(script), "-o", str(out)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return out


@pytest.fixture(scope="module")
def production() -> Iterator[Production]:
    """An application database that ran the example's queries RUNS times each since the stats reset."""
    cluster = EmbeddedCluster(server_options=["shared_preload_libraries=pg_stat_statements"])
    with cluster as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            Seed(("seed.sql",), 0.01, EXAMPLE, schema=("schema.sql",)).load(conn)
            conn.execute("CREATE EXTENSION pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
        with psycopg.connect(dsn, autocommit=True) as app:
            for query in load_catalogs([EXAMPLE / "queries.sql"]):
                for _ in range(RUNS.get(query.name, 0)):
                    with app.transaction(force_rollback=True):
                        app.execute(query.sql, query.params)
            for _ in range(UNGUARDED_RUNS):
                app.execute(UNGUARDED_SQL, (1,))
        assert cluster.bindir is not None
        yield Production(dsn, Path(cluster.bindir) / "psql")


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "queries.sql"
    path.write_bytes((EXAMPLE / "queries.sql").read_bytes())
    return path


def rate_line_values(path: Path) -> dict[str, float]:
    return {q.name: q.calls_per_minute for q in parse_catalog(path.read_text(encoding="utf-8"), path)}


@pytest.mark.parametrize("kind", ["json", "csv"])
def test_rates_from_a_real_export_are_written_into_the_catalog(
    production: Production, catalog: Path, tmp_path: Path, kind: str
) -> None:
    export = production.export(kind, tmp_path / f"pss.{kind}")
    original = catalog.read_bytes()
    before = rate_line_values(catalog)

    result = invoke(str(export), "--catalog", str(catalog), "--window-minutes", "10", "--write")

    assert result.exit_code == 0, result.output
    after = rate_line_values(catalog)
    expected = {name: runs / 10 for name, runs in RUNS.items()}
    assert {name: after[name] for name in RUNS} == expected
    assert after["monthly_workspace_report"] == before["monthly_workspace_report"]
    assert "guarded but not in the export (calls-per-minute left as is): monthly_workspace_report" in result.output
    # every other byte is unchanged: swap the old lines back in and compare
    new_lines = catalog.read_bytes().split(b"\n")
    old_lines = original.split(b"\n")
    assert len(new_lines) == len(old_lines)
    changed = [(old, new) for old, new in zip(old_lines, new_lines) if old != new]
    assert len(changed) == len(RUNS)
    for old, new in changed:
        assert old.startswith(b"-- calls-per-minute: ") and new.startswith(b"-- calls-per-minute: ")
    assert b"-- calls-per-minute: 4\n" in catalog.read_bytes()  # running_timer: 40 calls in 10 minutes
    assert b"-- calls-per-minute: 2.5\n" in catalog.read_bytes()  # recent_entries: 25 calls
    # the application statement no query guards is listed, with its rate
    unguarded = [line for line in result.output.splitlines() if "FROM clients WHERE workspace_id = $1" in line]
    assert len(unguarded) == 1 and unguarded[0].split()[0] == "3.0/min"
    assert "BEGIN" not in result.output and "pg_stat_statements" not in result.output.split("unguarded")[1]

    again = invoke(str(export), "--catalog", str(catalog), "--window-minutes", "10", "--write")
    assert again.exit_code == 0
    assert "the catalog already has these rates; nothing written" in again.output


def test_the_window_comes_from_stats_reset_and_now(production: Production, tmp_path: Path) -> None:
    export_path = production.export("json", tmp_path / "pss.json")
    document = json.loads(export_path.read_text(encoding="utf-8"))
    window = (
        datetime.fromisoformat(document["exported_at"]) - datetime.fromisoformat(document["stats_reset"])
    ).total_seconds() / 60
    export = read_export(export_path)
    assert export.window_minutes() == pytest.approx(window)
    result = match_export(export, load_catalogs([EXAMPLE / "queries.sql"]), export.window_minutes())
    rates = {m.query.name: m.calls_per_minute for m in result.matched}
    assert rates["running_timer"] == pytest.approx(40 / window)
    assert rates["monthly_workspace_report"] is None
    mean = {m.query.name: m.mean_ms for m in result.matched}
    running = [s for s in export.statements if "stopped_at IS NULL" in s.query and s.query.startswith("SELECT")]
    assert mean["running_timer"] == pytest.approx(running[0].total_exec_time_ms / 40)
    assert "the window is only" in " ".join(result.notes)


def test_every_catalog_query_matches_its_real_pg_stat_statements_text(production: Production, tmp_path: Path) -> None:
    export = read_export(production.export("csv", tmp_path / "pss.csv"))
    texts = {s.query for s in export.statements}
    assert any("extract($" in t.lower() for t in texts), "stop_timer's EXTRACT field is a $n in pg_stat_statements"
    keys = {statement_key(t) for t in texts}
    for query in load_catalogs([EXAMPLE / "queries.sql"]):
        assert (statement_key(query.sql) in keys) == (query.name in RUNS), query.name


def test_a_query_without_a_rate_line_gets_one_under_its_name(production: Production, tmp_path: Path) -> None:
    source = (EXAMPLE / "queries.sql").read_text(encoding="utf-8")
    without = re.sub(r"(-- name: running_timer\(user_id\)\^\n)-- calls-per-minute: [^\n]*\n", r"\1", source)
    assert without != source
    catalog = tmp_path / "queries.sql"
    catalog.write_text(without, encoding="utf-8")
    export = production.export("json", tmp_path / "pss.json")

    result = invoke(str(export), "--catalog", str(catalog), "--window-minutes", "10", "--write")

    assert result.exit_code == 0, result.output
    text = catalog.read_text(encoding="utf-8")
    assert "-- name: running_timer(user_id)^\n-- calls-per-minute: 4\n-- params:" in text
    assert "(default 60)" in result.output


# --------------------------------------------------------------------------------------------------
# Matching keys, on texts pg_stat_statements produced (PostgreSQL 15)
# --------------------------------------------------------------------------------------------------

SAME_STATEMENT = [
    # catalog (as the application sends it), pg_stat_statements' text of it
    ("SELECT * FROM t WHERE id = %(id)s AND b = true LIMIT 50", "select * from t where id = $1 and b = $2 limit $3"),
    ("select * from t where id = -5 and a is null and b = false and id in (1, 2) limit all",
     "select * from t where id = $1 and a is null and b = $2 and id in ($3, $4) limit $5"),
    ("select coalesce(a, NULL), extract(epoch from ts), ts at time zone 'UTC' from t",
     "select coalesce(a, $1), extract($2 from ts), ts at time zone $3 from t"),
    ("select ts::date, cast('1' as int), E'x\\n', U&'\\0041', B'101', X'1F' from t group by 1, 2 fetch first 5 rows only",
     "select ts::date, cast($1 as int), $2, $3, $4, $5 from t group by 1, 2 fetch first $6 rows only"),
    ("select * from t /* inner */ where a = 'x' -- trailing\n", "select * from t /* inner comment */ where a = $1 -- trailing"),
    ("SELECT interval '1' day, timestamptz '2026-01-01', $$dollar$$ FROM t", "select interval $1 day, timestamptz $2, $3 from t"),
    ("SELECT * FROM t WHERE id IN (%s, %s, %s)", "SELECT * FROM t WHERE id IN ($1, $2)"),
    ("SELECT * FROM t WHERE ts > '2026-05-01'::timestamptz", "SELECT * FROM t WHERE ts > $1"),
    ("SELECT a %% 7 FROM t;", "SELECT a % $1 FROM t"),
]


@pytest.mark.parametrize(("catalog_sql", "pss_text"), SAME_STATEMENT)
def test_statement_key_equates_pg_stat_statements_text(catalog_sql: str, pss_text: str) -> None:
    assert statement_key(catalog_sql) == statement_key(pss_text)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("SELECT a FROM t WHERE id = $1", "SELECT b FROM t WHERE id = $1"),
        ("SELECT a FROM t WHERE id = $1", "SELECT a FROM u WHERE id = $1"),
        ("SELECT a - 1 FROM t", "SELECT a FROM t"),
        ('SELECT a FROM "T"', "SELECT a FROM t"),
        ("SELECT a FROM t WHERE id IN (SELECT id FROM u)", "SELECT a FROM t WHERE id IN ($1)"),
    ],
)
def test_statement_key_keeps_different_statements_apart(one: str, other: str) -> None:
    assert statement_key(one) != statement_key(other)


def test_application_statements_are_told_from_housekeeping() -> None:
    assert is_application_statement("SELECT id FROM clients WHERE workspace_id = $1")
    assert is_application_statement("WITH x AS (SELECT 1) UPDATE users SET name = $1 WHERE id = $2")
    assert is_application_statement('INSERT INTO "Audit" (a) VALUES ($1)')
    for housekeeping in ["BEGIN", "SET work_mem = $1", "SELECT $1", "SELECT now()", "select pg_stat_statements_reset()",
                         "SELECT count(*) FROM pg_stat_activity", "SELECT * FROM information_schema.tables",
                         "SELECT * FROM generate_series($1, $2)"]:
        assert not is_application_statement(housekeeping), housekeeping


@pytest.mark.parametrize(
    ("rate", "text"),
    [(4.0, "4"), (2.5, "2.5"), (0.1, "0.1"), (19873.4, "19900"), (1234.5, "1230"), (0.033333, "0.0333"),
     (99.96, "100"), (0.0, "0"), (12.345, "12.3")],
)
def test_rates_are_written_with_three_significant_figures(rate: float, text: str) -> None:
    assert format_rate(rate) == text


# --------------------------------------------------------------------------------------------------
# Rewriting catalog files
# --------------------------------------------------------------------------------------------------

ODD_CATALOG = (
    "-- a header comment\r\n"
    "\r\n"
    "-- name: first^\r\n"
    "-- What it does, in a docstring line.\r\n"
    "--calls-per-minute:   12   \r\n"
    "-- params: [1]\r\n"
    "SELECT a FROM t WHERE id = %s;   \r\n"
    "\r\n"
    "-- name: second\r\n"
    "-- params: {\"x\": 2}\r\n"
    "SELECT b\r\n"
    "-- calls-per-minute: 5 (a comment inside the SQL, not metadata)\r\n"
    "FROM t WHERE x = %(x)s\r\n"
    "-- name: third\r\n"
    "-- calls-per-minute: 7\r\n"
    "SELECT 3 FROM t"
)


def test_rewrite_changes_only_the_values_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "odd.sql"
    new = rewrite_rates(ODD_CATALOG, path, {"first": "30", "second": "0.5"})
    assert new == (
        ODD_CATALOG.replace("--calls-per-minute:   12   \r\n", "--calls-per-minute:   30   \r\n")
        .replace("-- name: second\r\n", "-- name: second\r\n-- calls-per-minute: 0.5\r\n")
    )
    rates = {q.name: q.calls_per_minute for q in parse_catalog(new, path)}
    assert rates == {"first": 30.0, "second": 0.5, "third": 7.0}


def test_write_leaves_an_unchanged_file_untouched(tmp_path: Path) -> None:
    catalog = tmp_path / "q.sql"
    catalog.write_bytes(b"-- name: q\n-- calls-per-minute: 30\nSELECT a FROM t WHERE id = 1\n")
    export = tmp_path / "e.csv"
    export.write_text("query,calls,total_exec_time\nSELECT a FROM t WHERE id = $1,300,30.5\n", encoding="utf-8")
    catalog_mtime = catalog.stat().st_mtime_ns
    result = invoke(str(export), "--catalog", str(catalog), "--window-minutes", "10", "--write")
    assert result.exit_code == 0, result.output
    assert catalog.stat().st_mtime_ns == catalog_mtime
    assert "q  " in result.output and "0.102" in result.output  # 30.5 ms over 300 calls
    assert "nothing written" in result.output


# --------------------------------------------------------------------------------------------------
# Files that cannot be used: exit 2, one line naming the file and the fix
# --------------------------------------------------------------------------------------------------

BAD_FILES = [
    ("missing.csv", None, "file not found; export pg_stat_statements with the query in docs/production-stats.md"),
    ("empty.csv", "", "is empty; export it with the query in docs/production-stats.md"),
    ("broken.json", '{"statements": [', "is not valid JSON"),
    ("wrong.json", '{"rows": []}', "neither a list of statements nor an object with a `statements` list"),
    ("nocalls.csv", "query,total_exec_time\nSELECT 1,2\n", "has no calls column (found: query, total_exec_time)"),
    ("notime.csv", "query,calls\nSELECT 1,2\n", "has no total_exec_time or mean_exec_time column"),
    ("badcalls.csv", "query,calls,total_exec_time\nSELECT 1,many,2\n", "row 2: calls is 'many', not a number"),
    ("fraction.json", '[{"query": "SELECT 1", "calls": 1.5, "total_exec_time": 1}]', "row 1: calls is 1.5, not a whole number"),
    ("nostatements.json", '{"stats_reset": null, "exported_at": null, "statements": null}', "holds no statements"),
    ("nowindow.csv", "query,calls,total_exec_time\nSELECT a FROM t,2,1\n", "has no stats_reset and exported_at"),
    ("badtime.csv", "query,calls,total_exec_time,stats_reset,exported_at\nSELECT a FROM t,2,1,yesterday,2026-06-01 00:00:00+00\n",
     "stats_reset is 'yesterday', not an ISO 8601 timestamp"),
    ("reversed.csv", "query,calls,total_exec_time,stats_reset,exported_at\n"
     "SELECT a FROM t,2,1,2026-06-02 00:00:00+00,2026-06-01 00:00:00+00\n", "is not before exported_at"),
]


@pytest.mark.parametrize(("name", "content", "message"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_export_exits_2_with_one_line_naming_the_file(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke(str(path), "--catalog", str(EXAMPLE / "queries.sql"))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"querywarden: error: {path}: ")
    assert message in lines[0]


def test_a_bad_window_option_is_an_error() -> None:
    export = StatsExport(Path("x.csv"), (ProductionStatement("SELECT 1", 1, 1.0),))
    with pytest.raises(StatsImportError, match="--window-minutes must be a positive number"):
        export.window_minutes(0)
    assert issubclass(StatsImportError, QuerywardenError)


def test_csv_and_json_exports_read_the_same(tmp_path: Path) -> None:
    rows = [
        {"query": "SELECT a FROM t WHERE id = $1", "calls": 120, "total_exec_time": 60.0, "mean_exec_time": 0.5,
         "stats_reset": "2026-05-31 00:00:00+00", "exported_at": "2026-06-01 00:00:00+00", "dealloc": 3},
    ]
    csv_path = tmp_path / "e.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    json_path = tmp_path / "e.json"
    json_path.write_text(json.dumps(rows), encoding="utf-8")
    from_csv, from_json = read_export(csv_path), read_export(json_path)
    assert from_csv.statements == from_json.statements == (ProductionStatement("SELECT a FROM t WHERE id = $1", 120, 60.0),)
    assert from_csv.window_minutes() == from_json.window_minutes() == 1440.0
    assert from_csv.dealloc == 3
    result = match_export(from_csv, [], 1440.0)
    assert any("evicted statements 3 times" in note for note in result.notes)


def test_statements_hidden_by_privileges_are_called_out() -> None:
    export = StatsExport(Path("x.csv"), (ProductionStatement("<insufficient privilege>", 500, 1.0),
                                         ProductionStatement("SELECT a FROM t WHERE id = $1", 10, 1.0)))
    result = match_export(export, [], 60.0)
    assert result.notes == (
        "1 statements (500 calls) show <insufficient privilege> instead of their SQL: export as a superuser or a "
        "member of pg_read_all_stats",
    )
    assert [u.text for u in result.unguarded] == ["SELECT a FROM t WHERE id = $1"]
