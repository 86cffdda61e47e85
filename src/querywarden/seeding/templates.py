"""What querywarden leaves on a shared server: list it and prune what no run uses any more.

Seeded templates are kept so later runs reuse them, and every changed seed or scale leaves one
behind; each template's comment records its last use (see `seed.ensure_template`). A run killed
by a signal (SIGTERM from `timeout`, `docker stop`, a cancelled CI job) never reaches the `finally`
that drops its clones (`qw_run_*`, `qw_write_*`, full copies of the data) and its restricted
measuring role (`qw_measure_*`); those are orphans once no session uses them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import psycopg

from psycopg import sql

from ..database import Server, connect, dbname_of, scrub
from ..errors import DatabaseError, QuerywardenError
from .seed import BUILD_LOCK_CLASS, RECORD_EVERY, Usage, drop_template, read_usage

BUILDING_SUFFIX = "_building"
_SEEDED_NAMES = r"^qw_seed_[0-9a-f]{12}(_building)?$"  # a regular expression both Python and PostgreSQL read alike
_LIST_TEMPLATES = """
SELECT d.datname, pg_database_size(d.oid), shobj_description(d.oid, 'pg_database'), now(),
  -- a run building or reusing it holds its build lock, in whatever database the run's DSN names
  (SELECT count(*) FROM pg_locks l
   WHERE l.locktype = 'advisory' AND l.classid = %(lock_class)s::oid AND l.objsubid = 2
     AND l.objid = hashtext(regexp_replace(d.datname, '_building$', ''))::oid AND l.pid <> pg_backend_pid()),
  (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid AND a.pid <> pg_backend_pid()),
  -- CREATE DATABASE ... TEMPLATE holds a share lock on its template until it commits
  (SELECT count(*) FROM pg_locks l
   WHERE l.locktype = 'object' AND l.classid = 'pg_database'::regclass AND l.objid = d.oid AND l.pid <> pg_backend_pid())
