"""Seeded templates on a shared server: list them and prune the ones no run has used for a while.

Templates are kept so later runs reuse them, and every changed seed or scale leaves one behind;
each template's comment records its last use (see `seed.ensure_template`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import psycopg

from ..database import Server, scrub
from ..errors import DatabaseError
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
    ]


PruneAction = Literal["dropped", "would drop", "skipped", "kept"]


@dataclass(frozen=True)
class Pruned:
    """What pruning did with one seeded database, and why."""

    name: str
    size_bytes: int
    action: PruneAction
    reason: str


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
