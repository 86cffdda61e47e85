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
from urllib.parse import quote, unquote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .environment import DSN_ENV
from .errors import ConfigError, DatabaseError

_SCHEME = re.compile(r"postgres(?:ql)?://", re.IGNORECASE)
_URL_RUN = re.compile(r"postgres(?:ql)?://\S*", re.IGNORECASE)
# A password=/sslpassword= pair: a quoted value runs to its closing quote (`\'` and, as people write it
# by mistake, `''` do not close it; no closing quote: to the end), an unquoted one to the next space.
_KV_PASSWORD = re.compile(
    r"(?<![\w.-])(?:ssl)?password\s*=\s*(?P<value>'(?:[^'\\]|\\.|'')*(?:'|\Z)|\S+)", re.IGNORECASE | re.DOTALL
)
# A URL's query parameter value runs to the next `&name=`, so a `&` inside the password is masked too.
_QUERY_PASSWORD = re.compile(r"[?&](?:ssl)?password=(?P<value>.*?)(?=&[A-Za-z_]\w*=|\Z)", re.IGNORECASE | re.DOTALL)
# A value masked already, with the quote or colon a message put after it.
_MASKED = re.compile(r"\*\*\*['\":,;)\]]*")
# A quoted token in libpq's or psycopg's message: checked against where the password sits in the DSN.
_QUOTED = re.compile(r'"([^"]+)"|\'([^\']+)\'')
# Server answers that mean "try again shortly"; any other answer (bad password, no such database) is final.
_TRANSIENT_ANSWERS = (
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many clients",
    "remaining connection slots are reserved",
)


def mask_dsn(text: str) -> str:
    """Replace any password in a DSN (URL or key=value form), or in text that quotes one, with ***.

    Text that is a URL DSN is read whole, so a password with a space, `/`, `?` or `@` is masked to
    the `@` before the host; in other text a URL runs to the next space. When in doubt it masks more.
    """
    return _replaced(text, _password_spans(text), "***")


def scrub(text: str, dsn: str | None) -> str:
    """Remove the DSN's password from arbitrary text, e.g. a psycopg or libpq message.

    Besides the password as written, percent-decoded or unescaped, a quoted piece of the DSN that
    overlaps the password goes too: libpq quotes the token it could not parse, which may be a part of it.
    """
    if dsn:
        spans = _password_spans(dsn)
        for secret in sorted(_secrets(dsn, spans), key=len, reverse=True):
            text = text.replace(secret, "***")
        text = _QUOTED.sub(lambda m: _overlapping_token(m, dsn, spans), text)
    return mask_dsn(text)


def _replaced(text: str, spans: list[tuple[int, int]], mask: str) -> str:
    out, position = [], 0
    for start, end in spans:
        out += [text[position:start], mask]
        position = end
    return "".join(out) + text[position:]


def _password_spans(text: str) -> list[tuple[int, int]]:
    """Where passwords sit in `text` (sorted, not overlapping): a URL's userinfo password and password
    query parameters, and key=value `password=` values, quotes included."""
    if _SCHEME.match(text.strip()):
        start = len(text) - len(text.lstrip())
        return _merged(_url_spans(text, start, len(text.rstrip())))
    spans: list[tuple[int, int]] = []
    urls = [(m.start(), m.end()) for m in _URL_RUN.finditer(text)]
    for start, end in urls:
        spans += _url_spans(text, start, end)
    for match in _KV_PASSWORD.finditer(text):
        if not any(start <= match.start() < end for start, end in urls):
            spans.append(match.span("value"))
    # In a message, `password=***':` was masked already: keep the quote and colon that follow it.
    return _merged([span for span in spans if not _MASKED.fullmatch(text, *span)])


def _url_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """The password spans of the URL at text[start:end]."""
    url = text[start:end]
    head = _SCHEME.match(url)
    if head is None:
        return []
    rest_at = head.end()
    rest = url[rest_at:]
    separator = _userinfo_end(url, rest)
    spans = []
    query_from = 0
    if separator is not None:
        colon = rest.find(":", 0, separator)
        if colon >= 0:
            spans.append((start + rest_at + colon + 1, start + rest_at + separator))
        query_from = separator
    for match in _QUERY_PASSWORD.finditer(rest, query_from):
        spans.append((start + rest_at + match.start("value"), start + rest_at + match.end("value")))
    return spans


