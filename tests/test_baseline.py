"""The baseline store: stable human-diffable files, atomic writes, and loud failures on bad files."""

from __future__ import annotations

import errno
import json
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from querywarden.baseline import MAX_FILE_BYTES, BaselineStore, baseline_text, file_name
from querywarden.cli import main
from querywarden.errors import BaselineError
from querywarden.fingerprint import identify
from querywarden.judge import compare
from querywarden.policy import Policy
from querywarden.verdict import Verdict

from conftest import fill, tmpfs
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


# --- A baseline's fingerprint and SQL are untrusted input ------------------------------------------

SQLGLOT_ERA = {  # how running_timer.json was committed before fingerprints had versions
    "fingerprint": "182ce9e95029182c",
    "normalized_sql": "SELECT\n  id\nFROM time_entries\nWHERE\n  user_id = %s",
}


def edited(store: BaselineStore, name: str = "running_timer", **fields: Any) -> Path:
    """Write a baseline, then set fields of its query by hand, as a pull request could."""
    store.write(observation(name))
    path = store.path_for(name)
    document = json.loads(path.read_text())
    document["query"].update(fields)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return path


def test_a_sqlglot_era_fingerprint_is_recomputed_from_the_sql_and_the_next_write_migrates_it(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    path = edited(store, **SQLGLOT_ERA)
    legacy = path.read_text()
    fresh = observation()
    for loaded in (store.load("running_timer"), store.load_all()["running_timer"]):
        assert loaded is not None
        assert (loaded.fingerprint, loaded.normalized_sql) == (fresh.fingerprint, fresh.normalized_sql)
        assert compare("running_timer", loaded, fresh, Policy()).verdict == Verdict.PASS  # the same query, not "SQL changed"
    assert path.read_text() == legacy  # reading never rewrites
    assert store.write(fresh)
    assert json.loads(path.read_text())["query"]["fingerprint"] == identify(fresh.sql).fingerprint


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"sql": "SELECT id FROM time_entries WHERE project_id = %(p)s"}, "its fingerprint does not match its SQL"),
        ({"normalized_sql": "select 1"}, "its normalized_sql does not match its SQL"),
        ({"fingerprint": "v1:0000000000000"}, "its fingerprint does not match its SQL"),
        ({"fingerprint": "deadbeef"}, "its fingerprint 'deadbeef' is not one querywarden writes"),
        ({"fingerprint": "v2:0000000000000"}, "its fingerprint is of version 2, and this querywarden computes version 1"),
    ],
    ids=["sql-edited", "normalized-edited", "fingerprint-edited", "not-a-fingerprint", "newer-version"],
)
def test_a_fingerprint_that_does_not_match_its_sql_is_corrupt(tmp_path: Path, fields: dict[str, str], message: str) -> None:
    store = BaselineStore(tmp_path)
    path = edited(store, **fields)
    for load in (lambda: store.load("running_timer"), store.load_all):
        with pytest.raises(BaselineError) as caught:
            load()
        assert str(caught.value).startswith(f"{path}: {message}"), caught.value
        assert "restore it from git or re-run `querywarden update`" in str(caught.value) or "use the querywarden" in str(caught.value)


REFUSED_SQL = [
    ("SELECT 1; DELETE FROM time_entries", "it holds 2 statements"),
    ("SELECT E'\\''; COMMIT; DELETE FROM time_entries; SELECT ''", "it holds 4 statements"),
    ("SELECT dblink_exec('dbname=app', 'DELETE FROM time_entries')", "it calls dblink_exec()"),
    ("SELECT * FROM dblink('dbname=app', 'DELETE FROM t RETURNING 1') AS t(x int)", "it calls dblink()"),
    ("DROP TABLE time_entries", "DROP statements cannot be measured"),
]


@pytest.mark.parametrize(("sql", "why"), REFUSED_SQL, ids=["two", "e-string", "dblink-exec", "dblink", "ddl"])
def test_a_baseline_whose_sql_querywarden_refuses_is_corrupt(tmp_path: Path, sql: str, why: str) -> None:
    """A same-run replay executes the baseline's SQL: only what querywarden would measure itself may be there."""
    store = BaselineStore(tmp_path)
    path = store.path_for("running_timer")
    path.write_text(baseline_text(observation(sql=sql)))  # fingerprint and SQL agree: the SQL alone is the defect
    for load in (lambda: store.load("running_timer"), store.load_all):
        with pytest.raises(BaselineError) as caught:
            load()
        assert str(caught.value).startswith(f"{path}: its SQL is refused ({why}"), caught.value


