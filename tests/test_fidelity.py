"""querywarden fidelity: production's plans (EXPLAIN exports, auto_explain logs) against CI's, on a real server.

The fixtures in tests/fixtures/fidelity were exported from the local PostgreSQL 15 by make_fixtures.py:
the fixture seed at scale 1 is "production". CI here is the same seed at scale 1 (its plans match,
but for a parallel aggregate querywarden's pinned max_parallel_workers_per_gather = 0 forbids) and
at scale 0.001 (every query plans otherwise), or scale 1 without an index.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from querywarden.catalog import load_catalogs
from querywarden.cli import main
from querywarden.database import Server
from querywarden.fidelity import first_difference, match_plans, read_plans
from querywarden.plan import PlanNode

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fidelity"
PLANS = FIXTURES / "plans"
LOG = FIXTURES / "production.log"


def _run(dsn: str, tmp_path: Path, *args: str, scale: str = "1", schema: Path = FIXTURES / "schema.sql") -> Result:
    return CliRunner().invoke(main, [
        "fidelity", "--catalog", str(FIXTURES / "queries.sql"), *args,
        "--measure", "--dsn", dsn, "--schema", str(schema), "--seed", str(FIXTURES / "seed.sql"), "--scale", scale,
    ])


def _rows(output: str) -> dict[str, str]:
    """The table's line per query (name, then its calls/min)."""
    found: dict[str, str] = {}
    for line in output.splitlines():
        match = re.match(r"(\w+)\s+[\d,]+\s", line)
        if match:
            found.setdefault(match.group(1), line)
    return found


@pytest.fixture(autouse=True)
def _outside_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # this repository's [tool.querywarden] is not the fixtures'


def test_production_sized_seed_has_production_shapes_but_the_pinned_parallel_setting(pg_dsn: str, tmp_path: Path) -> None:
    result = _run(pg_dsn, tmp_path, "--plans", str(PLANS), "--json", str(tmp_path / "f.json"))
    assert result.exit_code == 3, result.output
    rows = _rows(result.output)
    assert rows["account_by_email"].endswith("same shape")
    assert rows["team_page"].endswith("same shape")
    assert ("GAP at depth 1 (under Aggregate (Hashed)): production has Gather, CI has Hash Join") in rows["team_sizes"]
    document = json.loads((tmp_path / "f.json").read_text())
    statuses = {q["name"]: q["status"] for q in document["queries"]}
    assert statuses == {"account_by_email": "same", "team_page": "same", "team_sizes": "gap"}
    assert document["gaps"] == 1


def test_pinning_production_parallel_setting_closes_the_gap(pg_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.querywarden.settings]\nmax_parallel_workers_per_gather = 2\n")
    result = _run(pg_dsn, tmp_path, "--plans", str(PLANS))
    assert result.exit_code == 0, result.output
    assert "3 query(ies) compared: 3 with production's plan shape, 0 fidelity gap(s)" in result.output


def test_a_tiny_seed_is_a_fidelity_gap_at_the_node_that_differs(pg_dsn: str, tmp_path: Path) -> None:
    result = _run(pg_dsn, tmp_path, "--plans", str(PLANS), scale="0.001")
    assert result.exit_code == 3, result.output
    rows = _rows(result.output)
    assert ("GAP at depth 0 (the top node): production has Index Scan using accounts_email_key on accounts, "
            "CI has Seq Scan on accounts") in rows["account_by_email"]
    assert "GAP at depth 1 (under Limit): production has Nested Loop" in rows["team_page"]
    assert "production:\n    Limit\n      Nested Loop\n        Index Scan using accounts_team_created_idx on accounts" in result.output
    assert "3 query(ies) compared: 0 with production's plan shape, 3 fidelity gap(s)" in result.output


def test_a_missing_index_is_a_gap_and_no_fail_exits_0(pg_dsn: str, tmp_path: Path) -> None:
    schema = tmp_path / "schema.sql"
    schema.write_text((FIXTURES / "schema.sql").read_text().replace(
        "CREATE UNIQUE INDEX accounts_email_key ON accounts (email);", ""))
    (tmp_path / "pyproject.toml").write_text("[tool.querywarden.settings]\nmax_parallel_workers_per_gather = 2\n")
    result = _run(pg_dsn, tmp_path, "--plans", str(PLANS / "account_by_email.json"), "--no-fail", schema=schema)
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert "GAP at depth 0 (the top node): production has Index Scan using accounts_email_key on accounts, CI has Seq Scan on accounts" in rows["account_by_email"]
    assert "no production plan" in rows["team_page"]


def test_auto_explain_log_plans_are_matched_by_statement_text(pg_dsn: str, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.querywarden.settings]\nmax_parallel_workers_per_gather = 2\n")
    result = _run(pg_dsn, tmp_path, "--plans", str(LOG))
    assert result.exit_code == 0, result.output
    rows = _rows(result.output)
    assert "3 plans, 1 shape" in rows["account_by_email"] and rows["account_by_email"].endswith("same shape")
    assert "3 plans, 1 shape" in rows["team_page"]
    assert "1 plan" in rows["team_sizes"]


