"""The CLI end to end on the time-tracker example and a real PostgreSQL.

update → check passes → index dropped blocks → benign rewrite passes → rare query slower warns →
DML leaves no trace → each bad input exits 2 with its message.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from querywarden.catalog import load_catalogs
from querywarden.cli import main
from querywarden.query import GuardedQuery

from conftest import EXAMPLE

CATALOG = EXAMPLE / "queries.sql"
CHANGES = EXAMPLE / "changes"
SEED_ARGS = ["--schema", str(EXAMPLE / "schema.sql"), "--seed", str(EXAMPLE / "seed.sql"), "--scale", "0.1"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no pyproject.toml supplies a seed or catalog: each test says what it measures."""
    monkeypatch.chdir(tmp_path)


def write_catalog(path: Path, queries: Sequence[GuardedQuery]) -> Path:
    """A catalog file holding `queries`, in the documented format."""
    blocks = []
    for query in queries:
        lines = [f"-- name: {query.name}", f"-- calls-per-minute: {query.calls_per_minute:g}"]
        if query.budget_ms is not None:
            lines.append(f"-- budget-ms: {query.budget_ms:g}")
        if query.params is not None:
            lines.append(f"-- params: {json.dumps(query.params)}")
        blocks.append("\n".join(lines) + "\n" + query.sql + ";\n")
    path.write_text("\n".join(blocks))
    return path


def with_change(tmp_path: Path, change: str) -> Path:
    """The example catalog with the queries of changes/<change>.sql swapped in (same names)."""
    replacements = {q.name: q for q in load_catalogs([CHANGES / change])}
    queries = [replacements.get(q.name, q) for q in load_catalogs([CATALOG])]
    return write_catalog(tmp_path / f"catalog-{change}", queries)


def verdicts(results_file: Path) -> dict[str, str]:
    document = json.loads(results_file.read_text())
    return {q["name"]: q["verdict"] for q in document["queries"]}


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory, pg_dsn: str, example_template: str) -> Path:
    """Baselines of the example catalog, recorded once by `querywarden update` on the seeded template."""
    directory = tmp_path_factory.mktemp("baselines")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        result = invoke("update", "--catalog", str(CATALOG), "--baselines", str(directory), "--dsn", pg_dsn, *SEED_ARGS)
    assert result.exit_code == 0, result.output + result.stderr
    assert sorted(p.stem for p in directory.glob("*.json")) == sorted(q.name for q in load_catalogs([CATALOG]))
    return directory


def check(baselines: Path, dsn: str, catalog: Path, tmp_path: Path, *extra: str) -> tuple[Result, dict[str, str]]:
    results = tmp_path / "results.json"
    result = invoke("check", "--catalog", str(catalog), "--baselines", str(baselines), "--dsn", dsn,
                    "--json", str(results), *extra)
    assert result.exit_code in (0, 1), result.output + result.stderr
    return result, verdicts(results)


