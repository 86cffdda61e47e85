"""Migrations as a seed's schema: a Django project's, an Alembic environment's or a directory of SQL files.

A schema item may declare the application's migrations instead of a DDL file or a callable:

- `django:<settings module>` or `django:<settings module>@<project dir>` (the directory holding
  manage.py and the settings package, put on sys.path; default: the seed's directory): Django's
  `migrate`, run against the template being built;
- `alembic:<path to alembic.ini>`: `alembic upgrade head` with `sqlalchemy.url` set to the template;
- `sql-migrations:<directory>`: every `*.sql` file of the directory, in the order of their names with
  numbers compared as numbers (`2_x.sql` before `10_y.sql`; `V1__a.sql`, `0001_a.sql` alike).

Each is fingerprinted by every file it consists of (contents and names relative to the project, never
absolute paths), so a new migration that drops an index builds a new template and the guard sees it.
Django and Alembic run in a subprocess of `sys.executable`: their settings and env.py are user code, the
calling process may already have Django set up (pytest-django), and the subprocess is given the DSN of
the template being built and nothing else (no querywarden or libpq environment of the caller).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ..capture import conninfo_of
from ..database import scrub, sqlalchemy_url
from ..errors import ConfigError, DatabaseError
from .kit import heartbeat, human_seconds

Progress = Callable[[str], None]
LoadSql = Callable[[psycopg.Connection[Any], Path, Progress], int]

DJANGO = "django:"
ALEMBIC = "alembic:"
SQL_MIGRATIONS = "sql-migrations:"
PREFIXES = (DJANGO, ALEMBIC, SQL_MIGRATIONS)
# The runner's result: one line of JSON after this mark on its stdout (user code may print around it).
_MARK = "@@querywarden-migrations@@"
# What the caller's environment may carry that would lead a migration elsewhere than the template.
_CALLER_ONLY = ("QUERYWARDEN_DSN", "QUERYWARDEN_TEST_DSN", "DJANGO_SETTINGS_MODULE")


def is_migrations(item: str) -> bool:
    """Whether a schema item declares migrations (`django:`, `alembic:`, `sql-migrations:`)."""
    return item.startswith(PREFIXES)


class Migrations(Protocol):
    """One declared migration style."""

    @property
    def item(self) -> str:
        """The schema item as declared."""
        ...

    def files(self) -> list[tuple[str, Path]]:
        """Every file the schema consists of, as (name relative to the project, path), in a stable order."""
        ...

    def apply(self, conn: psycopg.Connection[Any], progress: Progress) -> int:
        """Migrate the database `conn` is connected to; returns the rows written (0 for DDL)."""
        ...


def parse(item: str, base_dir: Path, load_sql: LoadSql) -> Migrations:
    """The migrations a schema item declares, paths resolved against `base_dir`; ConfigError if malformed."""
    for prefix in PREFIXES:
        if item.startswith(prefix):
            value = item[len(prefix):].strip()
            break
    else:
        raise ConfigError(f"schema item {item!r} declares no migrations; use django:, alembic: or sql-migrations:")
    if prefix == DJANGO:
        settings, at, project = value.partition("@")
        settings = settings.strip()
        if not settings or not all(part.isidentifier() for part in settings.split(".")) or (at and not project.strip()):
            raise ConfigError(f"schema item {item!r}: name the settings module as django:<settings module> or "
                              "django:<settings module>@<project dir>, e.g. django:mysite.settings")
        return DjangoMigrations(item, settings, _resolve(base_dir, project.strip()) if at else base_dir)
    if not value:
        what = "path to alembic.ini" if prefix == ALEMBIC else "directory of .sql files"
        raise ConfigError(f"schema item {item!r}: give the {what} after {prefix!r}")
    if prefix == ALEMBIC:
        return AlembicMigrations(item, _resolve(base_dir, value))
    return SqlMigrations(item, _resolve(base_dir, value), load_sql)


def rebase(item: str, base: Path, new_base: Path) -> str:
    """A migrations item whose paths are relative to `base`, made relative to `new_base`."""
    if base == new_base:
        return item

    def moved(path: str) -> str:
        return path if Path(path).is_absolute() else os.path.relpath(base / path, new_base)

    if item.startswith(DJANGO):
        settings, at, project = item[len(DJANGO):].partition("@")
        return f"{DJANGO}{settings}@{moved(project.strip() if at else '.')}"
    prefix = ALEMBIC if item.startswith(ALEMBIC) else SQL_MIGRATIONS
    return f"{prefix}{moved(item[len(prefix):].strip())}"


def _resolve(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


# --- sql-migrations: --------------------------------------------------------------------------------

def _natural(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key of a file name with its runs of digits compared as numbers: 2_x before 10_y."""
    return tuple((0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk)
                 for chunk in re.findall(r"\d+|\D+", name))


