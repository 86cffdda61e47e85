"""Per-test baseline files: stable, diffable, written atomically, and loud about anything suspect."""

from __future__ import annotations

import copy
import errno
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from querywarden.baseline import PathBaseline, PathBaselineStore, parse_path, path_file_name, path_baseline_text
from querywarden.errors import BaselineError
from querywarden.fingerprint import identify

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


def test_two_test_ids_that_share_a_file_are_an_error_naming_both(tmp_path: Path) -> None:
    store = PathBaselineStore(tmp_path)
    first, second = "tests/test_a.py::test_x[a b]", "tests/test_a.py::test_x[a_b]"
    assert store.path_for(first) == store.path_for(second)
    store.write(path_baseline(first))
    kept = store.path_for(first).read_text()
    expected = (
        f"{store.path_for(first)}: holds the baseline of test {first!r}, and test {second!r} maps to the same file name; "
        f"rename one of the two so their file names differ (or delete the file if {first!r} is gone)"
    )
    for action in (lambda: store.load(second), lambda: store.write(path_baseline(second))):
        with pytest.raises(BaselineError) as caught:
            action()
        assert str(caught.value) == expected
    assert store.path_for(first).read_text() == kept


def test_each_statement_of_a_test_baseline_is_checked_against_its_sql(tmp_path: Path) -> None:
    document = json.loads(path_baseline_text(path_baseline()))
    legacy = copy.deepcopy(document)
    legacy["statements"][1].update(fingerprint="5c7290822c2335de", normalized_sql="SELECT\n  name\nFROM projects")
    loaded = parse_path(json.dumps(legacy), "t.json")  # sqlglot era: recomputed, so it still pairs by fingerprint
    assert loaded.statements[1].fingerprint == identify("SELECT name FROM projects WHERE id = %s").fingerprint
    document["statements"][1]["sql"] = "SELECT name FROM projects WHERE slug = %s"
    with pytest.raises(BaselineError, match=r"^t\.json: statement #2: its fingerprint does not match its SQL; .* with --querywarden-update$"):
        parse_path(json.dumps(document), "t.json")
    smuggled = observation("#2", sql="SELECT 1; DELETE FROM projects")
    text = path_baseline_text(replace(path_baseline(), statements=(observation("#1"), smuggled)))
    with pytest.raises(BaselineError, match=r"^t\.json: statement #2: its SQL is refused \(it holds 2 statements"):
        parse_path(text, "t.json")


READ_IN_A_CHILD = """
import sys
from pathlib import Path
from querywarden.baseline import PathBaselineStore
from querywarden.errors import BaselineError
store = PathBaselineStore(Path(sys.argv[1]))
print(store.tests()[store.path_for(sys.argv[2])])
try:
    store.load(sys.argv[2])
except BaselineError as exc:
    print(exc)
"""


def test_a_fifo_is_an_error_and_a_refused_write_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = PathBaselineStore(tmp_path)
    fifo = store.path_for("tests/t.py::fifo")
    os.mkfifo(fifo)
    # In a child: reading a FIFO the old way blocks for ever, which must fail this test, not hang the suite.
    child = subprocess.run([sys.executable, "-c", READ_IN_A_CHILD, str(tmp_path), "tests/t.py::fifo"],
                           capture_output=True, text=True, timeout=300)
    expected = f"{fifo}: cannot be read: it is a FIFO (named pipe), not a regular file; delete it and restore the baseline "
    assert child.stdout.splitlines() == [expected + "from git or re-run with --querywarden-update"] * 2, child.stderr
    store.write(path_baseline())
    kept = store.path_for(TEST).read_text()

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(BaselineError, match=r"cannot be written \(No space left on device\); free space"):
        store.write(replace(path_baseline(), calls_per_minute=1.0))
    monkeypatch.undo()
    assert store.path_for(TEST).read_text() == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([store.path_for(TEST).name, store.path_for("tests/t.py::fifo").name])