def test_unchanged_example_passes_and_update_rewrites_nothing(baselines: Path, pg_dsn: str, tmp_path: Path) -> None:
    before = {p.name: p.read_text() for p in baselines.glob("*.json")}
    result, found = check(baselines, pg_dsn, CATALOG, tmp_path, *SEED_ARGS)
    assert result.exit_code == 0, result.output
    assert "querywarden: passed: 9 queries" in result.output
    # Same plans and the same work, exactly. Timing on a shared machine may still drift far enough for
    # a non-blocking `warn` (by design: stored timing alone never blocks below ×2); nothing else may.
    document = json.loads((tmp_path / "results.json").read_text())
    recorded = {p.stem: json.loads(p.read_text())["query"] for p in baselines.glob("*.json")}
    for query in document["queries"]:
        assert query["after"]["plan"] == recorded[query["name"]]["plan"], query["name"]
        assert query["verdict"] == "pass" or (
            query["verdict"] == "warn" and query["reasons"][0].startswith("median ")
        ), (query["name"], query["verdict"], query["reasons"])
    again = invoke("update", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", pg_dsn, *SEED_ARGS)
    assert again.exit_code == 0
    assert {p.name: p.read_text() for p in baselines.glob("*.json")} == before
    assert again.output.count("unchanged") == 9


def test_migration_dropping_the_index_blocks_the_hot_query(baselines: Path, pg_dsn: str, tmp_path: Path) -> None:
    migrated = ["--schema", str(EXAMPLE / "schema.sql"), "--schema", str(CHANGES / "hot_query_dropped_index.sql"),
                "--seed", str(EXAMPLE / "seed.sql"), "--scale", "0.1"]
    result, found = check(baselines, pg_dsn, CATALOG, tmp_path, *migrated)
    assert result.exit_code == 1, result.output
    assert found["running_timer"] == "fail"
    assert "Index Scan using time_entries_running_timer_idx on time_entries became" in result.output
    assert "hot: 20,000 calls/min" in result.output
    assert "querywarden: BLOCKED" in result.output


def test_bad_change_blocks_and_benign_rewrite_passes(baselines: Path, pg_dsn: str, tmp_path: Path) -> None:
    result, found = check(baselines, pg_dsn, with_change(tmp_path, "bad_change.sql"), tmp_path, *SEED_ARGS)
    assert result.exit_code == 1 and found["running_timer"] == "fail", result.output
    result, found = check(baselines, pg_dsn, with_change(tmp_path, "benign_rewrite.sql"), tmp_path, *SEED_ARGS)
    assert result.exit_code == 0, result.output
    assert found["recent_entries"] == "pass"


def test_rare_query_slower_only_warns(baselines: Path, pg_dsn: str, tmp_path: Path) -> None:
    result, found = check(baselines, pg_dsn, with_change(tmp_path, "rare_slower.sql"), tmp_path, *SEED_ARGS)
    assert result.exit_code == 0, result.output
    assert found["monthly_workspace_report"] == "warn"
    assert "rare: 2 calls/min" in result.output


def _state(dsn: str) -> tuple[object, ...]:
    with psycopg.connect(dsn) as conn:
        return tuple(
            conn.execute(query).fetchone()
            for query in (
                "SELECT count(*), max(id), sum(coalesce(duration_s, 0)) FROM time_entries",
                "SELECT count(*) FROM time_entries WHERE stopped_at IS NULL",
                "SELECT last_value, is_called FROM time_entries_id_seq",
                "SELECT pg_relation_size('time_entries'), pg_indexes_size('time_entries')",
            )
        )


def test_dml_is_measured_without_leaving_a_trace(example_db: str, tmp_path: Path) -> None:
    """Measured in place (no seed): reads in READ ONLY transactions, writes on throwaway clones."""
    baselines = tmp_path / "in-place"
    before = _state(example_db)
    recorded = invoke("update", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", example_db)
    assert recorded.exit_code == 0, recorded.output
    assert _state(example_db) == before
    recorded_blocks = {
        path.stem: json.loads(path.read_text())["query"]["plan"]["buffers"] for path in baselines.glob("*.json")
    }
    for _ in range(2):
        result, found = check(baselines, example_db, CATALOG, tmp_path)
        assert _state(example_db) == before
        # the writes saw the same data and did the same work every time: nothing carried over
        assert blocks_of(tmp_path / "results.json") == recorded_blocks, result.output
        assert not any(v in ("fail", "incomparable", "new") for v in found.values()), result.output


def blocks_of(results_file: Path) -> dict[str, object]:
    document = json.loads(results_file.read_text())
    return {q["name"]: q["after"]["plan"]["buffers"] for q in document["queries"]}


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        ("-- name: broken\nSELECT FROM WHERE;\n", "query 'broken' ({cat}:2): PostgreSQL rejected it: syntax error"),
        ("-- name: nocol\nSELECT nope FROM users;\n", "query 'nocol' ({cat}:2): PostgreSQL rejected it: column \"nope\" does not exist"),
        ("-- name: p\nSELECT id FROM users WHERE id = %(id)s;\n", "{cat}:1: query 'p': uses %(id)s but has no `-- params:` line"),
        ("-- name: ddl\nDROP TABLE users;\n", "query 'ddl' ({cat}:2): refused: DROP statements cannot be measured"),
        ("-- name: k\n-- calls-per-minut: 3\nSELECT 1;\n", "{cat}:2: query 'k': unknown metadata key 'calls-per-minut'"),
    ],
)
def test_bad_catalog_exits_2_naming_the_query(example_db: str, tmp_path: Path, catalog: str, message: str) -> None:
    path = tmp_path / "bad.sql"
    path.write_text(catalog)
    result = invoke("check", "--catalog", str(path), "--baselines", str(tmp_path / "b"), "--dsn", example_db)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("querywarden: error: " + message.format(cat=path))


def test_baseline_from_another_seed_is_incomparable(baselines: Path, example_db: str, tmp_path: Path) -> None:
    result, found = check(baselines, example_db, CATALOG, tmp_path)
    assert result.exit_code == 1
    assert set(found.values()) == {"incomparable"}
    assert "refresh it with `querywarden update`" in result.output


