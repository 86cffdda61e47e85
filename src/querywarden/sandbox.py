"""Where untrusted SQL may run: as a per-run login role that holds no privilege beyond the rows of the
databases it measures.

Catalogs, baselines and captured statements come from pull requests. Refusing dangerous names is
easy to get around (a Unicode-escaped identifier, a function that runs a query string), so the
protection is structural: the measuring connection logs in as `qw_measure_<hex>`, a role made for
this run with a random password and no attributes (not superuser, no CREATEDB/CREATEROLE/REPLICATION).
It may read and write the tables of databases querywarden granted it — its own clones — and nothing
else: it cannot reset statistics, signal another session, read files, consume a replication slot,
or log in elsewhere through dblink (which demands a password a statement cannot know). It bypasses
row-level security when the creating user can grant that, so it sees the rows the owner sees.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .database import Server, connect, dbname_of, scrub
from .errors import DatabaseError

ROLE_PREFIX = "qw_measure_"
IN_PLACE_FIX = "or set `measure-in-place = true` (--measure-in-place) to accept the risk of measuring as the DSN's user"


def in_place_risk(dsn: str) -> str:
    """What measuring in place risks, said where it is enabled."""
    user = conninfo_to_dict(dsn).get("user") or "the DSN's user"
    return (
        f"catalog, baseline and captured SQL run with {user}'s privileges on database {dbname_of(dsn)!r} "
        "(reads in READ ONLY transactions, one statement at a time): use it only on a database you can lose"
    )


class SandboxError(DatabaseError):
    """The protection cannot be had on this server: the run fails closed, naming what to give instead."""


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


@dataclass(frozen=True)
class MeasuringRole:
    """The login role this run measures as; its password lives only in this process."""

    name: str
    password: str = field(repr=False)
    granted: set[str] = field(default_factory=set, compare=False, repr=False)  # databases it may use

    def dsn(self, dsn: str) -> str:
        return make_conninfo(dsn, user=self.name, password=self.password)


def _may_create_roles(conn: psycopg.Connection[Any]) -> tuple[bool, bool]:
    """(may create a role, may grant BYPASSRLS) for the connected user."""
    row = conn.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone()
    superuser, createrole = (bool(row[0]), bool(row[1])) if row else (False, False)
    return superuser or createrole, superuser


@contextmanager
def measuring_role(server: Server, keep_on: str | None = None) -> Iterator[MeasuringRole]:
    """A fresh restricted login role for the block; dropped (with its grants) when it ends.

    With `keep_on`, a session logged in as the role to that database is held for the whole block: the
    login is checked before any measuring, and `templates --prune` sees the role in use. (Never the
    database a clone is made from: a session on it would stop the clone.)
    """
    role = MeasuringRole(f"{ROLE_PREFIX}{secrets.token_hex(5)}", secrets.token_urlsafe(24))
    with server.admin() as conn:
        user = str(conn.info.user)
        may_create, bypass = _may_create_roles(conn)
        if not may_create:
            raise SandboxError(
                f"cannot create the restricted role querywarden measures as: {user} has neither SUPERUSER nor "
                f"CREATEROLE; grant it CREATEROLE, {IN_PLACE_FIX}"
            )
        try:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOINHERIT{} CONNECTION LIMIT 8"
                ).format(sql.Identifier(role.name), sql.Literal(role.password), sql.SQL(" BYPASSRLS" if bypass else ""))
            )
        except psycopg.Error as exc:
            raise SandboxError(
                f"cannot create the restricted role querywarden measures as: {scrub(_first_line(exc), server.dsn)}; "
                f"{IN_PLACE_FIX}"
            ) from None
    try:
        with ExitStack() as keeper:
            if keep_on is not None:
                keeper.enter_context(logged_in(server.dsn_for(keep_on), role))
            yield role
    except BaseException:
        with suppress(DatabaseError):  # the run's own error is the one to show
            drop_role(server, role.name, tuple(sorted(role.granted)))
        raise
    drop_role(server, role.name, tuple(sorted(role.granted)))


def drop_role(server: Server, name: str, databases: tuple[str, ...] = ()) -> None:
    """Drop a measuring role, first revoking what it holds in `databases` (the clones are gone by now)."""
    for database in databases:
        if not server.exists(database):
            continue  # a clone, dropped with everything granted in it
        try:
            with connect(server.dsn_for(database), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        except (psycopg.Error, DatabaseError):
            pass  # dropped meanwhile; DROP ROLE below says if anything still depends on it
    with server.admin() as conn:
        try:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot drop the measuring role {name}: {scrub(_first_line(exc), server.dsn)}; "
                "`querywarden templates --prune` drops it"
            ) from None


def grant(server: Server, database: str, role: MeasuringRole) -> None:
    """Let the role read and write every table of `database` (one querywarden measures on), once."""
    if database in role.granted:
        return
    try:
        with connect(server.dsn_for(database), autocommit=True) as conn:
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), sql.Identifier(role.name)))
            schemas = [str(row[0]) for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1"
            )]
            for schema in schemas:
                who, where = sql.Identifier(role.name), sql.Identifier(schema)
                conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(where, who))
                conn.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {} TO {}").format(where, who))
                conn.execute(sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {} TO {}").format(where, who))
        role.granted.add(database)
    except psycopg.Error as exc:
        raise SandboxError(
            f"cannot grant the measuring role access to database {database!r}: "
            f"{scrub(_first_line(exc), server.dsn)}; the DSN's user must own its tables or be superuser, {IN_PLACE_FIX}"
        ) from None


def as_role(dsn: str, role: MeasuringRole | None) -> str:
    """The DSN to measure with: the role's login to the same server and database, or the DSN itself."""
    return role.dsn(dsn) if role is not None else dsn


@contextmanager
def logged_in(dsn: str, role: MeasuringRole) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the role to `dsn`'s database; fails closed, in one line, when the server will
    not let the role log in (pg_hba.conf, peer authentication)."""
    try:
        conn = connect(role.dsn(dsn), attempts=1, autocommit=True)
    except DatabaseError as exc:
        raise SandboxError(
            f"the restricted measuring role cannot log in to database {dbname_of(dsn)!r} ({scrub(str(exc), dsn)}); "
            f"allow password or trust logins for roles named {ROLE_PREFIX}* in pg_hba.conf, {IN_PLACE_FIX}"
        ) from None
    with conn:
        yield conn