def _userinfo_end(url: str, rest: str) -> int | None:
    """The index in `rest` of the `@` that ends the URL's user:password, or None when it has none.

    When libpq reads the URL coherently (no `@` left in its host or database name) that is libpq's
    own: the first `@`, if no `/` comes before it. Otherwise the password holds a `/`, `@` or something
    libpq rejects, and it runs to the last `@`.
    """
    first_at = rest.find("@")
    if first_at < 0:
        return None
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        params = None
    if params is not None and "@" not in str(params.get("host") or "") + str(params.get("dbname") or ""):
        first_slash = rest.find("/")
        return first_at if first_slash < 0 or first_at < first_slash else None
    return rest.rfind("@")


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(span for span in spans if span[1] > span[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _secrets(dsn: str, spans: list[tuple[int, int]]) -> set[str]:
    """The DSN's passwords in every spelling a message may quote: as written, unquoted, unescaped,
    percent-decoded, and as libpq read them."""
    found: set[str] = set()
    for start, end in spans:
        raw = dsn[start:end]
        inner = raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] == "'" else raw.lstrip("'")
        unescaped = re.sub(r"\\(.)", r"\1", inner.replace("''", "'"), flags=re.DOTALL)
        found.update({raw, inner, unescaped, unquote(inner)})
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        params = {}
    found.update(str(params[key]) for key in ("password", "sslpassword") if params.get(key))
    return {secret for secret in found if secret}


def _overlapping_token(match: re.Match[str], dsn: str, spans: list[tuple[int, int]]) -> str:
    """A quoted token of a message, or *** in its quotes when it is a piece of the DSN's password."""
    token = match.group(1) if match.group(1) is not None else match.group(2)
    quote_char = match.group(0)[0]
    position = dsn.find(token)
    while position >= 0:
        if any(position < end and start < position + len(token) for start, end in spans):
            return f"{quote_char}***{quote_char}"
        position = dsn.find(token, position + 1)
    return match.group(0)


def _invalid(dsn: str, exc: BaseException) -> ConfigError:
    """The one-line error for a DSN libpq cannot parse: its message scrubbed, and how to write a password."""
    if _SCHEME.match(dsn.strip()):
        hint = "percent-encode special characters in the URL's password (space %20, / %2F, @ %40, % %25)"
    else:
        hint = r"in key=value form put the password in single quotes, writing each ' in it as \' and each \ as \\"
    return ConfigError(f"invalid DSN {mask_dsn(dsn)!r}: {scrub(_first_line(exc), dsn)}; {hint}")


def with_dbname(dsn: str, dbname: str) -> str:
    _check_dsn(dsn)  # the key=value DSN made here would lose what shows a misread password
    try:
        return make_conninfo(dsn, dbname=dbname)
    except psycopg.ProgrammingError as exc:
        raise _invalid(dsn, exc) from None


def dbname_of(dsn: str) -> str:
    _check_dsn(dsn)
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise _invalid(dsn, exc) from None
    return str(params.get("dbname") or params.get("user") or os.environ.get("PGDATABASE") or "postgres")


def sqlalchemy_url(dsn: str, driver: str = "psycopg") -> str:
    """The DSN as the URL SQLAlchemy (and Flask-SQLAlchemy, Alembic) take: `postgresql+psycopg://…`.

    A socket directory or several hosts do not fit the URL's host part: they go in its query, as
    SQLAlchemy's psycopg dialect reads them."""
    _check_dsn(dsn)
    try:
        params = {key: str(value) for key, value in conninfo_to_dict(dsn).items() if value is not None}
    except psycopg.ProgrammingError as exc:
        raise _invalid(dsn, exc) from None
    user, password = params.pop("user", ""), params.pop("password", None)
    host, port, dbname = params.pop("host", ""), params.pop("port", ""), params.pop("dbname", "")
    userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    where = ""
    if host and not host.startswith("/") and "," not in host:
        where = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    else:
        if host:
            params["host"] = host
        if port:
            params["port"] = port
    query = f"?{urlencode(sorted(params.items()))}" if params else ""
    return f"postgresql+{driver}://{userinfo}{'@' if userinfo else ''}{where}/{quote(dbname, safe='')}{query}"


def _retryable(exc: psycopg.OperationalError) -> bool:
    """Whether a failed first contact may succeed on a retry: no answer at all, or a server still starting."""
    text = str(exc)
    if "FATAL:" not in text and "ERROR:" not in text:
        return True  # refused, unreachable or timed out: the server may be on its way up
    return any(answer in text for answer in _TRANSIENT_ANSWERS)


def _check_dsn(dsn: str) -> None:
    """Refuse a DSN libpq cannot parse, or one it would misread so that a message quotes the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise _invalid(dsn, exc) from None
    if "@" in str(params.get("host") or ""):
        # libpq took the password up to its first `@` and the rest for the host: an error would echo that rest.
        raise ConfigError(  # echoing even the masked DSN would show the password's tail as the host
            "invalid DSN: the password in it holds an `@`, which ends the password in a URL; "
            "percent-encode it as %40 (and `/` as %2F)"
        )
    if "@" in _url_path(dsn):
        # `postgresql://app:pa/ss@host/db`: libpq ends the host at the `/`, so `app:pa` reads as host and
        # port and the password's tail and the real host as the database name.
        raise ConfigError(
            "invalid DSN: the password in it holds a `/`, which ends the host part of a URL; percent-encode "
            "it as %2F (and `@` as %40; an `@` in a database name also needs %40)"
        )


def _url_path(dsn: str) -> str:
    """A URL DSN's database name as written (between the host part's `/` and the `?`); '' for key=value."""
    head = _SCHEME.match(dsn.strip())
    if head is None:
        return ""
    rest = dsn.strip()[head.end():]
    slash = rest.find("/")
    if slash < 0:
        return ""
    query = rest.find("?", slash)
    return rest[slash + 1 : query if query >= 0 else len(rest)]


def connect(
    dsn: str, *, attempts: int = 3, delay_s: float = 0.5, kind: type[psycopg.Connection[Any]] = psycopg.Connection, **kwargs: Any
) -> psycopg.Connection[Any]:
    """Connect, retrying a bounded number of times while the server gives no answer or is starting up.

    This is for a connection's first contact only: a connection lost later is an error of whatever was
    running on it, never silently re-made. Errors never carry the DSN's password.
    """
    _check_dsn(dsn)
    last: psycopg.OperationalError | None = None
    for attempt in range(attempts):
        try:
            return kind.connect(dsn, connect_timeout=10, **kwargs)
        except psycopg.OperationalError as exc:
            last = exc
            if not _retryable(exc):
                break
            if attempt + 1 < attempts:
                time.sleep(delay_s * (attempt + 1))
        except psycopg.ProgrammingError as exc:
            raise _invalid(dsn, exc) from None
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

    def create(self, dbname: str, template: str | None = None, *, wait_s: float = 0.0) -> None:
        """CREATE DATABASE; with `wait_s`, retried that long while another session is briefly on the
        template (another run cloning the same database, a connection on its way out)."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.admin() as conn:  # not held between tries: on the template, it would stop the others
                try:
                    conn.execute(create_statement(dbname, template, conn.info.server_version))
                    return
                except psycopg.errors.ObjectInUse:
                    if time.monotonic() >= deadline:
                        raise DatabaseError(
                            f"cannot clone database {template!r}: other sessions are connected to it; "
                            "close them (querywarden measures on a throwaway copy so it never changes your data)"
                        ) from None
                except psycopg.Error as exc:
                    raise DatabaseError(
                        f"cannot create database {dbname!r}: {scrub(_first_line(exc), self.dsn)}; "
                        "the DSN's user needs CREATEDB"
                    ) from None
            time.sleep(0.25)

    def drop(self, dbname: str) -> None:
        with self.admin() as conn:
            try:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"cannot drop throwaway database {dbname!r}: {scrub(_first_line(exc), self.dsn)}; drop it by hand"
                ) from None

    @contextmanager
    def clone(self, template: str, prefix: str = "qw_run", *, wait_s: float = 0.0) -> Iterator[str]:
        """A uniquely named copy of `template` for the duration of the block; yields its DSN."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.create(name, template=template, wait_s=wait_s)
        try:
            yield self.dsn_for(name)
        finally:
            try:
                self.drop(name)
            except DatabaseError:
                pass