def test_corrupt_baseline_exits_2_naming_the_file(baselines: Path, example_db: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in baselines.glob("*.json"):
        (copy / path.name).write_text(path.read_text())
    (copy / "running_timer.json").write_text('<<<<<<< HEAD\n{}\n=======\n{}\n>>>>>>> other\n')
    result = invoke("check", "--catalog", str(CATALOG), "--baselines", str(copy), "--dsn", example_db)
    assert result.exit_code == 2
    assert f"querywarden: error: {copy / 'running_timer.json'}: contains git merge-conflict markers" in result.stderr


def test_unreachable_database_exits_2_without_the_password(tmp_path: Path) -> None:
    result = invoke("check", "--catalog", str(CATALOG), "--baselines", str(tmp_path),
                    "--dsn", "postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere")
    assert result.exit_code == 2
    assert "querywarden: error: cannot connect to" in result.stderr
    assert "start the server or fix --dsn" in result.stderr
    assert "s3cret-pw" not in result.output + result.stderr




def test_runaway_query_is_a_blocking_timeout(example_db: str, tmp_path: Path) -> None:
    path = write_catalog(tmp_path / "slow.sql", [
        GuardedQuery("sleepy", "SELECT pg_sleep(5)", None, calls_per_minute=1),
    ])
    result = invoke("check", "--catalog", str(path), "--baselines", str(tmp_path / "b"), "--dsn", example_db,
                    "--statement-timeout", "0.2")
    assert result.exit_code == 1
    assert "exceeded the statement timeout of 0.2 s" in result.output


def test_ctrl_c_exits_2_not_as_a_verdict(example_db: str, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    marker = f"sleepy_{uuid.uuid4().hex[:10]}"  # tells this run's statement from another run's on a shared server
    path = write_catalog(tmp_path / "slow.sql", [GuardedQuery("sleepy", f"SELECT pg_sleep(20) AS {marker}", None, calls_per_minute=1)])
    process = subprocess.Popen(
        [sys.executable, "-m", "querywarden.cli", "check", "--catalog", str(path), "--baselines", str(tmp_path / "b"),
         "--dsn", example_db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a test run started in the background inherits SIGINT ignored, and Python keeps it so
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # wait until the statement runs (on the run's clone), then interrupt; watching from another database,
    # as a session on example_db would stop the run from cloning it
    with psycopg.connect(psycopg.conninfo.make_conninfo(example_db, dbname="postgres")) as watcher:
        for _ in range(200):
            if watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()", (f"%{marker}%",)).fetchone() != (0,):
                break
            time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2, stderr
    assert "querywarden: error: interrupted; the run did not complete" in stderr


def test_only_measures_the_named_queries_and_leaves_the_others_be(baselines: Path, pg_dsn: str, tmp_path: Path) -> None:
    # the dropped index blocks running_timer; --only another query neither measures it nor calls it missing
    migrated = ["--schema", str(EXAMPLE / "schema.sql"), "--schema", str(CHANGES / "hot_query_dropped_index.sql"),
                "--seed", str(EXAMPLE / "seed.sql"), "--scale", "0.1"]
    result, found = check(baselines, pg_dsn, CATALOG, tmp_path, *migrated, "--only", "user_by_*", "--strict")
    assert result.exit_code == 0, result.output
    assert found == {"user_by_email": "pass"}
    result, found = check(baselines, pg_dsn, CATALOG, tmp_path, *migrated, "--only", "running_timer")
    assert result.exit_code == 1 and found == {"running_timer": "fail"}


def test_only_naming_no_query_is_one_line_and_exit_2(baselines: Path, pg_dsn: str) -> None:
    result = invoke("check", "--catalog", str(CATALOG), "--baselines", str(baselines), "--dsn", pg_dsn, *SEED_ARGS,
                    "--only", "runing_timer")
    assert result.exit_code == 2
    assert "--only 'runing_timer' names no query of the catalog (it has: active_projects, " in result.output
    assert "Traceback" not in result.output


def test_update_only_prunes_nothing_it_was_not_asked_about(baselines: Path, pg_dsn: str, tmp_path: Path) -> None:
    copy = tmp_path / "baselines"
    shutil.copytree(baselines, copy)
    result = invoke("update", "--catalog", str(CATALOG), "--baselines", str(copy), "--dsn", pg_dsn, *SEED_ARGS,
                    "--only", "running_timer", "--prune")
    assert result.exit_code == 0, result.output
    assert "unchanged  running_timer" in result.output and result.output.count("unchanged") == 1
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in baselines.iterdir())
