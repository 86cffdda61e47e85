"""The baseline store: stable human-diffable files, atomic writes, and loud failures on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from querywarden.baseline import BaselineStore, file_name, baseline_text
from querywarden.errors import BaselineError

from factories import observation, seq_plan


def test_round_trip_keeps_every_compared_field(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    original = observation(plan=seq_plan())
    assert store.write(original)
    loaded = store.load("running_timer")
    assert loaded is not None
    assert loaded.plan == original.plan
    assert loaded.fingerprint == original.fingerprint
    assert loaded.environment == original.environment
    assert loaded.timing.median_ms == pytest.approx(original.timing.median_ms, rel=1e-3)
    assert loaded.timing.samples_ms == ()


def test_file_is_sorted_versioned_and_free_of_volatile_fields(tmp_path: Path) -> None:
    text = baseline_text(observation())
    document = json.loads(text)
    assert document["format"] == 1
    assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert "samples_ms" not in text
    for volatile in ("time\"", "host", "created", "date"):
        assert volatile not in text


def test_unchanged_write_leaves_the_file_alone_and_no_temp_files(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    assert store.write(observation())
    mtime = store.path_for("running_timer").stat().st_mtime_ns
    assert not store.write(observation())
    assert store.path_for("running_timer").stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == ["running_timer.json"]


def test_missing_file_is_none(tmp_path: Path) -> None:
    assert BaselineStore(tmp_path).load("nothing") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("", "not valid JSON"),
        ('<<<<<<< HEAD\n{"format": 1}\n=======\n{}\n>>>>>>> branch\n', "merge-conflict markers"),
        ('{"format": 99, "query": {}}', "baseline format 99 is not the supported format 1"),
        ("[1, 2]", "not a querywarden baseline"),
        ('{"format": 1, "query": {"name": "running_timer"}}', "malformed baseline (KeyError"),
    ],
)
def test_bad_files_raise_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    store = BaselineStore(tmp_path)
    store.path_for("running_timer").write_text(text)
    with pytest.raises(BaselineError) as caught:
        store.load("running_timer")
    assert str(caught.value).startswith(str(store.path_for("running_timer")))
    assert message in str(caught.value)


def test_truncated_and_hand_edited_files_are_errors(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    store.write(observation())
    path = store.path_for("running_timer")
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(BaselineError, match="not valid JSON"):
        store.load("running_timer")
    path.write_text(text.replace('"shared": 4', '"shared": "four"'))
    with pytest.raises(BaselineError, match="malformed baseline"):
        store.load("running_timer")
    path.write_text(text.replace('"name": "running_timer"', '"name": "other"'))
    with pytest.raises(BaselineError, match="holds the baseline of 'other'"):
        store.load("running_timer")


def test_file_names_are_safe() -> None:
    assert file_name("tests/test_app.py::test_dash[user-1]") == "tests_test_app.py_test_dash_user-1.json"
    assert file_name("..") == "query.json"