@dataclass(frozen=True)
class SqlMigrations:
    """`sql-migrations:<dir>`: the directory's `*.sql` files in numeric name order, each loaded as a schema file."""

    item: str
    directory: Path
    load_sql: LoadSql = field(compare=False, repr=False)

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            raise ConfigError(f"schema item {self.item!r}: directory {self.directory} does not exist; "
                              "point sql-migrations: at the directory holding the migration .sql files")
        found = sorted((p for p in self.directory.iterdir() if p.suffix == ".sql" and p.is_file()),
                       key=lambda p: (_natural(p.name), p.name))
        if not found:
            raise ConfigError(f"schema item {self.item!r}: directory {self.directory} holds no .sql files; "
                              "point sql-migrations: at the directory holding the migration .sql files")
        return found

    def files(self) -> list[tuple[str, Path]]:
        return [(path.name, path) for path in self.paths()]

    def apply(self, conn: psycopg.Connection[Any], progress: Progress) -> int:
        return sum(self.load_sql(conn, path, progress) for path in self.paths())


# --- the subprocess ------------------------------------------------------------------------------

_RUNNER_COMMON = r'''
import json, os, sys
MARK = "@@querywarden-migrations@@"

def emit(**result):
    sys.stdout.write("\n" + MARK + json.dumps(result) + "\n")
    sys.stdout.flush()
    sys.exit(0)

def first_line(exc):
    for line in str(exc).strip().splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__

def fail(kind, message, migration=None):
    emit(error=kind, message=message, migration=migration)
'''

_DJANGO_RUNNER = _RUNNER_COMMON + r'''
import importlib
mode, settings_module, project = sys.argv[1:4]
sys.path.insert(0, project)
os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
try:
    import django
except ImportError:
    fail("missing", "Django is not installed in " + sys.executable + " (pip install django)")
try:
    settings_file = importlib.import_module(settings_module).__file__
except ModuleNotFoundError as exc:
    if exc.name and (settings_module == exc.name or settings_module.startswith(exc.name + ".")):
        fail("config", "settings module " + settings_module + " not found in " + project
             + "; name the directory holding it as django:" + settings_module + "@<project dir>")
    fail("config", "settings module " + settings_module + " cannot be imported: " + first_line(exc))
except Exception as exc:
    fail("config", "settings module " + settings_module + " cannot be imported: " + first_line(exc))
from django.conf import settings
if mode == "apply":
    # The template being built, and nothing else: every alias points at it, and options that would route
    # a connection elsewhere (a service, a password file) are dropped.
    given = json.loads(os.environ.pop("QUERYWARDEN_MIGRATE_DB"))
    routing = {"service", "servicefile", "passfile", "dbname", "host", "hostaddr", "port", "user", "password"}
    names = {"dbname": "NAME", "host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
    try:
        databases = settings.DATABASES
        default = databases.get("default")
        if not default:
            fail("config", "settings module " + settings_module + " has no DATABASES['default']")
    except Exception as exc:
        fail("config", "settings module " + settings_module + ": " + first_line(exc))
    if "postgresql" not in str(default.get("ENGINE", "")):
        fail("config", "DATABASES['default'] of " + settings_module + " is " + str(default.get("ENGINE"))
             + ", not django.db.backends.postgresql")
    options = {k: v for k, v in dict(default.get("OPTIONS") or {}).items() if k not in routing}
    options.update({k: v for k, v in given.items() if k not in names})
    default.update({name: str(given.get(key, "")) for key, name in names.items()})
    default["OPTIONS"] = options
    for alias in list(databases):
        if alias != "default":
            databases[alias] = dict(default)
try:
    django.setup()
except Exception as exc:
    fail("config", "Django cannot be set up with " + settings_module + ": " + first_line(exc))
if mode == "list":
    from django.db.migrations.loader import MigrationLoader
    try:
        loader = MigrationLoader(None, load=False)
        loader.load_disk()
    except Exception as exc:
        fail("config", "the migrations cannot be loaded: " + first_line(exc))
    files = []
    for (app, name), migration in sorted(loader.disk_migrations.items()):
        files.append([app + "/" + name, sys.modules[type(migration).__module__].__file__])
    files.append(["settings " + settings_module, settings_file])
    emit(files=files)
from django.core.management import call_command
from django.db.migrations import executor
current = [None]
applied = []
original = executor.MigrationExecutor.apply_migration
def apply_migration(self, state, migration, *args, **kwargs):
    current[0] = migration.app_label + "." + migration.name
    result = original(self, state, migration, *args, **kwargs)
    applied.append(current[0])
    current[0] = None
    return result
executor.MigrationExecutor.apply_migration = apply_migration
try:
    call_command("migrate", interactive=False, verbosity=0)
except Exception as exc:
    fail("migration", first_line(exc), current[0])
emit(applied=applied)
'''

