"""Reaching PostgreSQL: DSNs (never shown with their password), connections, and throwaway databases."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .config import DSN_ENV
from .errors import ConfigError, DatabaseError

# The password of a URL runs to the last `@` of its authority, so an unencoded `@` in it is masked too.
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)([^/\s]*)(@)")
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
# Server answers that mean "try again shortly"; any other answer (bad password, no such database) is final.
_TRANSIENT_ANSWERS = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "remaining connection slots are reserved",
)


def mask_dsn(text: str) -> str:
    """Replace any password in a DSN (URL or key=value form), or in text that quotes one, with ***."""
    return _KV_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***\3", text))


def scrub(text: str, dsn: str | None) -> str:
    """Remove the DSN's password from arbitrary text, e.g. a psycopg exception message."""
    text = mask_dsn(text)
    if dsn:
        try:
            password = conninfo_to_dict(dsn).get("password")
        except psycopg.ProgrammingError:
            password = None
        if password:
            text = text.replace(str(password), "***")
    return text


def with_dbname(dsn: str, dbname: str) -> str:
    try:
        return make_conninfo(dsn, dbname=dbname)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid DSN {mask_dsn(dsn)!r}: {scrub(str(exc), dsn)}; use postgresql://user@host:port/db") from None


def dbname_of(dsn: str) -> str:
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid DSN {mask_dsn(dsn)!r}: {scrub(str(exc), dsn)}; use postgresql://user@host:port/db") from None
    return str(params.get("dbname") or params.get("user") or os.environ.get("PGDATABASE") or "postgres")


def _retryable(exc: psycopg.OperationalError) -> bool:
    """Whether a failed first contact may succeed on a retry: no answer at all, or a server still starting."""
    text = str(exc)
    if "FATAL:" not in text and "ERROR:" not in text:
        return True  # refused, unreachable or timed out: the server may be on its way up
    return any(answer in text for answer in _TRANSIENT_ANSWERS)


def _check_dsn(dsn: str) -> None:
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"invalid DSN {mask_dsn(dsn)!r}: {scrub(str(exc), dsn)}; use postgresql://user@host:port/db") from None
    if "@" in str(params.get("host") or ""):
        # libpq took the password up to its first `@` and the rest for the host: an error would echo that rest.
        raise ConfigError(  # echoing even the masked DSN would show the password's tail as the host
            "invalid DSN: the password in it holds an `@`, which ends the password in a URL; "
            "percent-encode it as %40 (and `/` as %2F)"
        )


def connect(dsn: str, *, attempts: int = 3, delay_s: float = 0.5, **kwargs: Any) -> psycopg.Connection[Any]:
    """Connect, retrying a bounded number of times while the server gives no answer or is starting up.

    This is for a connection's first contact only: a connection lost later is an error of whatever was
    running on it, never silently re-made. Errors never carry the DSN's password.
    """
    _check_dsn(dsn)
    last: psycopg.OperationalError | None = None
    for attempt in range(attempts):
        try:
            return psycopg.connect(dsn, connect_timeout=10, **kwargs)
        except psycopg.OperationalError as exc:
            last = exc
            if not _retryable(exc):
                break
            if attempt + 1 < attempts:
                time.sleep(delay_s * (attempt + 1))
        except psycopg.ProgrammingError as exc:
            raise ConfigError(f"invalid DSN {mask_dsn(dsn)!r}: {scrub(str(exc), dsn)}") from None
    detail = scrub(_first_line(last) if last is not None else "no answer", dsn)
    raise DatabaseError(
        f"cannot connect to {mask_dsn(dsn)}: {detail}; start the server or fix --dsn / ${DSN_ENV}"
    )


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def create_statement(dbname: str, template: str | None, server_version: int) -> sql.Composed:
    """CREATE DATABASE, copying a template file by file where the server can (PostgreSQL >= 15).

    FILE_COPY copies a seeded template in about a second where WAL_LOG, 15's default, writes every
    block to the WAL; PostgreSQL 14 has only the file copy and no STRATEGY option.
    """
    if not template:
        return sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
    strategy = sql.SQL(" STRATEGY FILE_COPY") if server_version >= 150000 else sql.SQL("")
    return sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(sql.Identifier(dbname), sql.Identifier(template), strategy)


@dataclass(frozen=True)
class Server:
    """A PostgreSQL server reached through an admin DSN, used to create and drop throwaway databases."""

    dsn: str = field(repr=False)  # may carry a password: never in a repr, a log line or a traceback

    def dsn_for(self, dbname: str) -> str:
        return with_dbname(self.dsn, dbname)

    @contextmanager
    def admin(self) -> Iterator[psycopg.Connection[Any]]:
        conn = connect(self.dsn, autocommit=True)
        try:
            yield conn
        finally:
            conn.close()

    def exists(self, dbname: str) -> bool:
        with self.admin() as conn:
            try:
                return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None
            except psycopg.Error as exc:
                raise DatabaseError(f"cannot look up database {dbname!r}: {scrub(_first_line(exc), self.dsn)}") from None

    def create(self, dbname: str, template: str | None = None) -> None:
        with self.admin() as conn:
            try:
                conn.execute(create_statement(dbname, template, conn.info.server_version))
            except psycopg.errors.ObjectInUse:
                raise DatabaseError(
                    f"cannot clone database {template!r}: other sessions are connected to it; "
                    "close them (querywarden measures on a throwaway copy so it never changes your data)"
                ) from None
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot create database {dbname!r}: {scrub(_first_line(exc), self.dsn)}; "
                    "the DSN's user needs CREATEDB"
                ) from None

    def drop(self, dbname: str) -> None:
        with self.admin() as conn:
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot drop throwaway database {dbname!r}: {scrub(_first_line(exc), self.dsn)}; drop it by hand"
                ) from None

    @contextmanager
    def clone(self, template: str, prefix: str = "qw_run") -> Iterator[str]:
        """A uniquely named copy of `template` for the duration of the block; yields its DSN."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.create(name, template=template)
        try:
            yield self.dsn_for(name)
        finally:
            try:
                self.drop(name)
            except DatabaseError:
                pass
