"""Seeding: build a production-sized database once into a template, then clone it per run or test.

A seed is a schema (the application's DDL or migrations: changing it is what the guard reviews)
and data items; each is SQL files and/or Python callables (`module:function` or
`path/to/file.py:function`). A callable gets the seeding connection and, when its signature names
them, `scale` (the scale factor), `progress` (a callable taking a line of text) and `kit` (a
`querywarden.seeding.kit.SeedKit` for fast, skewed, deterministic data); it may return the number of
rows it wrote. SQL can read the scale with `current_setting('querywarden.scale')`.

After loading, autovacuum is turned off on every table (whatever the seed's DDL says, so nothing
re-ANALYZEs behind our back) and the database is VACUUM ANALYZEd at production's statistics target
(`statistics-target`, else the server's default), so plans and planning time are what production
pays. The template's name carries a fingerprint of the seed's contents, scale and statistics
target, so a changed seed builds a new one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from ..database import Server, connect, scrub
from ..errors import ConfigError, DatabaseError
from .. import planner_stats
from .kit import SeedKit, heartbeat, human_seconds, rate_text
from .migrations import Migrations, is_migrations
from .migrations import parse as parse_migrations
from ..sqlscan import scan, split_statements

Progress = Callable[[str], None]
# Advisory lock class of template builds; the second key is the template name's hash, so builds of
# one template are serialised while builds of different seeds (a 10x build, a test's tiny seed) run side by side.
BUILD_LOCK_CLASS = 0x71776172
# Seed statements that write rows, by their command tag.
_WRITING_TAGS = ("INSERT", "COPY", "UPDATE", "SELECT", "MERGE")
# Keyword arguments a seed callable may declare to receive.
_CALLABLE_EXTRAS = ("scale", "progress", "kit")
_REPORT_SLOW_S = 1.0
# Tables autovacuum would visit: plain tables, partitions and materialized views outside the system schemas.
_USER_TABLES = """
SELECT n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
ORDER BY n.nspname, c.relname
"""


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Seed:
    """What to load into a fresh database, and at what scale."""

    items: tuple[str, ...]
    scale: float = 1.0
    base_dir: Path = Path(".")
    schema: tuple[str, ...] = ()
    # The statistics target production analyses with (None: the server's default_statistics_target):
    # planning time and row estimates follow it, so the guard should measure under production's.
    statistics_target: int | None = None

    def _resolve(self, item: str) -> Path:
        path = Path(item)
        return path if path.is_absolute() else self.base_dir / path

    def _migrations(self, item: str) -> Migrations:
        """The migrations a `django:`, `alembic:` or `sql-migrations:` item declares."""
        return parse_migrations(item, self.base_dir, self._load_sql)

    def _callable(self, item: str) -> Callable[..., Any]:
        target, _, function = item.rpartition(":")
        try:
            if target.endswith(".py"):
                path = self._resolve(target)
                spec = importlib.util.spec_from_file_location(f"querywarden_seed_{path.stem}", path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(target)
            found = getattr(module, function)
        except (ImportError, AttributeError, FileNotFoundError, SyntaxError, ValueError) as exc:
            raise ConfigError(f"seed item {item!r} cannot be loaded ({exc}); use path.sql, module:function or file.py:function") from None
        if not callable(found):
            raise ConfigError(f"seed item {item!r} is not callable")
        return found  # type: ignore[no-any-return]

    def fingerprint(self) -> str:
        """Identity of the whole build (schema, data, statistics target): names the template database."""
        target = "server default" if self.statistics_target is None else str(self.statistics_target)
        return self._digest(self.schema + self.items, f"statistics={target}")

    def data_fingerprint(self) -> str:
        """Identity of the data alone, recorded in baselines: another data set makes them incomparable,
        while a schema change (a dropped index) is exactly what gets compared."""
        return self._digest(self.items)

    def environment(self) -> dict[str, str]:
        """What a baseline measured on this seed records about its data: the data fingerprint, and the
        planner statistics it imports (a reviewer sees that its plans rest on production's)."""
        return {"seed": self.data_fingerprint(), **planner_stats.seed_environment(self.items, self.base_dir)}

    def _digest(self, items: tuple[str, ...], extra: str = "") -> str:
        """Hash of every item's bytes (a callable's whole source file) and the scale."""
        digest = hashlib.sha256(f"scale={self.scale!r}{extra}".encode())
        for item in items:
            if planner_stats.is_item(item):
                digest.update(planner_stats.item_bytes(item, self.base_dir))
                continue
            if is_migrations(item):
                # Every file the migrations consist of, by its name within the project and its bytes.
                digest.update(item.partition(":")[0].encode() + b"\0")
                for name, path in self._migrations(item).files():
                    try:
                        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
                    except OSError as exc:
                        raise ConfigError(f"schema item {item!r}: {path} cannot be read ({exc})") from None
                continue
            if item.endswith(".sql"):
                path = self._resolve(item)
            else:
                source = inspect.getsourcefile(self._callable(item))
                if source is None:
                    raise ConfigError(f"seed item {item!r}: its source file cannot be found to fingerprint it")
                path = Path(source)
            try:
                # Contents, not paths: the same seed named from another directory is the same seed.
                function = b"" if item.endswith(".sql") else item.rpartition(":")[2].encode()
                digest.update(function + b"\0" + path.read_bytes())
            except OSError as exc:
                raise ConfigError(f"seed file {path} cannot be read ({exc}); check the seed setting") from None
        return digest.hexdigest()[:12]

    def load(self, conn: psycopg.Connection[Any], progress: Progress = _quiet) -> int:
        """Run every item in order; return rows written. Reports each statement that wrote rows or took
        a while (rows/s), and says so every 15 s while one runs."""
        conn.autocommit = True
        conn.execute("SELECT set_config('querywarden.scale', %s, false)", (repr(self.scale),))
        total_rows = 0
        for item in self.schema + self.items:
            if is_migrations(item):
                total_rows += self._migrations(item).apply(conn, progress)
            elif planner_stats.is_item(item):
                planner_stats.load_item(conn, item, self.base_dir, progress)
            elif item.endswith(".sql"):
                total_rows += self._load_sql(conn, self._resolve(item), progress)
            else:
                total_rows += self._load_callable(conn, item, progress)
        return total_rows

    def _load_sql(self, conn: psycopg.Connection[Any], path: Path, progress: Progress) -> int:
        try:
            statements = split_statements(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"seed file {path} cannot be read ({exc})") from None
        written = 0
        for number, statement in enumerate(statements, start=1):
            label = f"{path.name} [{number}/{len(statements)}] {_describe(statement)}"
            started = time.perf_counter()
            with heartbeat(progress, label):
                try:
                    cur = conn.execute(statement)
                except psycopg.Error as exc:
                    raise DatabaseError(
                        f"seed {path} statement {number} failed: {str(exc).strip().splitlines()[0]}"
                    ) from None
            elapsed = time.perf_counter() - started
            tag = (cur.statusmessage or "").split(" ")[0]
            rows = max(cur.rowcount, 0) if tag in _WRITING_TAGS else 0
            if tag == "SELECT" and rows <= 1:
                rows = 0  # SELECT setseed(...), set_config(...): not data
            written += rows
            if rows:
                progress(f"  {label}: {rate_text(rows, elapsed)}")
            elif elapsed >= _REPORT_SLOW_S:
                progress(f"  {label}: {human_seconds(elapsed)}")
        return written

    def _load_callable(self, conn: psycopg.Connection[Any], item: str, progress: Progress) -> int:
        function = self._callable(item)
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            parameters = {}  # type: ignore[assignment]
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        wanted = {name for name in _CALLABLE_EXTRAS if takes_any or name in parameters}
        kit = SeedKit(conn, scale=self.scale, progress=progress) if "kit" in wanted else None
        available: dict[str, Any] = {"scale": self.scale, "progress": progress, "kit": kit}
        started = time.perf_counter()
        try:
            result = function(conn, **{name: available[name] for name in wanted})
        except psycopg.Error as exc:
            raise DatabaseError(f"seed item {item} failed: {str(exc).strip().splitlines()[0]}") from None
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.commit()  # a callable that opened a transaction: keep what it wrote
        conn.autocommit = True  # and the next item runs as the first did
        elapsed = time.perf_counter() - started
        rows = result if isinstance(result, int) and not isinstance(result, bool) else (kit.rows if kit else 0)
        progress(f"  {item}: " + (rate_text(rows, elapsed) if rows else f"done in {human_seconds(elapsed)}"))
        return rows


def _describe(statement: str, words: int = 3) -> str:
    """The first words of a statement, for progress lines: `INSERT INTO time_entries`, `CREATE INDEX name`."""
    code = " ".join(chunk.text for chunk in scan(statement) if chunk.code)
    found = code.split("(", 1)[0].split()[:words]
    return " ".join(found) if found else "statement"


def disable_autovacuum(conn: psycopg.Connection[Any]) -> list[str]:
    """Turn autovacuum off on every user table (and its TOAST table); return the tables' names.

    Whatever the seed's DDL says: an autovacuum ANALYZE re-samples statistics and changes costs
    between two runs on the same data. Clones inherit the setting.
    """
    conn.autocommit = True
    done: list[str] = []
    for schema, table, kind in conn.execute(_USER_TABLES).fetchall():
        what = "MATERIALIZED VIEW" if kind == "m" else "TABLE"
        options = "autovacuum_enabled = off" if kind == "m" else "autovacuum_enabled = off, toast.autovacuum_enabled = off"
        conn.execute(
            sql.SQL("ALTER {} {} SET ({})").format(sql.SQL(what), sql.Identifier(schema, table), sql.SQL(options))
        )
        done.append(f"{schema}.{table}")
    return done


def analyze(conn: psycopg.Connection[Any], target: int | None = None, progress: Progress = _quiet) -> float:
    """VACUUM ANALYZE under production's statistics target (None: the server's default); returns seconds.

    An extreme target sampled whole tables, so costs were identical on every re-seed, but it also gave
    planning a 10,000-entry MCV list to read (362 ms against 7 ms at the default, on a real task queue):
    the guard measured a database production never runs. Clones copy the template's statistics, so
    every run on one template still plans identically; across rebuilds only estimates move, which
    the judge does not take for a slowdown without more work or another plan (benchmarks/seeding.py).
    """
    started = time.perf_counter()
    conn.autocommit = True
    if target is not None:
        conn.execute(sql.SQL("SET default_statistics_target = {}").format(sql.Literal(target)))
    shown = conn.execute("SHOW default_statistics_target").fetchone()
    with heartbeat(progress, "VACUUM ANALYZE"):
        conn.execute("VACUUM ANALYZE")
    elapsed = time.perf_counter() - started
    progress(f"  VACUUM ANALYZE (statistics target {shown[0] if shown else '?'}) in {human_seconds(elapsed)}")
    return elapsed


@dataclass(frozen=True)
class BuildReport:
    """What building one seeded database took."""

    name: str
    rows: int
    load_s: float
    analyze_s: float
    tables: tuple[str, ...]

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.load_s if self.load_s > 0 else 0.0


def build(server: Server, seed: Seed, name: str, progress: Progress = _quiet, *, template: str | None = None) -> BuildReport:
    """Create database `name` (a copy of `template`, else empty) and load, de-autovacuum and analyze
    `seed` into it (dropped if that fails).

    `ensure_template` builds through this; call it directly for a database of your own name (a
    benchmark rebuilding the same seed, a test that must not touch the shared template).
    """
    server.create(name, template=template, wait_s=5.0 if template else 0.0)
    try:
        with connect(server.dsn_for(name)) as conn:
            started = time.perf_counter()
            rows = seed.load(conn, progress)
            load_s = time.perf_counter() - started
            tables = disable_autovacuum(conn)
            analyze_s = analyze(conn, seed.statistics_target, progress)
    except BaseException:
        try:
            server.drop(name)
        except DatabaseError:
            pass
        raise
    return BuildReport(name, rows, load_s, analyze_s, tuple(tables))


# Each seeded template's comment (COMMENT ON DATABASE) records its scale, when it was built and when a run
# last used it, so unused templates can be pruned without a table of our own. Times are the server's, in UTC.
_COMMENT_KIND = "querywarden seeded template"
_COMMENT_AND_NOW = "SELECT shobj_description(oid, 'pg_database'), now() FROM pg_database WHERE datname = %s"
# A reuse within this long of the recorded one writes nothing: xdist workers starting together write once,
# and pruning, counted in hours or days, never drops a template used this recently.
RECORD_EVERY = timedelta(minutes=10)
# COMMENT ON DATABASE waits for any clone of the template in progress (CREATE DATABASE ... TEMPLATE holds
# a share lock on it until it commits); a reuse waits this long at most, then leaves the record as it is.
_RECORD_LOCK_TIMEOUT = "1s"


@dataclass(frozen=True)
class Usage:
    """What a seeded template's comment records; a time is None when it was not recorded."""

    scale: float | None
    built_at: datetime | None
    last_used_at: datetime | None


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def usage_comment(usage: Usage) -> str:
    """The comment that records `usage` on a template: one line of JSON that reads well in psql's `\\l+`."""
    return json.dumps({
        "querywarden": _COMMENT_KIND,
        "scale": usage.scale,
        "built_at": _iso(usage.built_at),
        "last_used_at": _iso(usage.last_used_at),
    })


def read_usage(comment: str | None) -> Usage | None:
    """The usage a template's comment records; None when it records none (built by a querywarden that did
    not record it, or a comment someone else wrote)."""
    if not comment:
        return None
    try:
        record = json.loads(comment)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("querywarden") != _COMMENT_KIND:
        return None
    scale = record.get("scale")
    return Usage(
        float(scale) if isinstance(scale, (int, float)) and not isinstance(scale, bool) else None,
        _moment(record.get("built_at")),
        _moment(record.get("last_used_at")),
    )


def _record_reuse(
    admin: psycopg.Connection[Any], name: str, scale: float, comment: str | None, now: datetime, progress: Progress
) -> None:
    """Record a reuse of the template unless its record is younger than RECORD_EVERY."""
    previous = read_usage(comment)
    last = previous.last_used_at if previous else None
    if last is not None and timedelta(0) <= now - last < RECORD_EVERY:
        return
    _record_use(admin, name, scale, previous.built_at if previous else None, now, progress)


def _record_use(
    admin: psycopg.Connection[Any], name: str, scale: float, built_at: datetime | None, now: datetime, progress: Progress
) -> None:
    """Stamp the template's comment with this use, in one round trip. A clone in progress holds the record
    up for a second at most (that run's own use is recorded); a user who may not comment on the template
    (not its owner) still gets the template, only the record is missing."""
    statement = sql.SQL("SET LOCAL lock_timeout = {}; COMMENT ON DATABASE {} IS {}").format(
        sql.Literal(_RECORD_LOCK_TIMEOUT), sql.Identifier(name), sql.Literal(usage_comment(Usage(scale, built_at, now)))
    )
    try:
        admin.execute(statement)
    except psycopg.errors.LockNotAvailable:
        pass
    except psycopg.Error as exc:
        progress(f"cannot record the use of seeded template {name} ({str(exc).strip().splitlines()[0]}); "
                 "`querywarden templates --prune` will go by its last recorded use")


def template_name(seed: Seed) -> str:
    return f"qw_seed_{seed.fingerprint()}"


def ensure_template(server: Server, seed: Seed, progress: Progress = _quiet) -> str:
    """The seeded template database for `seed` on `server`, built now unless a complete one exists.

    Builds run under an advisory lock on the template's name and into a temporary name that is
    renamed only when complete, so concurrent runs (xdist workers) build it once and an
    interrupted build is never reused.
    """
    return _ensure(server, template_name(seed), seed.scale, progress, lambda into: build(server, seed, into, progress),
                   f"scale {seed.scale:g}")


def migrations_onto(base: Seed, head: Seed) -> tuple[str, ...] | None:
    """The schema items that turn the base's seeded database into the head's, when the head is the base
    plus migrations: the same data, scale and statistics target, and the base's schema items first,
    each unchanged, or (django:, alembic:) the same migrations and more, which rerunning applies alone.
    None when the head must be built whole (a schema file edited in place, other data)."""
    if (base.data_fingerprint(), base.scale, base.statistics_target) != (head.data_fingerprint(), head.scale, head.statistics_target):
        return None
    if len(head.schema) < len(base.schema) or head.schema == base.schema and base.fingerprint() == head.fingerprint():
        return None
    rerun: list[str] = []
    for old, new in zip(base.schema, head.schema):
        if old != new:
            return None
        if base._digest((old,)) == head._digest((new,)):
            continue
        if not old.startswith(("django:", "alembic:")):
            return None
        before, after = dict(_named_bytes(base, old)), dict(_named_bytes(head, new))
        if any(after.get(name) != body for name, body in before.items()):
            return None  # a migration the base has was edited: production never sees that
        rerun.append(new)
    return (*rerun, *head.schema[len(base.schema):])


def _named_bytes(seed: Seed, item: str) -> list[tuple[str, bytes]]:
    try:
        return [(name, path.read_bytes()) for name, path in seed._migrations(item).files()]
    except OSError as exc:
        raise ConfigError(f"schema item {item!r}: a migration file cannot be read ({exc})") from None


def ensure_migrated_template(server: Server, base: Seed, head: Seed, progress: Progress = _quiet) -> str | None:
    """The head's template made from a copy of the base's with the head's new migrations applied to its
    data, as production applies them, instead of a whole build (built now unless it exists); None
    when the head is not the base plus migrations (`migrations_onto`)."""
    steps = migrations_onto(base, head)
    if steps is None:
        return None
    source = ensure_template(server, base, progress)
    name = f"qw_seed_{hashlib.sha256(f'{head.fingerprint()} onto {base.fingerprint()}'.encode()).hexdigest()[:12]}"
    migrations = Seed((), head.scale, head.base_dir, steps, head.statistics_target)
    return _ensure(server, name, head.scale, progress, lambda into: build(server, migrations, into, progress, template=source),
                   f"{source} + {len(steps)} migration item(s)")


def _ensure(server: Server, name: str, scale: float, progress: Progress, make: Callable[[str], BuildReport], what: str) -> str:
    with server.admin() as admin:
        try:
            locked = admin.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (BUILD_LOCK_CLASS, name)).fetchone()
            if not (locked and locked[0]):
                progress(f"waiting for another run to finish building seeded template {name}")
                admin.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (BUILD_LOCK_CLASS, name))
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot build seeded template {name}: {scrub(str(exc).splitlines()[0], server.dsn)}") from None
        try:
            found = admin.execute(_COMMENT_AND_NOW, (name,)).fetchone()
            if found:
                progress(f"reusing seeded template {name}")
                _record_reuse(admin, name, scale, found[0], found[1], progress)
                return name
            building = f"{name}_building"
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
            progress(f"seeding {name} ({what})")
            report = make(building)
            progress(
                f"seeded {report.rows:,} rows in {human_seconds(report.load_s)} ({report.rows_per_s:,.0f} rows/s), "
                f"analyzed in {human_seconds(report.analyze_s)}; autovacuum off on {len(report.tables)} tables"
            )
            admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))
            admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name)))
            built = admin.execute("SELECT now()").fetchone()
            if built:
                _record_use(admin, name, scale, built[0], built[0], progress)
            return name
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot build seeded template {name}: {scrub(str(exc).splitlines()[0], server.dsn)}") from None
        finally:
            if not admin.closed:
                admin.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (BUILD_LOCK_CLASS, name))


def drop_template(server: Server, name: str) -> None:
    """Drop a seeded template (it must be un-marked as a template first)."""
    with server.admin() as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
