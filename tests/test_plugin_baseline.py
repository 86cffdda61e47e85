"""Per-test baseline files: stable, diffable, written atomically, and loud about anything suspect."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from querywarden.baseline import PathBaseline, PathBaselineStore, parse_path, path_file_name, path_baseline_text
from querywarden.errors import BaselineError

from factories import observation, seq_plan

TEST = "tests/test_hot_paths.py::test_dashboard"


def path_baseline(test: str = TEST) -> PathBaseline:
    first = observation("#1")
    second = replace(observation("#2", plan=seq_plan(blocks=40), sql="SELECT name FROM projects WHERE id = %s"), statement_count=3)
    return PathBaseline(test, 12_000.0, (first, second))


def test_round_trip_keeps_every_compared_field(tmp_path: Path) -> None:
    store = PathBaselineStore(tmp_path)
    original = path_baseline()
    assert store.write(original)
    loaded = store.load(TEST)
    assert loaded is not None
    assert loaded.test == TEST
    assert loaded.calls_per_minute == 12_000.0
    assert loaded.statement_count == 4
    assert [s.name for s in loaded.statements] == ["#1", "#2"]
    for before, after in zip(original.statements, loaded.statements):
        assert after.plan == before.plan
        assert after.fingerprint == before.fingerprint
        assert after.environment == before.environment
        assert after.statement_count == before.statement_count
        assert after.timing.median_ms == pytest.approx(before.timing.median_ms, rel=1e-3)
        assert after.timing.samples_ms == ()


def test_file_is_sorted_versioned_with_one_environment_and_no_volatile_fields() -> None:
    text = path_baseline_text(path_baseline())
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert document["format"] == 1
    assert document["test"] == TEST
    assert document["statement_count"] == 4
    assert document["environment"] == {"block_size": "8192", "postgres_major": "15", "work_mem": "4MB"}
    assert all("environment" not in statement for statement in document["statements"])
    assert "samples_ms" not in text
    for volatile in ('"time"', "host", "created", "date"):
        assert volatile not in text


def test_a_statement_measured_in_another_environment_keeps_its_own() -> None:
    baseline = path_baseline()
    odd = replace(baseline.statements[1], environment={"postgres_major": "15", "block_size": "8192", "work_mem": "64MB"})
    text = path_baseline_text(replace(baseline, statements=(baseline.statements[0], odd)))
    assert json.loads(text)["statements"][1]["environment"]["work_mem"] == "64MB"
    assert parse_path(text, "x.json").statements[1].environment["work_mem"] == "64MB"


def test_unchanged_write_leaves_the_file_alone_and_no_temp_files(tmp_path: Path) -> None:
    store = PathBaselineStore(tmp_path)
    assert store.write(path_baseline())
    path = store.path_for(TEST)
    mtime = path.stat().st_mtime_ns
    assert not store.write(path_baseline())
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == ["tests_test_hot_paths.py_test_dashboard.json"]


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert PathBaselineStore(tmp_path).load(TEST) is None


def test_long_node_ids_get_short_unique_file_names() -> None:
    long_a = "tests/test_x.py::test_y[" + "a" * 300 + "]"
    long_b = "tests/test_x.py::test_y[" + "a" * 299 + "b]"
    assert len(path_file_name(long_a)) <= 170
    assert path_file_name(long_a) != path_file_name(long_b)
    assert path_file_name("tests/test_app.py::test_one[1-2]") == "tests_test_app.py_test_one_1-2.json"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('<<<<<<< HEAD\n{"format": 1}\n=======\n{}\n>>>>>>> branch\n', "merge-conflict markers"),
        ('{"format": 99, "test": "t"}', "test baseline format 99 is not the supported format 1"),
        ("[1, 2]", "not a querywarden test baseline"),
        ('{"format": 1, "query": {}}', "is a per-query baseline of `querywarden check`"),
        ('{"format": 1, "test": "t", "environment": {}, "calls_per_minute": 1}', "malformed test baseline (KeyError"),
        ('{"format": 1, "test": "t", "environment": {}, "calls_per_minute": 1, "statements": [1]}', "malformed test baseline"),
    ],
)
def test_defects_name_the_file_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / path_file_name("t")
    path.write_text(text)
    with pytest.raises(BaselineError) as caught:
        PathBaselineStore(tmp_path).load("t")
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
    assert "--querywarden-update" in str(caught.value) or "querywarden_baselines" in str(caught.value)


def test_a_hand_edited_statement_count_is_refused(tmp_path: Path) -> None:
    document = json.loads(path_baseline_text(path_baseline()))
    document["statement_count"] = 1
    with pytest.raises(BaselineError, match="statement_count 1 does not match its statements \\(4\\)"):
        parse_path(json.dumps(document), "edited.json")


def test_a_file_holding_another_tests_baseline_is_refused(tmp_path: Path) -> None:
    store = PathBaselineStore(tmp_path)
    store.write(path_baseline("tests/test_a.py::test_one"))
    store.path_for("tests/test_a.py::test_one").rename(store.path_for("tests/test_a.py::test_two"))
    with pytest.raises(BaselineError, match="holds the baseline of 'tests/test_a.py::test_one', not 'tests/test_a.py::test_two'"):
        store.load("tests/test_a.py::test_two")


def test_listing_reports_each_file_with_its_test_or_its_defect(tmp_path: Path) -> None:
    store = PathBaselineStore(tmp_path)
    store.write(path_baseline())
    (tmp_path / "broken.json").write_text("{")
    found = store.tests()
    assert found[store.path_for(TEST)] == TEST
    assert isinstance(found[tmp_path / "broken.json"], BaselineError)
    assert PathBaselineStore(tmp_path / "absent").tests() == {}
