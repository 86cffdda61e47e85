"""`querywarden report`: exit codes, merging shards, --no-fail, output files and the job summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_samples import hostile_result, sample_run

from querywarden.cli.report import report
from querywarden.reports.results import write_results
from querywarden.verdict import RunResult, Verdict


@pytest.fixture
def shards(tmp_path: Path) -> tuple[Path, Path]:
    """Two shards of one run: one holds only passing-side results, the other the blocking fail."""
    queries = sample_run().queries
    fail = [q for q in queries if q.verdict is Verdict.FAIL]
    rest = [q for q in queries if q.verdict is not Verdict.FAIL]
    clean, blocking = tmp_path / "shard-1.json", tmp_path / "shard-2.json"
    write_results(RunResult(tuple(rest)), clean)
    write_results(RunResult(tuple(fail)), blocking)
    return clean, blocking


def invoke(args: list[str], summary: Path | None = None) -> tuple[int, str, str]:
    runner = CliRunner()
    env = {"GITHUB_STEP_SUMMARY": str(summary) if summary else None, "GITHUB_WORKSPACE": None}
    result = runner.invoke(report, args, env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_clean_run_exits_0(shards: tuple[Path, Path]) -> None:
    code, out, _ = invoke(["--from", str(shards[0]), "--format", "md"])
    assert code == 0
    assert out.splitlines()[1] == "## ✅ querywarden: passed: 5 queries guarded, none blocks the merge"


def test_blocking_run_exits_1(shards: tuple[Path, Path]) -> None:
    code, out, _ = invoke(["--from", str(shards[1]), "--format", "md"])
    assert code == 1
    assert out.splitlines()[1] == "## ❌ querywarden: merge blocked: 1 of 1 query blocks"


def test_shards_merge_into_one_report_and_one_verdict(shards: tuple[Path, Path]) -> None:
    code, out, _ = invoke(["--from", str(shards[0]), "--from", str(shards[1]), "--format", "md"])
    assert code == 1
    assert out.splitlines()[1] == "## ❌ querywarden: merge blocked: 1 of 6 queries blocks"
    assert "1 fail · 1 missing · 1 warn · 1 new · 1 improved · 1 pass" in out
    code, out, _ = invoke(["--from", str(shards[0]), "--from", str(shards[1]), "--format", "json"])
    merged = json.loads(out)
    assert code == 1
    assert merged["verdict"] == "fail"
    assert sorted(q["name"] for q in merged["queries"]) == sorted(q.name for q in sample_run().queries)


def test_no_fail_turns_a_block_into_exit_0(shards: tuple[Path, Path]) -> None:
    code, out, _ = invoke(["--from", str(shards[1]), "--format", "github", "--no-fail"])
    assert code == 0
    assert out.startswith("::error file=queries/hot.sql,line=12,")


@pytest.mark.parametrize("fmt", ["md", "html", "json", "github"])
def test_every_format_renders(shards: tuple[Path, Path], fmt: str) -> None:
    code, out, _ = invoke(["--from", str(shards[0]), "--from", str(shards[1]), "--format", fmt])
    assert code == 1
    assert ("user&#95;total&#95;minutes" if fmt == "md" else "user_total_minutes") in out


def test_output_file_and_a_note_on_stderr(shards: tuple[Path, Path], tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.html"
    code, out, err = invoke(["--from", str(shards[1]), "--format", "html", "--output", str(target)])
    assert code == 1
    assert out == ""
    assert err == f"querywarden: wrote {target} (1 query, merge blocked)\n"
    assert target.read_text(encoding="utf-8").startswith("<!doctype html>")


def test_missing_file_exits_2_with_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "results.json"
    code, out, err = invoke(["--from", str(missing)])
    assert code == 2
    assert out == ""
    assert err == (
        f"querywarden: error: {missing}: no such results file; run `querywarden check --json {missing}` first, or fix the path\n"
    )


def test_corrupt_shard_exits_2_even_with_no_fail(shards: tuple[Path, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": 1, "queries": [', encoding="utf-8")
    code, _, err = invoke(["--from", str(shards[0]), "--from", str(broken), "--no-fail"])
    assert code == 2
    assert err.startswith(f"querywarden: error: {broken}: not valid JSON")


def test_missing_from_and_bad_format_are_usage_errors(shards: tuple[Path, Path]) -> None:
    code, _, err = invoke(["--format", "md"])
    assert code == 2 and "Missing option '--from'" in err
    code, _, err = invoke(["--from", str(shards[0]), "--format", "pdf"])
    assert code == 2 and "'pdf' is not one of" in err


def test_step_summary_is_appended_for_markdown(shards: tuple[Path, Path], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n", encoding="utf-8")
    code, out, _ = invoke(["--from", str(shards[1]), "--format", "md"], summary=summary)
    assert code == 1
    assert summary.read_text(encoding="utf-8") == "# earlier step\n" + out
    # Appended, not replaced, on a second call.
    invoke(["--from", str(shards[0]), "--format", "md"], summary=summary)
    assert summary.read_text(encoding="utf-8").count("<!-- querywarden-report -->") == 2


def test_step_summary_untouched_for_other_formats(shards: tuple[Path, Path], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    invoke(["--from", str(shards[1]), "--format", "html"], summary=summary)
    invoke(["--from", str(shards[1]), "--format", "github"], summary=summary)
    assert not summary.exists()


def test_no_step_summary_when_the_variable_is_unset(
    shards: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, _ = invoke(["--from", str(shards[1]), "--format", "md"])
    assert code == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_hostile_results_file_renders_safely(tmp_path: Path) -> None:
    path = tmp_path / "evil.json"
    write_results(RunResult((hostile_result(),)), path)
    code, out, _ = invoke(["--from", str(path), "--format", "md"])
    assert code == 1
    table_row = next(line for line in out.splitlines() if line.startswith("| ❌"))
    assert table_row.count("|") == 8


def test_help_describes_exit_codes() -> None:
    result = CliRunner().invoke(report, ["--help"])
    assert result.exit_code == 0
    assert "0 when no result blocks" in result.output and "--no-fail" in result.output


@pytest.mark.parametrize("extra", [[], ["--no-fail"], ["--format", "json"], ["--format", "github"]])
def test_results_that_hold_no_query_give_no_verdict(tmp_path: Path, extra: list[str]) -> None:
    """A run that measured nothing must not read as a pass, not even in rollout mode."""
    empty = tmp_path / "empty.json"
    write_results(RunResult(()), empty)
    summary = tmp_path / "summary.md"
    code, out, err = invoke(["--from", str(empty), *extra], summary=summary)
    assert code == 2
    assert out == ""
    assert err == (
        f"querywarden: error: {empty}: the results hold no queries, so there is no verdict; "
        "check that the run that wrote it measured its catalog or guarded tests\n"
    )
    assert not summary.exists()


def test_shards_that_all_hold_no_query_give_no_verdict(tmp_path: Path) -> None:
    first, second = tmp_path / "shard-1.json", tmp_path / "shard-2.json"
    for path in (first, second):
        write_results(RunResult(()), path)
    code, _, err = invoke(["--from", str(first), "--from", str(second)])
    assert code == 2
    assert err.startswith(f"querywarden: error: {first}, {second}: the results hold no queries")
    assert err.count("\n") == 1


def test_one_empty_shard_among_others_is_merged(shards: tuple[Path, Path], tmp_path: Path) -> None:
    """A matrix job whose tests guard no query writes empty results; the other shards still give the verdict."""
    empty = tmp_path / "empty.json"
    write_results(RunResult(()), empty)
    code, out, _ = invoke(["--from", str(empty), "--from", str(shards[0]), "--format", "md"])
    assert code == 0
    assert out.splitlines()[1] == "## ✅ querywarden: passed: 5 queries guarded, none blocks the merge"