def test_check_stops_at_a_hostile_baseline_naming_it_and_leaves_the_data_alone(
    scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE keep AS SELECT g AS id FROM generate_series(1, 50) g")
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: totals\nSELECT count(*) FROM keep;\n")
    store = BaselineStore(tmp_path / "baselines")
    store.directory.mkdir()
    path = store.path_for("totals")
    path.write_text(baseline_text(observation("totals", sql="SELECT E'\\''; COMMIT; DELETE FROM keep; SELECT ''")))
    result = CliRunner().invoke(main, ["check", "--catalog", str(catalog), "--baselines", str(store.directory), "--dsn", scratch_db])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(f"querywarden: error: {path}: its SQL is refused (it holds 4 statements"), result.output
    assert "Traceback" not in result.output
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT count(*) FROM keep").fetchone() == (50,)


# --- Only regular files of bounded size are read ---------------------------------------------------

CLOSED_PORT_DSN = "postgresql://postgres@127.0.0.1:1/nowhere"


def cli_in_a_child(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in a child process with its address space capped at 2 GiB.

    Reading a FIFO blocks and reading /dev/zero never ends: a regression must fail this test (the
    child dies or times out), not hang the suite or eat the machine's memory. The timeout is that
    guard, never what a test asserts.
    """

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-c", "from querywarden.cli import main; main()", *args],
        capture_output=True, text=True, timeout=300, preexec_fn=cap_memory,
    )


def _fifo(path: Path, tmp_path: Path) -> None:
    os.mkfifo(path)


def _link_to_dev_zero(path: Path, tmp_path: Path) -> None:
    path.symlink_to("/dev/zero")


def _link_to_a_good_baseline(path: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.json").write_text(baseline_text(observation()))
    path.symlink_to(tmp_path / "elsewhere.json")


def _device(path: Path, tmp_path: Path) -> None:
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's numbers (the suite runs as root)


def _too_big(path: Path, tmp_path: Path) -> None:
    path.write_text(baseline_text(observation()) + " " * MAX_FILE_BYTES)  # valid JSON, over the cap


NOT_REGULAR = {
    "fifo": (_fifo, "cannot be read: it is a FIFO (named pipe), not a regular file; delete it and restore"),
    "link-to-dev-zero": (_link_to_dev_zero, "cannot be read: it is a symbolic link, and baselines are read only from regular files"),
    "link-to-a-good-baseline": (_link_to_a_good_baseline, "cannot be read: it is a symbolic link"),
    "device": (_device, "cannot be read: it is a character device, not a regular file"),
    "too-big": (_too_big, "cannot be read: it is larger than 4 MiB, the most a baseline file may hold"),
}


@pytest.mark.parametrize("kind", list(NOT_REGULAR))
def test_a_fifo_device_link_or_huge_file_is_one_line_exit_2(tmp_path: Path, kind: str) -> None:
    make, message = NOT_REGULAR[kind]
    directory = tmp_path / "baselines"
    directory.mkdir()
    path = directory / "running_timer.json"
    make(path, tmp_path)
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: running_timer\nSELECT 1;\n")
    result = cli_in_a_child("check", "--catalog", str(catalog), "--baselines", str(directory), "--dsn", CLOSED_PORT_DSN)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"querywarden: error: {path}: {message}"), result.stderr
    with pytest.raises(BaselineError, match="cannot be read: it is"):  # the store itself, by name too
        BaselineStore(directory).load("running_timer")


def test_a_file_at_the_cap_is_still_read(tmp_path: Path) -> None:
    text = baseline_text(observation())
    store = BaselineStore(tmp_path)
    store.path_for("running_timer").write_text(text + " " * (MAX_FILE_BYTES - len(text.encode())))
    assert store.load("running_timer") is not None


def test_a_linked_baselines_directory_is_fine(tmp_path: Path) -> None:
    """Only the files must be regular: a checkout may link the directory itself elsewhere."""
    BaselineStore(tmp_path / "real").write(observation())
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    assert list(BaselineStore(tmp_path / "linked").load_all()) == ["running_timer"]


# --- Two names, one file ---------------------------------------------------------------------------


@pytest.mark.parametrize("other", ["_totals", "totals.", "totals_", "totals/"])
def test_two_query_names_that_share_a_file_are_an_error_naming_both(tmp_path: Path, other: str) -> None:
    """`_totals` used to be compared with the baseline of `totals`, and pass."""
    store = BaselineStore(tmp_path)
    store.write(observation("totals"))
    path = store.path_for("totals")
    assert store.path_for(other) == path
    kept = path.read_text()
    expected = (
        f"{path}: holds the baseline of query 'totals', and query {other!r} maps to the same file name; "
        "rename one of the two so their file names differ (or delete the file if 'totals' is gone)"
    )
    for action in (lambda: store.load(other), lambda: store.write(observation(other)), lambda: store.remove([other])):
        with pytest.raises(BaselineError) as caught:
            action()
        assert str(caught.value) == expected
    assert path.read_text() == kept
    assert store.load("totals") is not None


# --- Writes: whole or not at all, with the mode a user's files have, errors in one line -----------


def test_a_written_baseline_has_the_mode_the_umask_gives(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path)
    previous = os.umask(0o022)
    try:
        assert store.write(observation())
        path = store.path_for("running_timer")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o600)  # as the tempfile-based writer used to leave it
        os.umask(0o002)
        assert store.write(observation(median_ms=9.0, plan=seq_plan()))
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(previous)


def test_a_file_where_the_baselines_directory_should_be_is_one_line(tmp_path: Path) -> None:
    directory = tmp_path / "baselines"
    directory.write_text("not a directory")
    store = BaselineStore(directory)
    expected = (f"{directory}: is not a directory; baselines are a directory of .json files: "
                "move the file away or point the baselines setting at a directory")
    for action in (store.load_all, lambda: store.load("running_timer"), lambda: store.write(observation())):
        with pytest.raises(BaselineError) as caught:
            action()
        assert str(caught.value) == expected
    assert directory.read_text() == "not a directory"


def _fail_with(code: int) -> Any:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize(
    ("where", "code", "fix"),
    [
        ("replace", errno.ENOSPC, "(No space left on device); free space on the file system of {dir}"),
        ("fsync", errno.EDQUOT, "(Disk quota exceeded); free space on the file system of {dir} (or raise the quota)"),
        ("open", errno.EROFS, "(Read-only file system); {dir} is on a read-only file system: point the baselines setting"),
        ("open", errno.EACCES, "(Permission denied); make {dir} writable for this user"),
        ("write", errno.ENOSPC, "(No space left on device); free space"),
    ],
)
def test_a_refused_write_is_one_line_and_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str, code: int, fix: str
) -> None:
    store = BaselineStore(tmp_path)
    store.write(observation())
    path = store.path_for("running_timer")
    kept = path.read_text()
    real_open, real_write = os.open, os.write
    if where == "open":
        monkeypatch.setattr(os, "open", lambda file, flags, *a: _fail_with(code)() if flags & os.O_CREAT else real_open(file, flags, *a))
    elif where == "write":
        def half_then_full(handle: int, data: Any) -> int:
            if len(data) > 100:
                return real_write(handle, bytes(data[: len(data) // 2]))  # a short write: the loop comes back
            raise OSError(code, os.strerror(code))
        monkeypatch.setattr(os, "write", half_then_full)
    else:
        monkeypatch.setattr(os, where, _fail_with(code))
    with pytest.raises(BaselineError) as caught:
        store.write(observation(median_ms=9.0, plan=seq_plan()))
    monkeypatch.undo()
    assert str(caught.value).startswith(f"{path}: cannot be written {fix.format(dir=tmp_path)}"), caught.value
    assert path.read_text() == kept
    assert [p.name for p in tmp_path.iterdir()] == ["running_timer.json"]  # no temp file left


def test_a_full_disk_leaves_the_old_baseline_whole_and_no_temp_file(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        store = BaselineStore(disk / "baselines")
        store.write(observation())
        kept = store.path_for("running_timer").read_text()
        fill(disk)
        with pytest.raises(BaselineError, match=r"cannot be written \(No space left on device\); free space"):
            store.write(observation(median_ms=9.0, plan=seq_plan()))
        assert store.path_for("running_timer").read_text() == kept
        assert sorted(p.name for p in store.directory.iterdir()) == ["running_timer.json"]


def test_a_read_only_file_system_is_one_line_and_check_still_reads(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "disk") as disk:
        store = BaselineStore(disk / "baselines")
        store.write(observation())
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        assert list(store.load_all()) == ["running_timer"]
        with pytest.raises(BaselineError) as caught:
            store.write(observation(median_ms=9.0, plan=seq_plan()))
        assert str(caught.value) == (
            f"{store.path_for('running_timer')}: cannot be written (Read-only file system); {store.directory} is on a "
            "read-only file system: point the baselines setting at a writable directory"
        )


def test_update_on_a_full_disk_exits_2_in_one_line(scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: one\nSELECT 1;\n")
    with tmpfs(tmp_path / "disk") as disk:
        (disk / "baselines").mkdir()
        fill(disk)
        result = CliRunner().invoke(main, ["update", "--catalog", str(catalog), "--baselines", str(disk / "baselines"), "--dsn", scratch_db])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
        assert result.stderr.splitlines()[-1].startswith(
            f"querywarden: error: {disk / 'baselines' / 'one.json'}: cannot be written (No space left on device); free space"
        ), result.output
        assert list((disk / "baselines").iterdir()) == []