_ALEMBIC_RUNNER = _RUNNER_COMMON + r'''
mode, ini = sys.argv[1:3]
try:
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory
except ImportError:
    fail("missing", "Alembic is not installed in " + sys.executable + " (pip install alembic)")
cfg = Config(ini)
try:
    script = ScriptDirectory.from_config(cfg)
    revisions = sorted((rev.revision, rev.path) for rev in script.walk_revisions())
except Exception as exc:
    fail("config", first_line(exc))
if mode == "list":
    files = [[os.path.basename(ini), ini], ["env.py", os.path.join(script.dir, "env.py")]]
    for revision, path in revisions:
        files.append(["revision " + revision + " " + os.path.relpath(path, script.dir), path])
    emit(files=files)
# The URL goes through ConfigParser interpolation: a percent-encoded password's % must be doubled.
cfg.set_main_option("sqlalchemy.url", os.environ.pop("QUERYWARDEN_MIGRATE_URL").replace("%", "%%"))
current = [None]
applied = []
try:
    from alembic.runtime import migration as runtime
    original_init = runtime.RevisionStep.__init__
    def __init__(self, revision_map, revision, is_upgrade):
        original_init(self, revision_map, revision, is_upgrade)
        run = self.migration_fn
        label = revision.revision + " (" + os.path.basename(revision.path) + ")"
        def migration_fn(*args, **kwargs):
            current[0] = label
            result = run(*args, **kwargs)
            applied.append(label)
            current[0] = None
            return result
        migration_fn.__name__ = getattr(run, "__name__", "upgrade")
        self.migration_fn = migration_fn
    runtime.RevisionStep.__init__ = __init__
except (ImportError, AttributeError):
    pass  # another Alembic: a failure then names no revision
try:
    command.upgrade(cfg, "head")
except Exception as exc:
    fail("migration", first_line(exc), current[0])
emit(applied=applied)
'''


def _environment(extra: dict[str, str]) -> dict[str, str]:
    """The caller's environment without what could connect a migration anywhere but the template."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG") and key not in _CALLER_ONLY}
    env.update(extra)
    return env


def _last_meaningful(stderr: str) -> str:
    """The line of a subprocess's stderr that says what went wrong: the last one that is not a traceback's frame."""
    for line in reversed(stderr.strip().splitlines()):
        text = line.strip()
        if text and not line.startswith((" ", "\t")) and not text.startswith(("Traceback", "During handling", "The above")):
            return text
    return "it exited without saying why"


def _run(item: str, runner: str, args: Sequence[str], cwd: Path, env: dict[str, str], dsn: str | None) -> dict[str, Any]:
    """Run a runner in a subprocess of this Python and return its result; ConfigError when it could not say."""
    process = subprocess.Popen(
        [sys.executable, "-c", runner, *args], cwd=cwd, env=_environment(env),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
    )
    try:
        stdout, stderr = process.communicate()
    except BaseException:
        process.kill()
        process.wait()
        raise
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARK):
            try:
                result = json.loads(line[len(_MARK):])
            except ValueError:
                break
            if isinstance(result, dict):
                return result
            break
    said = scrub(_last_meaningful(stderr), dsn)
    error = DatabaseError if dsn else ConfigError
    raise error(f"schema item {item!r}: its subprocess failed (exit {process.returncode}): {said}")


def _outcome(item: str, result: dict[str, Any], dsn: str | None, fix: str) -> dict[str, Any]:
    """The result, or the error it reports raised as one line."""
    kind = result.get("error")
    if kind is None:
        return result
    message = scrub(str(result.get("message") or "unknown error"), dsn)
    if kind == "migration":
        migration = result.get("migration")
        where = f"migration {migration}" if migration else "migrating"
        raise DatabaseError(f"schema item {item!r}: {where} failed: {message}")
    raise ConfigError(f"schema item {item!r}: {message}" + ("" if kind == "missing" or ";" in message else f"; {fix}"))


def _files(item: str, result: dict[str, Any]) -> list[tuple[str, Path]]:
    listed = result.get("files")
    if not isinstance(listed, list):
        raise ConfigError(f"schema item {item!r}: its migrations could not be listed")
    return [(str(name), Path(str(path))) for name, path in listed]


def _template_dsn(conn: psycopg.Connection[Any]) -> str:
    """The DSN of the database being built, password included; the seeding connection left idle so the
    migrations' own connections wait on nothing it holds."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.commit()
    conn.autocommit = True
    dsn = conninfo_of(conn)
    if not dsn:
        raise DatabaseError("the seeding connection's DSN cannot be read to run migrations on it")
    return dsn