def test_ci_plans_from_the_committed_baselines(pg_dsn: str, tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"
    update = CliRunner().invoke(main, [
        "update", "--catalog", str(FIXTURES / "queries.sql"), "--baselines", str(baselines), "--dsn", pg_dsn,
        "--schema", str(FIXTURES / "schema.sql"), "--seed", str(FIXTURES / "seed.sql"), "--scale", "0.001",
    ])
    assert update.exit_code == 0, update.output
    result = CliRunner().invoke(main, ["fidelity", "--catalog", str(FIXTURES / "queries.sql"),
                                       "--baselines", str(baselines), "--plans", str(PLANS)])
    assert result.exit_code == 3, result.output
    assert f"CI's plan (baseline in {baselines}) is not production's" in result.output
    assert "CI has Seq Scan on accounts" in _rows(result.output)["account_by_email"]


def test_live_auto_explain_notices_in_jsonlog_form_and_an_unmatched_statement(server: Server, pg_dsn: str, tmp_path: Path) -> None:
    """auto_explain LOADed in a session (superuser), plans sent to the client as NOTICEs, written as the
    jsonlog lines a server with log_destination = jsonlog writes: the plan is inside "message"."""
    name = "qw_test_fidelity_live"
    server.drop(name)
    server.create(name)
    messages: list[str] = []
    try:
        with psycopg.connect(server.dsn_for(name), autocommit=True) as conn:
            conn.execute((FIXTURES / "schema.sql").read_text())
            conn.execute("INSERT INTO teams VALUES (1, 'one')")
            conn.execute("INSERT INTO accounts SELECT g, 1, 'u' || g || '@x', now() FROM generate_series(1, 50) g")
            conn.execute("ANALYZE")
            conn.add_notice_handler(lambda d: messages.append(d.message_primary or ""))
            conn.execute("LOAD 'auto_explain'")
            for setting, value in (("log_min_duration", "0"), ("log_format", "json"), ("log_level", "notice")):
                conn.execute(f"SET auto_explain.{setting} = {value}")
            conn.execute("SELECT id, team_id FROM accounts WHERE email = %s", ("u7@x",)).fetchall()
            conn.execute("SELECT count(*) FROM teams").fetchall()
    finally:
        server.drop(name)
    assert len(messages) == 2 and messages[0].startswith("duration:")
    log = tmp_path / "postgresql.json"
    log.write_text("".join(json.dumps({"timestamp": "2026-12-03 09:00:00.000 UTC", "error_severity": "LOG",
                                       "message": message}) + "\n" for message in messages))
    queries = load_catalogs([FIXTURES / "queries.sql"])
    plans, _ = read_plans([log], [q.name for q in queries])
    matched, unmatched = match_plans(plans, queries)
    assert [p.plan.label for p in matched["account_by_email"]] == ["Seq Scan on accounts"]
    assert [p.text for p in unmatched] == ["SELECT count(*) FROM teams"]
    result = CliRunner().invoke(main, ["fidelity", "--catalog", str(FIXTURES / "queries.sql"), "--measure", "--dsn", pg_dsn,
                                       "--schema", str(FIXTURES / "schema.sql"), "--seed", str(FIXTURES / "seed.sql"),
                                       "--scale", "1", "--plans", str(log)])
    assert result.exit_code == 3, result.output
    assert "production has Seq Scan on accounts, CI has Index Scan using accounts_email_key on accounts" in result.output
    assert "production plans that match no catalog query: 1" in result.output
    assert "SELECT count(*) FROM teams" in result.output


def test_unreadable_or_unmatched_plans_exit_2(tmp_path: Path) -> None:
    aligned = tmp_path / "account_by_email.json"
    aligned.write_text("                 QUERY PLAN\n-------------\n [                          +\n   {  +\n")
    catalog = str(FIXTURES / "queries.sql")
    (tmp_path / "baselines").mkdir()
    result = CliRunner().invoke(main, ["fidelity", "--catalog", catalog, "--baselines", str(tmp_path / "baselines"), "--plans", str(aligned)])
    assert result.exit_code == 2 and "psql's aligned output" in result.output
    other = tmp_path / "plans"
    other.mkdir()
    (other / "some_other_query.json").write_text((PLANS / "team_page.json").read_text())
    result = CliRunner().invoke(main, ["fidelity", "--catalog", catalog, "--baselines", str(tmp_path / "baselines"), "--plans", str(other)])
    assert result.exit_code == 2 and "no production plan could be compared" in result.output
    empty = tmp_path / "empty.log"
    empty.write_text("2026-12-03 09:00:00.000 UTC [1] LOG:  checkpoint starting: time\n")
    result = CliRunner().invoke(main, ["fidelity", "--catalog", catalog, "--baselines", str(tmp_path / "baselines"), "--plans", str(empty)])
    assert result.exit_code == 2 and "holds no EXPLAIN (FORMAT JSON) plan" in result.output


def test_first_difference_names_depth_and_path() -> None:
    scan = PlanNode("Seq Scan", relation="a")
    index = PlanNode("Index Scan", relation="a", index="a_pkey")
    hashed = PlanNode("Hash", children=(PlanNode("Seq Scan", relation="b"),))
    production = PlanNode("Hash Join", children=(index, hashed))
    assert first_difference(production, production) is None
    difference = first_difference(production, PlanNode("Hash Join", children=(scan, hashed)))
    assert difference is not None and difference.depth == 1 and difference.path == ("Hash Join",)
    assert difference.describe() == "at depth 1 (under Hash Join): production has Index Scan using a_pkey on a, CI has Seq Scan on a"
    missing = first_difference(production, PlanNode("Hash Join", children=(index,)))
    assert missing is not None and missing.describe() == "at depth 1 (under Hash Join): production has Hash, CI has no node there"
    deeper = first_difference(production, PlanNode("Hash Join", children=(index, PlanNode("Hash", children=(PlanNode("Seq Scan", relation="c"),)))))
    assert deeper is not None and deeper.depth == 2 and deeper.path == ("Hash Join", "Hash")
