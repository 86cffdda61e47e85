"""Results files: the JSON schema, an exact round trip, and one-line errors that name the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from report_samples import hostile_result, sample_run

from querywarden.errors import QuerywardenError
from querywarden.query import SourceLocation
from querywarden.reports.results import (
    ResultsError,
    read_results,
    run_from_dict,
    run_to_dict,
    write_results,
)
from querywarden.verdict import RunResult, Verdict


def test_schema_top_level_and_summary() -> None:
    data = run_to_dict(sample_run())
    assert sorted(data) == ["format", "queries", "summary", "verdict"]
    assert data["format"] == 1
    assert data["verdict"] == "fail"
    summary = data["summary"]
    assert summary["counts"] == {
        "pass": 1,
        "improved": 1,
        "warn": 1,
        "fail": 1,
        "new": 1,
        "missing": 1,
        "incomparable": 0,
        "error": 0,
    }
    assert summary["extra_ms_per_minute"] == pytest.approx(4_534.8 + 27.0)
    assert summary["total"] == 6
    assert summary["blocking"] == 1


def test_schema_of_one_query() -> None:
    data = run_to_dict(sample_run())
    fail = next(q for q in data["queries"] if q["verdict"] == "fail")
    assert sorted(fail) == [
        "after",
        "basis",
        "before",
        "blocking",
        "calls_per_minute",
        "extra_ms_per_minute",
        "name",
        "reasons",
        "source",
        "verdict",
    ]
    assert fail["name"] == "user_total_minutes"
    assert fail["blocking"] is True
    assert fail["source"] == {"line": 12, "path": "queries/hot.sql"}
    assert fail["reasons"][1] == "buffers 4 → 16,396 (×4,099)"
    # The baseline side keeps no samples; this run's side keeps every one.
    assert "samples_ms" not in fail["before"]["timing"]
    assert len(fail["after"]["timing"]["samples_ms"]) == 20
    assert fail["after"]["plan"]["children"][0]["node_type"] == "Seq Scan"
    assert fail["after"]["plan"]["buffers"]["shared"] == 16_396
    new = next(q for q in data["queries"] if q["verdict"] == "new")
    missing = next(q for q in data["queries"] if q["verdict"] == "missing")
    assert new["before"] is None and new["after"] is not None
    assert missing["after"] is None and missing["source"] is None


def test_round_trip_through_dict_is_exact() -> None:
    run = RunResult(sample_run().queries + (hostile_result(),))
    data = run_to_dict(run)
    again = run_from_dict(json.loads(json.dumps(data)))
    assert run_to_dict(again) == data
    assert again.verdict == run.verdict
    assert again.counts() == run.counts()
    by_name = {r.name: r for r in again.queries}
    fail = by_name["user_total_minutes"]
    assert fail.verdict is Verdict.FAIL and fail.blocking
    assert fail.source == SourceLocation("queries/hot.sql", 12)
    assert fail.after is not None and fail.before is not None
    assert fail.after.timing.samples_ms == next(r for r in run.queries if r.name == fail.name).after.timing.samples_ms  # type: ignore[union-attr]
    assert fail.after.plan == next(r for r in run.queries if r.name == fail.name).after.plan  # type: ignore[union-attr]
    assert fail.before.buffers.total == 4
    assert by_name["invoice_lines"].before is None
    assert by_name["legacy_export"].after is None


def test_file_round_trip_sorted_keys_and_newline(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "results.json"
    run = sample_run()
    write_results(run, path)
    text = path.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    document = json.loads(text)
    assert list(document) == ["format", "queries", "summary", "verdict"]
    assert list(document["queries"][0]) == sorted(document["queries"][0])
    assert text.startswith('{\n  "format": 1,\n  "queries": [\n')
    assert "→" in text  # not \u-escaped: readable in a diff
    assert run_to_dict(read_results(path)) == run_to_dict(run)
    assert list(tmp_path.joinpath("deep").iterdir()) == [path]  # no temp file left behind


def test_empty_run_round_trips(tmp_path: Path) -> None:
    write_results(RunResult(()), tmp_path / "r.json")
    run = read_results(tmp_path / "r.json")
    assert run.queries == () and run.verdict == "pass"


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "results.json"
    path.write_text(content, encoding="utf-8")
    return path


def test_missing_file_names_it_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ResultsError) as info:
        read_results(path)
    message = str(info.value)
    assert message == f"{path}: no such results file; run `querywarden check --json {path}` first, or fix the path"
    assert "\n" not in message
    assert isinstance(info.value, QuerywardenError) and info.value.exit_code == 2


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="is a directory, not a results file"):
        read_results(tmp_path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"format": 1, "queries": [', "not valid JSON (Expecting value at line 1)"),
        ("[1, 2]", "not a querywarden results file (no 'format' key)"),
        ('{"format": 7, "queries": []}', "results format 7 is not the supported format 1"),
        ('{"format": 1, "queries": {}}', "malformed results ('queries' is not a list)"),
        ('{"format": 1, "queries": [{"name": "q"}]}', "malformed query #1 (KeyError: 'blocking')"),
        ('{"format": 1, "queries": [7]}', "malformed query #1 (TypeError: entry is not an object)"),
    ],
)
def test_malformed_files_name_the_file_and_the_fix(tmp_path: Path, content: str, expected: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(ResultsError) as info:
        read_results(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "querywarden" in message.split(";", 1)[1]  # the fix names the command to run
    assert "\n" not in message


def test_bad_verdict_value_is_malformed(tmp_path: Path) -> None:
    data = run_to_dict(sample_run())
    data["queries"][0]["verdict"] = "meh"
    with pytest.raises(ResultsError, match=r"malformed query #1 \(ValueError: 'meh' is not a valid Verdict\)"):
        read_results(_write(tmp_path, json.dumps(data)))


def test_blocking_must_be_a_boolean(tmp_path: Path) -> None:
    data = run_to_dict(sample_run())
    data["queries"][3]["blocking"] = "false"
    with pytest.raises(ResultsError, match="blocking must be true or false"):
        read_results(_write(tmp_path, json.dumps(data)))


def test_hand_edited_verdict_is_refused(tmp_path: Path) -> None:
    data = run_to_dict(sample_run())
    data["verdict"] = "pass"
    with pytest.raises(ResultsError, match=r"says verdict 'pass' but its queries give 'fail' \(edited by hand\?\)"):
        read_results(_write(tmp_path, json.dumps(data)))


def test_unwritable_target_is_a_results_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ResultsError, match="cannot be written"):
        write_results(sample_run(), blocker / "results.json")


def test_the_results_carry_the_load_before_and_after(tmp_path: Path) -> None:
    import json

    from querywarden.judge import compare
    from querywarden.policy import Policy

    from factories import observation

    kept = compare("a", observation("a", median_ms=0.3, calls=20_000), observation("a", median_ms=0.3, calls=20_000), Policy())
    added = compare("b", None, observation("b", median_ms=6.0, calls=1_000), Policy())
    path = tmp_path / "r.json"
    write_results(RunResult((kept, added)), path)
    load = json.loads(path.read_text())["summary"]["load_cores"]
    assert load == {"after": pytest.approx(0.2), "before": pytest.approx(0.1)}


def test_the_run_counts_what_its_verdicts_rest_on() -> None:
    from dataclasses import replace

    from querywarden.judge import NEW_BASIS, ab_basis, baseline_basis, stored_basis

    first, *rest = sample_run().queries
    bases = [ab_basis("abc123"), ab_basis("abc123", loose=True), stored_basis("the base revision abc123 could not run it "
             "(query 'x': PostgreSQL rejected it: column \"y\" does not exist)"), NEW_BASIS, baseline_basis(True)]
    run = RunResult(tuple(replace(result, basis=basis) for result, basis in zip((first, *rest, first, first, first), bases)))
    assert run.comparisons() == {
        "same-run A/B against the base revision abc123": 2,
        "the stored baseline": 1,
        "their own cost (new)": 1,
        "same-run A/B against the baseline SQL": 1,
    }
    assert run.comparisons_text().startswith("2 on same-run A/B against the base revision abc123; 1 on the stored baseline")
    restored = run_from_dict(json.loads(json.dumps(run_to_dict(run))))
    assert [r.basis for r in restored.queries] == bases
