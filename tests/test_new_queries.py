"""New queries judged by what they cost at production rates, and recording that never launders a
regression: through the CLI on the example and on pgbench's schema, and through the plugin on paths
seen for the first time (an N+1, a full scan)."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg.conninfo import conninfo_to_dict

# Loaded here so the inner in-process sessions find them imported (pytester drops what they import).
import querywarden.engine  # noqa: F401
import querywarden.plugin.outcome  # noqa: F401
from querywarden.cli import main

from conftest import EXAMPLE
from test_plugin import APP_N_PLUS_ONE, HOT, TESTS, write_project

pytest_plugins = ["pytester"]

@dataclass(frozen=True)
class Scenario:
    """Three new queries on one database: a hot unindexed lookup (blocks), a hot indexed one and a
    rare full aggregate (both pass), with the table the heavy one scans."""

    database: str  # the fixture that provides it
    heavy: str
    cheap: str
    rare: str
    table: str
    catalog: str


SCENARIOS = [
    Scenario("example_db", "entries_by_description", "entries_of_a_user", "description_report", "time_entries", """
-- name: entries_by_description
-- calls-per-minute: 20000
-- params: {"description": "no such entry"}
SELECT id, started_at FROM time_entries WHERE description = %(description)s;

-- name: entries_of_a_user
-- calls-per-minute: 20000
-- params: {"user_id": 42}
SELECT id, started_at FROM time_entries WHERE user_id = %(user_id)s ORDER BY started_at DESC LIMIT 10;

-- name: description_report
-- calls-per-minute: 2
SELECT description, count(*) FROM time_entries GROUP BY description ORDER BY 2 DESC LIMIT 20;
"""),
    # A schema querywarden did not seed: pgbench's, where pgbench_accounts (100,000 rows, ~1,640 blocks)
    # is over the large-relation threshold.
    Scenario("pgbench_db", "accounts_by_balance", "balance_of_an_account", "balance_per_branch", "pgbench_accounts", """
-- name: accounts_by_balance
-- calls-per-minute: 20000
-- params: {"b": 12345}
SELECT aid, abalance FROM pgbench_accounts WHERE abalance = %(b)s;

-- name: balance_of_an_account
-- calls-per-minute: 20000
-- params: {"aid": 4242}
SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s;

