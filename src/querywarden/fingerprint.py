"""Fingerprinting SQL: one identity for a query whatever its literals, comments, case or layout.

PostgreSQL's own queryid depends on table OIDs (it differs between two fresh databases), so it
cannot key a committed baseline. The fingerprint and the normalised text that baselines store come
from our own token form, built on `sqlscan.scan` and the standard library alone: a parser's output
changes between its releases, and two developers with different lockfiles would rewrite each
other's baselines. Every fingerprint carries FINGERPRINT_VERSION (`v1:…`), so a change of this
algorithm is a visible, reviewed migration of the committed files, never a silent one.

Only classification (read, write or refused, which is never stored) asks sqlglot for a tree.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from .sqlscan import scan, split_statements

StatementKind = Literal["read", "write", "refused"]

# Bump it, and migrate the committed baselines, whenever the token form or its rendering changes.
FINGERPRINT_VERSION = 1
_VERSIONED = re.compile(r"v(?P<version>[1-9][0-9]*):[0-9a-f]{13}")
_LEGACY = re.compile(r"[0-9a-f]{16}")  # before versions: a hash of sqlglot's output

_READ_ROOTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values)
_WRITE_NODES = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
# Functions whose effects reach outside the database (other sessions, files, servers): measuring them
# on a throwaway clone inside a rolled-back transaction would still act on the world.
UNSAFE_FUNCTIONS = frozenset(
    {
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_notify",
        "dblink",
        "dblink_exec",
        "dblink_send_query",
        "lo_import",
        "lo_export",
        "pg_file_write",
        "pg_read_file",
        # Not undone by a rollback, and allowed in a READ ONLY transaction (checked on PostgreSQL 15).
        "pg_file_unlink",
        "pg_file_rename",
        "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot",
        "pg_drop_replication_slot",
        "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot",
        "pg_replication_slot_advance",
        "pg_logical_emit_message",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_promote",
        "pg_wal_replay_pause",
        "pg_wal_replay_resume",
        "pg_stat_reset",
        "pg_stat_reset_shared",
        "pg_stat_reset_slru",
        "pg_stat_reset_single_table_counters",
        "pg_stat_reset_single_function_counters",
        "pg_stat_reset_replication_slot",
        "pg_stat_reset_subscription_stats",
        # Session-level locks outlive the rolled-back transaction (the pg_advisory_xact_* ones do not).
        "pg_advisory_lock",
        "pg_advisory_lock_shared",
        "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared",
    }
)
# sqlglot logs a warning for every statement it parses only as a generic Command; we handle those.
logging.getLogger("sqlglot").setLevel(logging.ERROR)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class SqlIdentity:
    """The normalised text of a query, its hash, what kind of statement it is, and why if refused."""

    normalized: str
    fingerprint: str
    kind: StatementKind
    refusal: str | None = None


# --- The token form: no sqlglot below this line until classification ----------------------------
#
# PostgreSQL's lexical rules, as far as they decide what a token is: whitespace is exactly these six
# characters, identifiers may hold any non-ASCII character and `$`, and only ASCII letters fold to
# lower case (Python's Unicode tables change between its versions; what the server folds does not).
_CODE_TOKEN = re.compile(
    r"(?P<space>[ \t\n\r\f\v]+)"
    r"|(?P<word>[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*)"
    r"|(?P<number>0[xX][0-9A-Fa-f_]+|0[oO][0-7_]+|0[bB][01_]+"
    r"|(?:[0-9][0-9_]*(?:\.(?!\.)[0-9_]*)?|\.[0-9][0-9_]*)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<param>\$[0-9]+|%\([^)]*\)[sbt]|%[sbt])"
    r"|(?P<percent>%%)"
    r"|(?P<op>(?:[-+*/<>=~!@#^&|`?]|%(?!\([^)]*\)[sbt]|[sbt%]))+)"
    r"|(?P<cast>::)"
    r"|(?P<other>.)",
    re.DOTALL,
)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_OPERATOR_SPECIALS = frozenset("~!@#^&|`?%")
_STRING_PREFIXES = frozenset({"e", "b", "x", "n"})  # E'…', B'…', X'…', N'…' (U&'…' is handled apart)
# After these words a `-` before a number is its sign, not a subtraction: `LIMIT -1`, `WHEN -1 THEN`.
_SIGN_AFTER = frozenset({
    "select", "where", "and", "or", "not", "limit", "offset", "then", "else", "when", "between", "like",
    "ilike", "is", "having", "on", "distinct", "all", "any", "some", "case", "by", "returning", "set",
    "fetch", "first", "next", "escape", "to", "from", "in", "values", "interval", "return", "array",
})

Token = tuple[str, str]
"""(kind, text); kinds: word (folded), ident (quoted, as written), literal (`?`), op, punct, other."""


def _pg_operator(text: str) -> str:
    """The operator PostgreSQL reads at the start of `text`.

    A multi-character operator ends in `+` or `-` only when it holds one of ~!@#^&|`?%, so the
    server reads `=-1` as `=` then `-1`; so must we, or `a=-1` and `a = -1` would differ.
    """
    if len(text) > 1 and text[-1] in "+-" and not _OPERATOR_SPECIALS.intersection(text[:-1]):
        text = text.rstrip("+-") or text[0]
    return text


def _is_sign(found: list[Token]) -> bool:
    """Whether the `-` just found (the last token) is a sign: nothing that ends a value is before it."""
    if len(found) < 2:
        return True
    kind, text = found[-2]
    if kind == "op" or (kind == "punct" and text in ("(", ",", "[")):
        return True
    return kind == "word" and text in _SIGN_AFTER


def _code_tokens(text: str, found: list[Token]) -> int:
    """Append the tokens of one code chunk; return where its last token ends (an offset into `text`)."""
    position = last_end = 0
    while position < len(text):
        match = _CODE_TOKEN.match(text, position)
        assert match is not None  # `other` matches any one character
        kind, value = match.lastgroup or "other", match.group(0)
        position = match.end()
        if kind == "space":
            continue
        if kind == "word":
            value = value.translate(_ASCII_LOWER)
            if value in ("true", "false"):
                kind, value = "literal", "?"
        elif kind == "number":
            if found and found[-1] == ("op", "-") and _is_sign(found):
                found.pop()
            kind, value = "literal", "?"
        elif kind == "param":
            kind, value = "literal", "?"
        elif kind == "percent":
            kind, value = "op", "%"  # psycopg's `%%` is the server's `%`
        elif kind == "op":
            value = _pg_operator(value)
            position = match.start() + len(value)
        elif kind == "cast" or value in "()[],;.:":
            kind = "punct"
        found.append((kind, value))
        last_end = position
    return last_end


def _collapse_in_lists(found: list[Token]) -> list[Token]:
    """`IN (?, ?, ?)` becomes `IN (?)`: the length of a list of values is data, not the query's shape.

    The items must be the same tokens and start with a literal, so an ORM's `IN (?::int, ?::int)`
    collapses too, while a list of columns, rows or subqueries stays as written.
    """
    out: list[Token] = []
    i = 0
    while i < len(found):
        out.append(found[i])
        if found[i] == ("word", "in") and found[i + 1 : i + 2] == [("punct", "(")]:
            items: list[list[Token]] = [[]]
            depth, j = 0, i + 2
            while j < len(found):
                kind, text = found[j]
                if kind == "punct" and text in (")", "]") and depth == 0:
                    break
                if kind == "punct" and text == "," and depth == 0:
                    items.append([])
                else:
                    depth += (kind == "punct" and text in ("(", "[")) - (kind == "punct" and text in (")", "]"))
                    items[-1].append(found[j])
                j += 1
            closed = j < len(found) and found[j] == ("punct", ")")
            if closed and len(items) > 1 and items[0][:1] == [("literal", "?")] and all(item == items[0] for item in items):
                out += [("punct", "("), *items[0], ("punct", ")")]
                i = j + 1
                continue
        i += 1
    return out


def sql_tokens(sql: str) -> tuple[Token, ...]:
    """The canonical tokens of `sql`, which its fingerprint hashes and its normalised text shows.

    Comments go and whitespace only separates; unquoted words fold to lower case; quoted
    identifiers stay as written; literals (strings, numbers, signed numbers, true/false) and
    placeholders ($1, %s, %(name)s) become `?`; an IN list of them becomes one; trailing `;` go.
    """
    found: list[Token] = []
    token_end = -1  # where the last token ended: a string or identifier right there may carry a prefix
    for chunk in scan(sql):
        adjacent = token_end == chunk.start
        if chunk.code:
            end = _code_tokens(chunk.text, found)
            token_end = chunk.start + end if end else token_end
            continue
        if chunk.text.startswith("'"):
            if adjacent and found and found[-1][0] == "word" and found[-1][1] in _STRING_PREFIXES:
                found.pop()
            elif adjacent and found[-2:] == [("word", "u"), ("op", "&")]:
                del found[-2:]
            found.append(("literal", "?"))
        elif chunk.text.startswith("$"):
            found.append(("literal", "?"))  # a dollar-quoted string
        elif chunk.text.startswith('"'):
            if adjacent and found[-2:] == [("word", "u"), ("op", "&")]:
                del found[-2:]
                found.append(("ident", "U&" + chunk.text))
            else:
                found.append(("ident", chunk.text))
        else:
            continue  # a comment: nothing, though it still separates the tokens around it
        token_end = chunk.start + len(chunk.text)
    while found and found[-1] == ("punct", ";"):
        found.pop()
    return tuple(_collapse_in_lists(found))


def fingerprint_of(found: tuple[Token, ...]) -> str:
    """`v<version>:` and 13 hex digits of the SHA-256 of the tokens joined by single spaces.

    Sixteen characters in all, as the sqlglot-era fingerprints were; the `v` tells them apart.
    """
    digest = hashlib.sha256(" ".join(text for _, text in found).encode("utf-8")).hexdigest()
    return f"v{FINGERPRINT_VERSION}:{digest[:13]}"


def fingerprint_version(fingerprint: str) -> int | None:
    """The algorithm version a stored fingerprint was made with: 0 for a sqlglot-era one, None if neither."""
    versioned = _VERSIONED.fullmatch(fingerprint)
    if versioned:
        return int(versioned.group("version"))
    return 0 if _LEGACY.fullmatch(fingerprint) else None


# Rendering: a line per major clause, indented by subquery, so a diff of two queries reads by clause.
_CLAUSES = frozenset({
    "select", "from", "where", "group", "having", "window", "order", "limit", "offset", "fetch", "for",
    "union", "intersect", "except", "values", "set", "returning", "join",
})
_JOIN_WORDS = frozenset({"left", "right", "full", "inner", "cross", "natural"})
_NO_BREAK_AFTER = {
    "from": frozenset({"distinct", "delete"}),  # IS DISTINCT FROM, DELETE FROM
    "join": frozenset({"left", "right", "full", "inner", "cross", "natural", "outer"}),
    "select": frozenset({"all", "distinct", "union", "intersect", "except"}),
}
_QUERY_STARTS = frozenset({"select", "with", "values", "insert", "update", "delete", "table"})
# A `(` after these words opens a list or a subquery, not a function's arguments: it gets a space.
_SPACED_BEFORE_PAREN = frozenset({
    "in", "as", "from", "join", "exists", "values", "using", "on", "and", "or", "not", "where", "over",
    "filter", "select", "union", "intersect", "except", "all", "then", "else", "when", "by", "with",
    "into", "set", "returning", "lateral", "having", "distinct", "is", "case", "between", "like", "ilike",
    "conflict", "do", "limit", "offset",
})


def _breaks_before(found: tuple[Token, ...], i: int) -> bool:
    kind, text = found[i]
    if kind != "word" or i == 0:
        return False
    before = found[i - 1][1] if found[i - 1][0] == "word" else ""
    if text in _JOIN_WORDS:  # LEFT JOIN, but not the function left(name, 3)
        after = found[i + 1][1] if i + 1 < len(found) and found[i + 1][0] == "word" else ""
        return after in ("join", "outer") and before not in _JOIN_WORDS
    return text in _CLAUSES and before not in _NO_BREAK_AFTER.get(text, ())


def render(found: tuple[Token, ...]) -> str:
    """The tokens as readable SQL text (never executed; it is for reports and for reviewers)."""
    out: list[str] = []
    query_parens: list[bool] = []  # per open bracket: whether it holds a subquery
    for i, (kind, text) in enumerate(found):
        level = sum(query_parens)
        at_query_level = not query_parens or query_parens[-1]
        previous = found[i - 1] if i else None
        if previous is None:
            gap = ""
        elif previous == ("punct", "(") and query_parens and query_parens[-1]:
            gap = "\n" + "  " * level
        elif (kind, text) == ("punct", ")") and query_parens and query_parens[-1]:
            gap = "\n" + "  " * (level - 1)
        elif at_query_level and _breaks_before(found, i):
            gap = "\n" + "  " * level
        elif kind == "punct" and text in (")", "]", ",", ".", "::", ";", "["):
            gap = ""
        elif previous[0] == "punct" and previous[1] in ("(", "[", ".", "::"):
            gap = ""
        elif (kind, text) == ("punct", "(") and (
            previous[0] == "ident" or (previous[0] == "word" and previous[1] not in _SPACED_BEFORE_PAREN)
        ):
            gap = ""
        else:
            gap = " "
        out.append(gap + text)
        if kind == "punct" and text in ("(", "["):
            following = found[i + 1] if i + 1 < len(found) else ("", "")
            query_parens.append(text == "(" and following[0] == "word" and following[1] in _QUERY_STARTS)
        elif kind == "punct" and text in (")", "]") and query_parens:
            query_parens.pop()
    return "".join(out)


# --- Classification (sqlglot: its answer is never stored) ------------------------------------------


def _first_word(sql: str) -> str:
    for chunk in scan(sql):
        if chunk.code and chunk.text.strip():
            return chunk.text.split()[0].upper()
    return "EMPTY"


def _classify(tree: exp.Expression, sql: str) -> tuple[StatementKind, str | None]:
    root = tree.this if isinstance(tree, exp.With) else tree
    if any(True for _ in tree.find_all(*_WRITE_NODES)):
        kind: StatementKind = "write"
    elif isinstance(root, _READ_ROOTS):
        kind = "read"
    else:
        return "refused", f"{_first_word(sql)} statements cannot be measured and rolled back safely"
    return kind, None


def _classify_text(sql: str) -> tuple[StatementKind, str | None]:
    """For text sqlglot cannot parse: its first word decides."""
    first = _first_word(sql)
    if first in ("SELECT", "WITH", "VALUES", "TABLE"):
        return "read", None
    if first in ("INSERT", "UPDATE", "DELETE", "MERGE"):
        return "write", None
    return "refused", f"{first} statements cannot be measured and rolled back safely"


def _unsafe_function(sql: str) -> str | None:
    for chunk in scan(sql):
        if chunk.code:
            for match in _WORD.finditer(chunk.text):
                if match.group(0).lower() in UNSAFE_FUNCTIONS:
                    return match.group(0).lower()
        elif chunk.text.startswith('"') and chunk.text[1:-1].replace('""', '"') in UNSAFE_FUNCTIONS:
            return chunk.text[1:-1]  # a quoted name calls the same function: "pg_terminate_backend"(pid)
    return None


def classify(sql: str) -> tuple[StatementKind, str | None]:
    """Read, write or refused (and why): what decides how, and whether, a statement is measured."""
    count = len(split_statements(sql))
    if count > 1:
        # What the server would run as one call is several statements: the first one's kind says nothing
        # about the rest (`SELECT 1; DELETE FROM t`).
        return "refused", f"it holds {count} statements, and querywarden measures one at a time"
    try:
        # A comment after the last `;` parses as a statement of its own (a Semicolon): it is not one.
        trees = [
            tree for tree in sqlglot.parse(sql, read="postgres")
            if isinstance(tree, exp.Expression) and not isinstance(tree, exp.Semicolon)
        ]
        if len(trees) != 1 or isinstance(trees[0], exp.Command):
            kind, refusal = _classify_text(sql)
        else:
            kind, refusal = _classify(trees[0], sql)
    except (SqlglotError, RecursionError):  # unparseable, or nested deeper than the parser recurses
        kind, refusal = _classify_text(sql)
    unsafe = _unsafe_function(sql)
    if unsafe and kind != "refused":
        return "refused", f"it calls {unsafe}(), whose effects a rollback does not undo"
    return kind, refusal


@functools.lru_cache(maxsize=4096)  # a run asks about each query several times; parsing is the cost
def identify(sql: str) -> SqlIdentity:
    """Normalise, fingerprint and classify one statement."""
    found = sql_tokens(sql)
    kind, refusal = classify(sql)
    return SqlIdentity(render(found), fingerprint_of(found), kind, refusal)