FROM pg_database d
WHERE d.datname ~ %(pattern)s AND (%(names)s::text[] IS NULL OR d.datname = ANY(%(names)s::text[]))
ORDER BY d.datname
"""


@dataclass(frozen=True)
class SeededTemplate:
    """A seeded template on a server, or a `_building` database of one (a build running, or an interrupted one)."""

    name: str
    size_bytes: int
    usage: Usage | None  # None: nothing recorded (built by an older querywarden)
    now: datetime  # the server's clock when it was listed
    build_locks: int  # sessions holding or awaiting its build lock: a run building or reusing it
    sessions: int  # sessions connected to it
    object_locks: int  # sessions cloning it (CREATE DATABASE ... TEMPLATE), altering or dropping it

    @property
    def building(self) -> bool:
        return self.name.endswith(BUILDING_SUFFIX)

    @property
    def template(self) -> str:
        """The template's name, whose hash keys the build lock (a `_building` database's too)."""
        return self.name.removesuffix(BUILDING_SUFFIX)

    @property
    def idle(self) -> timedelta | None:
        """How long since a run last used it; None when unknown."""
        if self.usage is None or self.usage.last_used_at is None:
            return None
        return max(self.now - self.usage.last_used_at, timedelta(0))

    @property
    def busy(self) -> str | None:
        """Why it must not be dropped now, or None."""
        if self.build_locks:
            return "being built" if self.building else "in use: a run holds its build lock"
        if self.object_locks:
            return "in use: being cloned or altered by another session"
        if self.sessions:
            return f"in use: {self.sessions} session{'s' if self.sessions != 1 else ''} connected to it"
        return None


def is_seeded_name(name: str) -> bool:
    """Whether `name` is a seeded template's (qw_seed_<fingerprint>) or its build's (…_building)."""
    return re.fullmatch(_SEEDED_NAMES, name) is not None


def list_templates(server: Server, names: Collection[str] | None = None) -> list[SeededTemplate]:
    """The seeded templates on `server` (and `_building` databases of builds), by name; only `names` if given."""
    with server.admin() as admin:
        return _list(admin, server, names)


def _list(admin: psycopg.Connection[Any], server: Server, names: Collection[str] | None) -> list[SeededTemplate]:
    wanted = sorted(names) if names is not None else None
    try:
        rows = admin.execute(
            _LIST_TEMPLATES, {"lock_class": BUILD_LOCK_CLASS, "pattern": _SEEDED_NAMES, "names": wanted}
        ).fetchall()
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot list seeded templates: {scrub(str(exc).strip().splitlines()[0], server.dsn)}"
        ) from None
    return [
        SeededTemplate(name, int(size), read_usage(comment), now.astimezone(timezone.utc), int(locks), int(sessions), int(objects))
        for name, size, comment, now, locks, sessions, objects in rows
        if size is not None  # dropped by another run while this one listed it: not there any more
    ]


PruneAction = Literal["dropped", "would drop", "skipped", "kept"]


@dataclass(frozen=True)
class Pruned:
    """What pruning did with one seeded database, orphaned clone or measuring role, and why."""

    name: str
    size_bytes: int
    action: PruneAction
    reason: str
    kind: Literal["database", "role"] = "database"


def human_age(age: timedelta) -> str:
    """`45 s`, `12 min`, `5 h`, `9 d`: how long ago, to the unit that reads naturally."""
    seconds = age.total_seconds()
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _due(found: SeededTemplate, unused_for: timedelta, include_unrecorded: bool) -> tuple[bool, str]:
    """Whether pruning drops it (busy or not), and the reason either way."""
    if found.building:
        return True, "left by an interrupted build" if not found.build_locks else "being built"
    idle = found.idle
    if idle is None:
        if include_unrecorded:
            return True, "last use not recorded (built by an older querywarden)"
        return False, "last use not recorded (built by an older querywarden); --include-unrecorded prunes it"
    if idle >= max(unused_for, RECORD_EVERY):
        return True, f"unused for {human_age(idle)}"
    return False, f"last used {human_age(idle)} ago"


def prune_templates(
    server: Server,
    unused_for: timedelta,
    *,
    include_unrecorded: bool = False,
    dry_run: bool = False,
    names: Collection[str] | None = None,
    on_result: Callable[[Pruned], None] = lambda _: None,
) -> list[Pruned]:
    """Drop the seeded templates no run has used for `unused_for` or longer, and `_building` databases left
    by interrupted builds; return what happened to each seeded database, by name.

    A template whose last use was never recorded (built by an older querywarden) is kept unless
    `include_unrecorded`; one used within RECORD_EVERY is always kept, as a use that recent may not be
    recorded. Each drop happens under the template's build lock, taken with a try-lock, after
    checking again that it is still unused, that no other session holds or awaits that lock (a run
    building or reusing it, whatever database its DSN names) and that none is connected to it or cloning
    it; any of those skips it. A clone that starts in the instant before the drop is not broken:
    PostgreSQL makes DROP DATABASE wait until the clone has committed. `dry_run` takes no lock and drops
    nothing: it says what would be dropped. `names` limits it to those databases. `on_result` hears of
    each database as soon as it is done with, so a caller can report a drop before a later one fails.
    """
    results: list[Pruned] = []
    with server.admin() as admin:
        for found in _list(admin, server, names):
            due, reason = _due(found, unused_for, include_unrecorded)
            if not due:
                result = Pruned(found.name, found.size_bytes, "kept", reason)
            elif found.busy:
                result = Pruned(found.name, found.size_bytes, "skipped", found.busy)
            elif dry_run:
                result = Pruned(found.name, found.size_bytes, "would drop", reason)
            else:
                result = _prune_one(admin, server, found, unused_for, include_unrecorded)
            results.append(result)
            on_result(result)
    return results


def _prune_one(
    admin: psycopg.Connection[Any], server: Server, found: SeededTemplate, unused_for: timedelta, include_unrecorded: bool
) -> Pruned:
    """Drop one due database under its build lock, if it is still due and unused once the lock is held."""
    key = (BUILD_LOCK_CLASS, found.template)
    try:
        locked = admin.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", key).fetchone()
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot lock seeded template {found.template}: {scrub(str(exc).strip().splitlines()[0], server.dsn)}") from None
    if not (locked and locked[0]):
        return Pruned(found.name, found.size_bytes, "skipped", "being built or reused: its build lock is held")
    try:
        again = _list(admin, server, [found.name])
        if not again:
            return Pruned(found.name, found.size_bytes, "skipped", "no longer exists")
        current = again[0]
        due, reason = _due(current, unused_for, include_unrecorded)
        if not due:
            return Pruned(current.name, current.size_bytes, "kept", reason + " (used since it was listed)")
        if current.busy:
            return Pruned(current.name, current.size_bytes, "skipped", current.busy)
        try:
            drop_template(server, current.name)
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot drop seeded template {current.name}: {scrub(str(exc).strip().splitlines()[0], server.dsn)}; "
                "the DSN's user must own it (or be a superuser)"
            ) from None
        return Pruned(current.name, current.size_bytes, "dropped", reason)
    finally:
        if not admin.closed:
            admin.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)


# --- what killed runs leave: clones and measuring roles ----------------------------------------------

# Server.clone names its copies <prefix>_ and 10 hex digits; only the prefixes no test hands its own
# code (qw_test_ clones and scratch databases may sit unconnected while a test still uses them).
_CLONE_NAMES = r"^qw_(run|write)_[0-9a-f]{10}$"
_ROLE_NAMES = r"^qw_measure_[0-9a-f]{10}$"  # sandbox.measuring_role: the prefix and token_hex(5)
_LIST_CLONES = """
SELECT d.datname, coalesce(pg_database_size(d.oid), 0),
  (SELECT count(*) FROM pg_stat_activity a WHERE a.datid = d.oid AND a.pid <> pg_backend_pid())
