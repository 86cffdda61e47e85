"""Fingerprinting SQL: one identity for a query whatever its literals, comments, case or layout.

PostgreSQL's own queryid depends on table OIDs (it differs between two fresh databases), so it
cannot key a committed baseline. sqlglot parses the text instead; its output is for display and
hashing only and is never executed (it rewrites `::` casts and some functions).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from .sqlscan import scan

StatementKind = Literal["read", "write", "refused"]

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


def _placeholder(node: exp.Expression) -> exp.Expression:
    if isinstance(node, (exp.Literal, exp.Boolean, exp.Parameter, exp.Placeholder)):
        return exp.Placeholder()
    if isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal):
        return exp.Placeholder()
    if isinstance(node, exp.In) and node.expressions:
        node.set("expressions", [exp.Placeholder()])
    return node


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


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


def _unsafe_function(sql: str) -> str | None:
    for chunk in scan(sql):
        if chunk.code:
            for match in _WORD.finditer(chunk.text):
                if match.group(0).lower() in UNSAFE_FUNCTIONS:
                    return match.group(0).lower()
    return None


def _fallback(sql: str) -> SqlIdentity:
    """For text sqlglot cannot parse: strip comments, mask literals, fold case and spaces."""
    pieces = []
    for chunk in scan(sql):
        if chunk.code:
            pieces.append(re.sub(r"\b\d+(\.\d+)?\b", "?", chunk.text.lower()))
        elif chunk.text.startswith("'"):
            pieces.append("?")
        elif chunk.text.startswith('"') or chunk.text.startswith("$"):
            pieces.append(chunk.text)
    normalized = " ".join("".join(pieces).split()).rstrip(";").strip()
    first = _first_word(sql)
    if first in ("SELECT", "WITH", "VALUES", "TABLE"):
        kind: StatementKind = "read"
    elif first in ("INSERT", "UPDATE", "DELETE", "MERGE"):
        kind = "write"
    else:
        return SqlIdentity(normalized, _hash(normalized), "refused", f"{first} statements cannot be measured and rolled back safely")
    return SqlIdentity(normalized, _hash(normalized), kind)


def identify(sql: str) -> SqlIdentity:
    """Normalise, fingerprint and classify one statement."""
    try:
        trees = [tree for tree in sqlglot.parse(sql, read="postgres") if tree is not None]
    except SqlglotError:
        identity = _fallback(sql)
    else:
        if len(trees) != 1 or isinstance(trees[0], exp.Command):
            identity = _fallback(sql)
        else:
            tree = normalize_identifiers(trees[0].transform(_placeholder), dialect="postgres")
            compact = tree.sql(dialect="postgres", comments=False)
            kind, refusal = _classify(tree, sql)
            identity = SqlIdentity(tree.sql(dialect="postgres", comments=False, pretty=True), _hash(compact), kind, refusal)
    unsafe = _unsafe_function(sql)
    if unsafe and identity.kind != "refused":
        return SqlIdentity(
            identity.normalized,
            identity.fingerprint,
            "refused",
            f"it calls {unsafe}(), whose effects a rollback does not undo",
        )
    return identity
