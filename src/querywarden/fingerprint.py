"""Fingerprinting SQL: one identity for a query whatever its literals, comments, case or layout.

PostgreSQL's own queryid depends on table OIDs (it differs between two fresh databases), so it
cannot key a committed baseline. sqlglot parses the text instead; its output is for display and
hashing only and is never executed (it rewrites `::` casts and some functions).
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
        elif chunk.text.startswith('"') and chunk.text[1:-1].replace('""', '"') in UNSAFE_FUNCTIONS:
            return chunk.text[1:-1]  # a quoted name calls the same function: "pg_terminate_backend"(pid)
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


@functools.lru_cache(maxsize=4096)  # a run asks about each query several times; parsing is the cost
def identify(sql: str) -> SqlIdentity:
    """Normalise, fingerprint and classify one statement."""
    try:
        # A comment after the last `;` parses as a statement of its own (a Semicolon): it is not one.
        trees = [tree for tree in sqlglot.parse(sql, read="postgres") if tree is not None and not isinstance(tree, exp.Semicolon)]
        if len(trees) != 1 or isinstance(trees[0], exp.Command):
            identity = _fallback(sql)
        else:
            tree = normalize_identifiers(trees[0].transform(_placeholder), dialect="postgres")
            compact = tree.sql(dialect="postgres", comments=False)
            kind, refusal = _classify(tree, sql)
            identity = SqlIdentity(tree.sql(dialect="postgres", comments=False, pretty=True), _hash(compact), kind, refusal)
    except (SqlglotError, RecursionError):  # unparseable, or nested deeper than the parser recurses
        identity = _fallback(sql)
    unsafe = _unsafe_function(sql)
    if unsafe and identity.kind != "refused":
        return SqlIdentity(
            identity.normalized,
            identity.fingerprint,
            "refused",
            f"it calls {unsafe}(), whose effects a rollback does not undo",
        )
    return identity