-- name: balance_per_branch
-- calls-per-minute: 2
SELECT bid, sum(abalance) FROM pgbench_accounts GROUP BY bid;
"""),
]


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def verdicts(results: Path) -> dict[str, tuple[str, bool]]:
    return {q["name"]: (q["verdict"], q["blocking"]) for q in json.loads(results.read_text())["queries"]}


def find_pgbench() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    tried = ["pgbench on PATH"]
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        for candidate in (Path(bindir) / "pgbench", Path("/usr/lib/postgresql") / Path(bindir).parent.name / "bin" / "pgbench"):
            if candidate.is_file():
                return str(candidate)
            tried.append(str(candidate))
    pytest.fail(f"this test needs pgbench (tried {', '.join(tried)}); install postgresql-contrib or "
                "the PostgreSQL server binaries", pytrace=False)


@pytest.fixture
def pgbench_db(scratch_db: str) -> str:
    """A scratch database initialised by `pgbench -i -s 1 -q` and analysed."""
    params = conninfo_to_dict(scratch_db)
    command = [find_pgbench(), "-i", "-s", "1", "-q"]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if params.get(key):
            command += [flag, str(params[key])]
    command.append(str(params["dbname"]))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("ANALYZE")
        (rows,) = conn.execute("SELECT count(*) FROM pgbench_accounts").fetchone()
        (blocks,) = conn.execute("SELECT pg_relation_size('pgbench_accounts') / current_setting('block_size')::int").fetchone()
    assert rows == 100_000
    assert blocks > 1_000, f"pgbench_accounts has {blocks} blocks, under the large-relation threshold"
    return scratch_db


@pytest.mark.parametrize("scenario", SCENARIOS, ids=["example", "pgbench"])
def test_a_new_hot_full_scan_is_blocked_and_refused_until_accepted(
    request: pytest.FixtureRequest, scenario: Scenario, tmp_path: Path
) -> None:
    dsn = request.getfixturevalue(scenario.database)
    catalog = tmp_path / "new.sql"
    catalog.write_text(scenario.catalog, encoding="utf-8")
    baselines = tmp_path / "baselines"
    common = ("--catalog", str(catalog), "--baselines", str(baselines), "--dsn", dsn)
    heavy, cheap, rare = scenario.heavy, scenario.cheap, scenario.rare

    checked = invoke("check", *common, "--json", str(tmp_path / "r.json"))
    assert checked.exit_code == 1, checked.output
    assert verdicts(tmp_path / "r.json") == {heavy: ("new", True), cheap: ("new", False), rare: ("new", False)}
    assert "new, and too costly to record: " in checked.output
    assert "cores of a 16-core database (budget 0.5 cores a query)" in checked.output
    assert f"hot: Seq Scan on {scenario.table} (" in checked.output
    # Planning and execution apart: a plan that costs more to make than to run is a cost of its own.
    assert "(EXPLAIN: planning " in checked.output and " ms, execution " in checked.output
    after = {q["name"]: q["after"] for q in json.loads((tmp_path / "r.json").read_text())["queries"]}
    assert all(a["planning_ms"] > 0 and a["execution_ms"] > 0 for a in after.values())

    # Recording refuses the heavy one, names it, and records the others.
    updated = invoke("update", *common)
    assert updated.exit_code == 1, updated.output
    assert f"refused    {heavy}" in updated.output
    assert f"querywarden: not recorded: {heavy};" in updated.stderr
    assert sorted(p.name for p in baselines.iterdir()) == sorted([f"{cheap}.json", f"{rare}.json"])
    assert "planning_ms" not in (baselines / f"{cheap}.json").read_text()  # volatile: never in a baseline

    # An explicit acceptance records it, with its reason in the file and in the next verdict.
    reason = "an index lands next sprint; reviewed by the DBA"
    accepted = invoke("update", *common, "--accept", f"{heavy}={reason}")
    assert accepted.exit_code == 0, accepted.output
    assert json.loads((baselines / f"{heavy}.json").read_text())["query"]["accepted"] == reason
    assert "accepted" not in json.loads((baselines / f"{cheap}.json").read_text())["query"]
    again = invoke("check", *common, "--json", str(tmp_path / "again.json"), "--markdown", str(tmp_path / "comment.md"))
    assert again.exit_code == 0, again.output
    noted = {q["name"]: q["reasons"] for q in json.loads((tmp_path / "again.json").read_text())["queries"]}
    assert f"recorded over the budget, accepted: {reason}" in noted[heavy]
    assert reason in (tmp_path / "comment.md").read_text()  # the PR comment says it


def test_an_acceptance_needs_a_reason_and_a_query_of_the_catalog(tmp_path: Path) -> None:
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: q\nSELECT 1;\n", encoding="utf-8")
    for given, said in (("q=", "needs a reason"), ("q", "needs a reason"), ("other=fine", "not a query of the catalog")):
        result = invoke("update", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"),
                        "--dsn", "postgresql://postgres@127.0.0.1:1/nowhere", "--accept", given)
        assert result.exit_code == 2, result.output
        assert said in result.stderr


def test_recording_never_launders_a_regression(example_db: str, tmp_path: Path) -> None:
    baselines = tmp_path / "baselines"
    shutil.copytree(EXAMPLE.parent.parent / "baselines" / "timetracker", baselines)
    catalog = EXAMPLE / "queries.sql"
    common = ("--catalog", str(catalog), "--baselines", str(baselines), "--dsn", example_db)
    assert invoke("update", *common).exit_code == 0  # the example's own baselines, at this seed
    before = (baselines / "running_timer.json").read_text()
    with psycopg.connect(example_db, autocommit=True) as conn:
        conn.execute((EXAMPLE / "changes" / "hot_query_dropped_index.sql").read_text())
    updated = invoke("update", *common)
    assert updated.exit_code == 1, updated.output
    assert "refused    running_timer" in updated.output
    assert (baselines / "running_timer.json").read_text() == before


PLUGIN_RUN = ("-p", "no:randomly")


def test_a_path_first_recorded_with_an_n_plus_one_is_refused_until_accepted(pytester: pytest.Pytester, pg_dsn: str) -> None:
    root = pytester.path
    write_project(root, pg_dsn)
    (root / "app.py").write_text(APP_N_PLUS_ONE)
    (root / "tests" / "test_app.py").write_text(TESTS)

    result = pytester.runpytest("--querywarden-update")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"querywarden: {HOT} (12,000 calls/min, 101 statements): not recorded: it is too costly to record: 1 of 2 "
        "statements break the budget, and recording never launders that",
        "  NEW #2 ×100 SELECT name FROM owners WHERE id = %s",
        "      at app.py:4 in <listcomp>",
        "*N+1: issued ×100 in one call of the path, at 12,000 calls/min of the path",
        "*new, and too costly to record: * at 1,200,000 calls/min ≈ * cores of a 16-core database (budget 0.5 cores a query)",
    ])
    assert not (root / "baselines" / "tests_test_app.py_test_owner_items.json").exists()

    reason = "owners are cached in production; reviewed"
    result = pytester.runpytest("--querywarden-update", f"--querywarden-accept={HOT}={reason}")
    assert result.ret == pytest.ExitCode.OK
    stored = json.loads((root / "baselines" / "tests_test_app.py_test_owner_items.json").read_text())
    assert {s["accepted"] for s in stored["statements"]} == {reason}

    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()


def test_a_cheap_path_is_recorded_on_first_sight(pytester: pytest.Pytester, pg_dsn: str) -> None:
    root = pytester.path
    write_project(root, pg_dsn)
    result = pytester.runpytest("--querywarden-update")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["querywarden: passed: 2 guarded tests (2 written)"])


def test_small_slowdowns_that_add_up_past_the_change_budget_fail_the_session(pytester: pytest.Pytester, pg_dsn: str) -> None:
    from test_plugin import SCHEMA

    root = pytester.path
    write_project(root, pg_dsn)
    assert pytester.runpytest("--querywarden-update").ret == pytest.ExitCode.OK
    # The rare report loses its index: it only warns on its own (6 calls/min) ...
    (root / "schema.sql").write_text(SCHEMA.replace("CREATE INDEX items_category_idx ON items (category);\n", ""))
    assert pytester.runpytest().ret == pytest.ExitCode.OK
    # ... but a change may add only so much load, all of it together.
    (root / "pyproject.toml").write_text("[tool.querywarden]\nchange-cores-budget = 0.000001\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([
        "querywarden: this change blocks: together its regressed and new statements add ≈ * cores of a 16-core "
        "database at their call rates (budget 1e-06 cores a change)",
        "querywarden: BLOCKED: 2 guarded tests (*)",
    ])


def test_new_queries_that_pass_alone_but_add_up_past_the_change_budget_block(example_db: str, tmp_path: Path) -> None:
    catalog = tmp_path / "new.sql"
    cheap_and_rare = SCENARIOS[0].catalog.split("-- name: entries_of_a_user")[1]
    catalog.write_text("-- name: entries_of_a_user" + cheap_and_rare, encoding="utf-8")
    common = ("--catalog", str(catalog), "--baselines", str(tmp_path / "baselines"), "--dsn", example_db)
    assert invoke("check", *common).exit_code == 0
    (tmp_path / "pyproject.toml").write_text("[tool.querywarden]\nchange-cores-budget = 0.001\n")
    result = invoke("check", *common)
    assert result.exit_code == 1, result.output
    assert "FAIL                   (this change)" in result.output
    assert "together its regressed and new queries add ≈ " in result.output
    assert "(budget 0.001 cores a change)" in result.output


APP_FULL_SCAN = '''\
def owner_items(conn, owner_id):
    return conn.execute("SELECT id, title FROM items WHERE title = %s", (f"item {owner_id}",)).fetchall()


def category_report(conn, category):
    return conn.execute("SELECT category, count(*) FROM items GROUP BY category ORDER BY 2 DESC LIMIT 5").fetchall()
'''

TESTS_FULL_SCAN = TESTS.replace("assert len(rows) == 100", "assert len(rows) == 1")


def test_a_new_hot_path_scanning_a_large_table_is_refused_and_a_rare_heavy_one_recorded(
    pytester: pytest.Pytester, pg_dsn: str
) -> None:
    root = pytester.path
    write_project(root, pg_dsn)
    (root / "app.py").write_text(APP_FULL_SCAN)
    (root / "tests" / "test_app.py").write_text(TESTS_FULL_SCAN)
    result = pytester.runpytest("--querywarden-update")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        f"querywarden: {HOT} (12,000 calls/min, 1 statement): not recorded: *",
        "      - new, and too costly to record: * at 12,000 calls/min ≈ * cores of a 16-core database (budget 0.5 cores a query)",
        "      - hot: Seq Scan on items (* buffers, * rows)",
    ])
    assert not (root / "baselines" / "tests_test_app.py_test_owner_items.json").exists()
    assert (root / "baselines" / "tests_test_app.py_test_category_report.json").exists()  # rare and heavy: recorded


BRANCH_SCAN = """
-- name: accounts_with_balance
-- calls-per-minute: 1000
-- params: {"b": 12345}
{allow}SELECT aid FROM pgbench_accounts WHERE abalance = %(b)s;
"""


def test_a_reviewed_seq_scan_exception_lets_a_hot_scan_be_recorded_with_its_reason(pgbench_db: str, tmp_path: Path) -> None:
    catalog, baselines = tmp_path / "scan.sql", tmp_path / "baselines"
    common = ("--catalog", str(catalog), "--baselines", str(baselines), "--dsn", pgbench_db)
    catalog.write_text(BRANCH_SCAN.replace("{allow}", ""), encoding="utf-8")
    refused = invoke("update", *common)
    assert refused.exit_code == 1 and "refused    accounts_with_balance" in refused.output, refused.output

    reason = "the nightly balance sweep reads every account; reviewed by the DBA"
    catalog.write_text(BRANCH_SCAN.replace("{allow}", f"-- allow-seq-scan: {reason}\n"), encoding="utf-8")
    recorded = invoke("update", *common)
    assert recorded.exit_code == 0, recorded.output
    assert json.loads((baselines / "accounts_with_balance.json").read_text())["query"]["allow_seq_scan"] == reason
    checked = invoke("check", *common, "--json", str(tmp_path / "r.json"))
    assert checked.exit_code == 0, checked.output
    assert verdicts(tmp_path / "r.json") == {"accounts_with_balance": ("pass", False)}


def test_an_exception_without_a_reason_is_refused(tmp_path: Path) -> None:
    catalog = tmp_path / "scan.sql"
    catalog.write_text(BRANCH_SCAN.replace("{allow}", "-- allow-seq-scan:\n"), encoding="utf-8")
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path), "--dsn", "postgresql://nowhere.invalid/x")
    assert result.exit_code == 2
    assert "`-- allow-seq-scan:` needs the reason a reviewer reads" in result.output


TESTS_ALLOWED_SCAN = TESTS_FULL_SCAN.replace(
    "@pytest.mark.hot_path(calls_per_minute=12000)",
    "@pytest.mark.hot_path(calls_per_minute=1000, allow_seq_scan='items is a lookup table read whole')", 1)
TESTS_HOT_SCAN = TESTS_FULL_SCAN.replace("@pytest.mark.hot_path(calls_per_minute=12000)", "@pytest.mark.hot_path(calls_per_minute=1000)", 1)


def test_a_marker_s_seq_scan_exception_records_the_hot_path_with_its_reason(pytester: pytest.Pytester, pg_dsn: str) -> None:
    root = pytester.path
    write_project(root, pg_dsn)
    (root / "app.py").write_text(APP_FULL_SCAN)
    (root / "tests" / "test_app.py").write_text(TESTS_HOT_SCAN)  # hot, within the cores budget, scanning
    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["      - hot: Seq Scan on items (* buffers, * rows)"])
    (root / "tests" / "test_app.py").write_text(TESTS_ALLOWED_SCAN)
    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(passed=2)
    recorded = json.loads((root / "baselines" / "tests_test_app.py_test_owner_items.json").read_text())
    assert [s["allow_seq_scan"] for s in recorded["statements"]] == ["items is a lookup table read whole"]