FROM pg_database d
WHERE d.datname ~ %(pattern)s AND (%(names)s::text[] IS NULL OR d.datname = ANY(%(names)s::text[]))
ORDER BY d.datname
"""
_LIST_ROLES = """
SELECT r.rolname,
  (SELECT count(*) FROM pg_stat_activity a WHERE a.usesysid = r.oid AND a.pid <> pg_backend_pid()),
  -- databases it owns objects in or holds privileges in; DROP OWNED BY anywhere revokes those on shared objects
  ARRAY(SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND d.datallowconn ORDER BY 1),
  ARRAY(SELECT DISTINCT d.datname FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid
        WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid AND NOT d.datallowconn ORDER BY 1)
FROM pg_roles r
WHERE r.rolname ~ %(pattern)s AND (%(names)s::text[] IS NULL OR r.rolname = ANY(%(names)s::text[]))
ORDER BY r.rolname
"""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class RunClone:
    """A database named like a run's clone: a live run's (a session is connected) or an orphan's."""

    name: str
    size_bytes: int
    sessions: int

    @property
    def busy(self) -> str | None:
        return f"in use: {_plural(self.sessions, 'session')} connected to it" if self.sessions else None


@dataclass(frozen=True)
class RunRole:
    """A role named like a run's restricted measuring role, and where it still owns or holds anything."""

    name: str
    sessions: int  # sessions logged in as it
    databases: tuple[str, ...]  # that accept connections, where DROP OWNED BY must run
    unreachable: tuple[str, ...]  # that refuse connections: what it holds there keeps it

    @property
    def busy(self) -> str | None:
        return f"in use: {_plural(self.sessions, 'session')} logged in as it" if self.sessions else None


def is_clone_name(name: str) -> bool:
    """Whether `name` is a run's clone (qw_run_ or qw_write_ and 10 hex digits)."""
    return re.fullmatch(_CLONE_NAMES, name) is not None


def is_role_name(name: str) -> bool:
    """Whether `name` is a run's measuring role (qw_measure_ and 10 hex digits)."""
    return re.fullmatch(_ROLE_NAMES, name) is not None


def _query(admin: psycopg.Connection[Any], server: Server, what: str, query: str, pattern: str,
           names: Collection[str] | None) -> list[tuple[Any, ...]]:
    try:
        return admin.execute(query, {"pattern": pattern, "names": sorted(names) if names is not None else None}).fetchall()
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot list {what}: {scrub(str(exc).strip().splitlines()[0], server.dsn)}") from None


def _clones(admin: psycopg.Connection[Any], server: Server, names: Collection[str] | None) -> list[RunClone]:
    rows = _query(admin, server, "clone databases", _LIST_CLONES, _CLONE_NAMES, names)
    return [RunClone(name, int(size), int(sessions)) for name, size, sessions in rows]


def _roles(admin: psycopg.Connection[Any], server: Server, names: Collection[str] | None) -> list[RunRole]:
    rows = _query(admin, server, "measuring roles", _LIST_ROLES, _ROLE_NAMES, names)
    return [RunRole(name, int(sessions), tuple(reachable), tuple(unreachable)) for name, sessions, reachable, unreachable in rows]


def list_clones(server: Server, names: Collection[str] | None = None) -> list[RunClone]:
    """Databases named like a run's clones, by name; only `names` if given."""
    with server.admin() as admin:
        return _clones(admin, server, names)


def list_roles(server: Server, names: Collection[str] | None = None) -> list[RunRole]:
    """Roles named like a run's measuring roles, by name; only `names` if given."""
    with server.admin() as admin:
        return _roles(admin, server, names)