def _applied(item: str, result: dict[str, Any], started: float, progress: Progress) -> int:
    applied = result.get("applied")
    count = len(applied) if isinstance(applied, list) else 0
    progress(f"  {item}: {count} migration{'' if count == 1 else 's'} applied in {human_seconds(time.perf_counter() - started)}")
    return 0


@dataclass(frozen=True)
class DjangoMigrations:
    """`django:<settings module>[@<project dir>]`: the project's migrations (every installed app's)."""

    item: str
    settings: str
    project_dir: Path

    _FIX = "check the django:<settings module>@<project dir> schema item"

    def _check(self) -> None:
        if not self.project_dir.is_dir():
            raise ConfigError(f"schema item {self.item!r}: project directory {self.project_dir} does not exist; "
                              "name the directory holding manage.py as django:<settings module>@<project dir>")

    def files(self) -> list[tuple[str, Path]]:
        self._check()
        result = _run(self.item, _DJANGO_RUNNER, ("list", self.settings, str(self.project_dir)), self.project_dir, {}, None)
        return _files(self.item, _outcome(self.item, result, None, self._FIX))

    def apply(self, conn: psycopg.Connection[Any], progress: Progress) -> int:
        self._check()
        dsn = _template_dsn(conn)
        given = {key: str(value) for key, value in conninfo_to_dict(dsn).items() if value is not None}
        started = time.perf_counter()
        with heartbeat(progress, self.item):
            result = _run(self.item, _DJANGO_RUNNER, ("apply", self.settings, str(self.project_dir)), self.project_dir,
                          {"QUERYWARDEN_MIGRATE_DB": json.dumps(given)}, dsn)
        return _applied(self.item, _outcome(self.item, result, dsn, self._FIX), started, progress)


@dataclass(frozen=True)
class AlembicMigrations:
    """`alembic:<alembic.ini>`: `alembic upgrade head`, run from the ini's directory as Alembic's CLI is."""

    item: str
    ini: Path

    _FIX = "check the alembic: schema item and its alembic.ini"

    def _check(self) -> Path:
        if not self.ini.is_file():
            raise ConfigError(f"schema item {self.item!r}: {self.ini} does not exist; "
                              "point alembic: at the project's alembic.ini")
        return self.ini.resolve()

    def files(self) -> list[tuple[str, Path]]:
        ini = self._check()
        result = _run(self.item, _ALEMBIC_RUNNER, ("list", str(ini)), ini.parent, {}, None)
        return _files(self.item, _outcome(self.item, result, None, self._FIX))

    def apply(self, conn: psycopg.Connection[Any], progress: Progress) -> int:
        ini = self._check()
        dsn = _template_dsn(conn)
        started = time.perf_counter()
        with heartbeat(progress, self.item):
            result = _run(self.item, _ALEMBIC_RUNNER, ("apply", str(ini)), ini.parent,
                          {"QUERYWARDEN_MIGRATE_URL": sqlalchemy_url(dsn)}, dsn)
        return _applied(self.item, _outcome(self.item, result, dsn, self._FIX), started, progress)
