"""The embedded throwaway cluster, exercised against real PostgreSQL binaries (no mocks)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from querywarden.embedded import BINDIR_ENV, EmbeddedCluster, find_bindir
from querywarden.errors import ConfigError, DatabaseError

SRC = str(Path(__file__).resolve().parents[1] / "src")


# tmpfs keeps initdb and the final rm fast when the disk is busy; the default
# base dir (the system temp dir) is exercised by the first test.
_FAST_BASE = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@pytest.fixture
def base_dir() -> Iterator[str]:
    """An empty base dir the server's OS user can traverse (pytest's tmp_path is 0700 under root)."""
    path = tempfile.mkdtemp(prefix="qw-embedded-test-", dir=_FAST_BASE)
    os.chmod(path, 0o755)
    yield path
    subprocess.run(["rm", "-rf", path], check=False)


def accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_cluster_runs_with_options_and_is_removed_on_exit() -> None:
    messages: list[str] = []
    cluster = EmbeddedCluster(
        server_options=("work_mem=7MB", "-c application_name=it's a \"qw\" $HOME run"),
        progress=messages.append,
    )
    with cluster as dsn:
        assert dsn == cluster.dsn
        assert dsn.startswith("postgresql://postgres@127.0.0.1:")
        port = cluster.port
        assert port is not None and port != 5432
        tempdir = cluster.tempdir
        assert tempdir is not None and os.path.isdir(os.path.join(tempdir, "cluster", "data"))
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT current_setting('port')").fetchone()
            assert row is not None and int(row[0]) == port != 5432
            work_mem = conn.execute("SHOW work_mem").fetchone()
            assert work_mem == ("7MB",)
            app = conn.execute("SHOW application_name").fetchone()
            assert app == ('it\'s a "qw" $HOME run',)
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
            conn.execute("INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 100) g")
            count = conn.execute("SELECT count(*) FROM t").fetchone()
            assert count == (100,)
        assert accepts_connections(port)

    assert not os.path.exists(tempdir)
    assert not accepts_connections(port)
    assert cluster.dsn is None and cluster.port is None
    assert any("ready" in m for m in messages) and any("stopping" in m for m in messages)


def test_cluster_is_removed_when_the_body_raises(base_dir: str) -> None:
    cluster = EmbeddedCluster(base_dir=base_dir)
    port: int | None = None
    with pytest.raises(RuntimeError, match="boom"):
        with cluster as dsn:
            port = cluster.port
            assert port is not None
            with psycopg.connect(dsn) as conn:
                conn.execute("SELECT 1")
            raise RuntimeError("boom")
    assert port is not None
    assert os.listdir(base_dir) == []
    assert not accepts_connections(port)


def test_failed_start_reports_the_server_log_and_cleans_up(base_dir: str) -> None:
    with pytest.raises(DatabaseError) as info:
        with EmbeddedCluster(server_options=["work_mem=banana"], base_dir=base_dir):
            pytest.fail("the server must not start with an invalid setting")
    message = str(info.value)
    assert "\n" not in message
    assert "start failed" in message
    assert 'invalid value for parameter "work_mem"' in message
    assert "--dsn" in message
    assert os.listdir(base_dir) == []


def test_empty_bindir_names_what_was_checked(base_dir: str) -> None:
    empty = tempfile.mkdtemp(dir=base_dir)
    with pytest.raises(DatabaseError) as info:
        with EmbeddedCluster(bindir=empty, base_dir=base_dir):
            pytest.fail("started without binaries")
    message = str(info.value)
    assert "\n" not in message
    assert empty in message
    assert "pg_ctl" in message and "bindir" in message
    assert "--dsn" in message
    assert os.listdir(base_dir) == [os.path.basename(empty)]


def test_empty_bindir_from_environment_names_the_variable(
    base_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BINDIR_ENV, base_dir)
    with pytest.raises(DatabaseError) as info:
        find_bindir()
    assert f"${BINDIR_ENV}" in str(info.value)
    assert base_dir in str(info.value)


def test_find_bindir_finds_the_server_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BINDIR_ENV, raising=False)
    bindir = find_bindir()
    for name in ("pg_ctl", "initdb", "postgres"):
        assert os.access(os.path.join(bindir, name), os.X_OK)
    monkeypatch.setenv(BINDIR_ENV, bindir)
    assert find_bindir() == bindir


def test_missing_os_user_is_named(base_dir: str) -> None:
    user = "qw_no_such_user_x"
    if os.geteuid() == 0:
        with pytest.raises(DatabaseError) as info:
            with EmbeddedCluster(os_user=user, base_dir=base_dir):
                pytest.fail("started as a user that does not exist")
        message = str(info.value)
        assert f"'{user}'" in message and "root" in message and "--dsn" in message
        assert "\n" not in message
    else:
        # Not root: pg_ctl runs as ourselves and os_user is not consulted.
        with EmbeddedCluster(os_user=user, base_dir=base_dir) as dsn:
            with psycopg.connect(dsn) as conn:
                conn.execute("SELECT 1")
    assert os.listdir(base_dir) == []


def test_malformed_server_option_is_rejected_before_anything_starts() -> None:
    with pytest.raises(ConfigError, match="name=value"):
        EmbeddedCluster(server_options=["work_mem"])


_CHILD = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {src!r})
    from querywarden.embedded import EmbeddedCluster
    cluster = EmbeddedCluster(base_dir={base!r})
    dsn = cluster.__enter__()  # never exited: cleanup must come from atexit / SIGTERM
    print(cluster.port, flush=True)
    if {wait!r}:
        time.sleep(60)
    """
)


def _run_child(base_dir: str, *, wait: bool) -> tuple[subprocess.Popen[str], int]:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(src=SRC, base=base_dir, wait=wait)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line.strip().isdigit(), f"child did not start a cluster: {line!r}"
    return child, int(line)


def test_sigterm_stops_the_cluster_and_removes_its_files(base_dir: str) -> None:
    child, port = _run_child(base_dir, wait=True)
    assert accepts_connections(port)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=30) == -signal.SIGTERM
    assert os.listdir(base_dir) == []
    assert not accepts_connections(port)


def test_interpreter_exit_stops_an_unexited_cluster(base_dir: str) -> None:
    child, port = _run_child(base_dir, wait=False)
    assert child.wait(timeout=30) == 0
    assert os.listdir(base_dir) == []
    assert not accepts_connections(port)
