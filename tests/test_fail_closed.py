"""Runs that cannot measure, or cannot write what they measured, end in one line and exit 2; none hangs,
leaves a half-written file, or leaves a copy of the data behind."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from conftest import fill, tmpfs
from report_samples import sample_run

from querywarden.cli import main
from querywarden.database import Server
from querywarden.measure import prepare_session
from querywarden.policy import MeasureSettings
from querywarden.reports.results import write_results
from querywarden.verdict import RunResult

CLOSED_PORT_DSN = "postgresql://postgres@127.0.0.1:1/nowhere"


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("querywarden: error: ")]


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ("statement-timeout-ms = 0", "`statement-timeout-ms` must be a positive number of milliseconds"),
        ("statement-timeout-ms = -5", "`statement-timeout-ms` must be a positive number of milliseconds"),
        ("min-samples = 0", "`min-samples` must be at least 1, not 0"),
        ("warmup = -1", "`warmup` must be 0 or more, not -1"),
        ("[tool.querywarden.settings]\nstatement_timeout = \"0\"", "may not set statement_timeout"),
        ("[tool.querywarden.settings]\nRole = \"postgres\"", "may not set Role"),
    ],
    ids=["timeout-zero", "timeout-negative", "no-samples", "negative-warmup", "pinned-timeout", "pinned-role"],
)
def test_settings_that_would_hang_or_mislead_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table: str, said: str
) -> None:
    header = "" if table.startswith("[") else "[tool.querywarden]\n"
    (tmp_path / "pyproject.toml").write_text(f"{header}{table}\n", encoding="utf-8")
    (tmp_path / "q.sql").write_text("-- name: q\nSELECT 1;\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    result = invoke("check", "--catalog", "q.sql", "--baselines", "b", "--dsn", CLOSED_PORT_DSN)
    assert result.exit_code == 2, result.output
    assert len(error_lines(result)) == 1 and said in error_lines(result)[0], result.output
    assert "Traceback" not in result.output


@pytest.fixture
def results_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    write_results(RunResult(sample_run().queries), path)
    return path


def test_an_unwritable_job_summary_is_one_line(tmp_path: Path, results_file: Path) -> None:
    result = invoke("report", "--from", str(results_file), "--format", "md",
                    env={"GITHUB_STEP_SUMMARY": str(tmp_path / "no" / "such" / "summary.md")})
    assert result.exit_code == 2, result.output
    assert len(error_lines(result)) == 1 and "summary.md" in error_lines(result)[0], result.output


def test_reports_are_written_with_the_usual_mode(tmp_path: Path, results_file: Path) -> None:
    previous = os.umask(0o022)
    try:
        result = invoke("report", "--from", str(results_file), "--format", "html", "-o", str(tmp_path / "r.html"))
    finally:
        os.umask(previous)
    assert result.exit_code == 1, result.output  # the sample run blocks
    assert stat.S_IMODE((tmp_path / "r.html").stat().st_mode) == 0o644


def test_a_report_on_a_full_disk_leaves_no_empty_file(tmp_path: Path, results_file: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        fill(disk)
        result = invoke("report", "--from", str(results_file), "--format", "html", "-o", str(disk / "r.html"))
        assert result.exit_code == 2, result.output
        assert len(error_lines(result)) == 1 and "r.html" in error_lines(result)[0], result.output
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_sigterm_exits_2_and_leaves_no_clone_or_role(example_db: str, server: Server, tmp_path: Path) -> None:
    marker = f"sleepy_{uuid.uuid4().hex[:10]}"
    (tmp_path / "slow.sql").write_text(f"-- name: sleepy\nSELECT pg_sleep(20) AS {marker};\n", encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "querywarden.cli", "check", "--catalog", str(tmp_path / "slow.sql"),
         "--baselines", str(tmp_path / "b"), "--dsn", example_db],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    found = None
    with psycopg.connect(server.dsn_for("postgres"), autocommit=True) as watcher:
        for _ in range(300):
            found = watcher.execute(
                "SELECT datname, usename FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
            if found is not None:
                break
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert found is not None, stderr
        clone, role = found
        assert process.returncode == 2, stderr
        assert "querywarden: error: terminated (SIGTERM); the run did not complete" in stderr
        assert str(clone).startswith("qw_run_") and str(role).startswith("qw_measure_")
        assert watcher.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (clone,)).fetchone() == (0,)
        assert watcher.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)).fetchone() == (0,)


def test_timestamps_mean_the_same_instant_on_every_runner(scratch_db: str) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET TimeZone = 'America/New_York'")
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        assert conn.execute("SHOW TimeZone").fetchone() == ("America/New_York",)
        prepare_session(conn, MeasureSettings())
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)
        assert conn.execute("SELECT '2026-01-01 12:00'::timestamptz::text").fetchone() == ("2026-01-01 12:00:00+00",)


@pytest.mark.parametrize("new_name", ["_totals", "totals.", "totals_"])
def test_a_new_query_sharing_a_baseline_file_is_refused_before_measuring(tmp_path: Path, new_name: str) -> None:
    """`_totals` must not be judged against `totals`'s baseline, nor pass as new beside it."""
    from factories import observation

    from querywarden.baseline import BaselineStore

    store = BaselineStore(tmp_path / "b")
    store.write(observation("totals", sql="SELECT 1"))
    (tmp_path / "q.sql").write_text(f"-- name: {new_name}\nSELECT 1;\n", encoding="utf-8")
    result = invoke("check", "--catalog", str(tmp_path / "q.sql"), "--baselines", str(store.directory), "--dsn", CLOSED_PORT_DSN)
    assert result.exit_code == 2, result.output
    assert len(error_lines(result)) == 1, result.output
    assert f"holds the baseline of query 'totals', and query '{new_name}' maps to the same file name" in error_lines(result)[0]