def prune_clones(
    server: Server, *, dry_run: bool = False, names: Collection[str] | None = None,
    on_result: Callable[[Pruned], None] = lambda _: None,
) -> list[Pruned]:
    """Drop the clones no session is connected to: a live run keeps one open on each of its clones.

    DROP DATABASE without FORCE: a session that connects after the check makes it fail, and the
    clone is skipped, never taken from under a run.
    """
    results: list[Pruned] = []
    with server.admin() as admin:
        for found in _clones(admin, server, names):
            if found.busy:
                result = Pruned(found.name, found.size_bytes, "skipped", found.busy)
            elif dry_run:
                result = Pruned(found.name, found.size_bytes, "would drop", "orphaned clone: no session connected to it")
            else:
                result = _drop_clone(admin, server, found)
            results.append(result)
            on_result(result)
    return results


def _drop_clone(admin: psycopg.Connection[Any], server: Server, found: RunClone) -> Pruned:
    try:
        admin.execute(sql.SQL("DROP DATABASE {}").format(sql.Identifier(found.name)))
    except psycopg.errors.InvalidCatalogName:
        return Pruned(found.name, found.size_bytes, "skipped", "no longer exists")
    except psycopg.errors.ObjectInUse as exc:  # connected since it was listed, or a prepared transaction
        return Pruned(found.name, found.size_bytes, "skipped", f"in use: {str(exc).strip().splitlines()[0]}")
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot drop clone {found.name}: {scrub(str(exc).strip().splitlines()[0], server.dsn)}; "
            "the DSN's user must own it (or be a superuser)"
        ) from None
    return Pruned(found.name, found.size_bytes, "dropped", "orphaned clone: no session connected to it")


def prune_roles(
    server: Server, *, dry_run: bool = False, names: Collection[str] | None = None,
    on_result: Callable[[Pruned], None] = lambda _: None,
) -> list[Pruned]:
    """Drop the measuring roles no session is logged in as, after what they own or were granted.

    Run it after the clones are pruned: a dropped clone takes the role's grants in it along.
    """
    results: list[Pruned] = []
    with server.admin() as admin:
        for found in _roles(admin, server, names):
            if found.busy:
                result = Pruned(found.name, 0, "skipped", found.busy, "role")
            elif dry_run:
                result = Pruned(found.name, 0, "would drop", _orphan_reason(found), "role")
            else:
                result = _drop_role(admin, server, found)
            results.append(result)
            on_result(result)
    return results


def _orphan_reason(found: RunRole) -> str:
    held = f" (holds grants or objects in {', '.join(found.databases)})" if found.databases else ""
    return f"orphaned measuring role: no session logged in as it{held}"


def _drop_role(admin: psycopg.Connection[Any], server: Server, found: RunRole) -> Pruned:
    """DROP OWNED BY in each database it holds anything in (and here, for shared objects), then DROP ROLE."""
    again = _roles(admin, server, [found.name])
    if not again:
        return Pruned(found.name, 0, "skipped", "no longer exists", "role")
    current = again[0]
    if current.busy:
        return Pruned(current.name, 0, "skipped", current.busy, "role")
    role = sql.Identifier(current.name)
    here = dbname_of(server.dsn)
    unreached = list(current.unreachable)
    for database in current.databases:
        if database == here:
            continue
        try:
            with connect(server.dsn_for(database), autocommit=True, attempts=1) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
        except QuerywardenError:
            unreached.append(database)  # dropped meanwhile, or refusing us: DROP ROLE says if it matters
        except psycopg.Error as exc:
            raise _role_error(current.name, exc, server, f"in database {database}") from None
    try:
        admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
        admin.execute(sql.SQL("DROP ROLE {}").format(role))
    except psycopg.errors.UndefinedObject:
        return Pruned(current.name, 0, "skipped", "no longer exists", "role")
    except psycopg.errors.DependentObjectsStillExist as exc:
        where = f"; could not reach {', '.join(sorted(unreached))}" if unreached else ""
        return Pruned(current.name, 0, "skipped", f"cannot drop it: {str(exc).strip().splitlines()[0]}{where}", "role")
    except psycopg.Error as exc:
        raise _role_error(current.name, exc, server, "") from None
    return Pruned(current.name, 0, "dropped", _orphan_reason(current), "role")


def _role_error(name: str, exc: psycopg.Error, server: Server, where: str) -> DatabaseError:
    return DatabaseError(
        f"cannot drop measuring role {name}{' ' + where if where else ''}: "
        f"{scrub(str(exc).strip().splitlines()[0], server.dsn)}; the DSN's user must be a superuser or a member of it"
    )
