"""notebook: a small multi-tenant note app whose SQL lives in aiosql files.

The queries are loaded with the real aiosql (`aiosql.from_path("sql", "psycopg")`) and run on a
psycopg 3 connection. The same files are querywarden's catalog, unchanged:

    querywarden check --catalog examples/notebook/sql --baselines baselines/notebook \
        --schema examples/notebook/schema.sql --seed examples/notebook/seed.sql

and the tests in tests/ guard the app's code paths with the querywarden pytest plugin, which
captures the statements aiosql sends through the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosql
import psycopg

SQL = Path(__file__).resolve().parent / "sql"
queries = aiosql.from_path(SQL, "psycopg")


@dataclass(frozen=True)
class Note:
    id: int
    title: str
    updated_at: datetime


@dataclass(frozen=True)
class Sidebar:
    count: int
    recent: list[Note]


def sidebar(conn: psycopg.Connection[Any], tenant_id: int) -> Sidebar:
    """The page every user lands on: how many notes the tenant has and its latest ones (two queries)."""
    count = queries.count_notes(conn, tenant_id=tenant_id)
    recent = [Note(*row) for row in queries.recent_notes(conn, tenant_id=tenant_id)]
    return Sidebar(count, recent)


def note(conn: psycopg.Connection[Any], note_id: int) -> dict[str, Any] | None:
    row = queries.get_note(conn, note_id=note_id)
    if row is None:
        return None
    return dict(zip(("id", "tenant_id", "title", "body", "updated_at"), row))


def tagged(conn: psycopg.Connection[Any], tenant_id: int, tag: str) -> list[Note]:
    return [Note(*row) for row in queries.tags.notes_tagged(conn, tenant_id=tenant_id, tag=tag)]


def search(conn: psycopg.Connection[Any], tenant_id: int, pattern: str) -> list[tuple[int, str, str]]:
    return list(queries.search_titles(conn, tenant_id=tenant_id, pattern=pattern))


def add_note(conn: psycopg.Connection[Any], tenant_id: int, title: str, body: str) -> int:
    """Write a note and commit it."""
    note_id = queries.add_note(conn, tenant_id=tenant_id, title=title, body=body)  # `<!`: the RETURNING value
    conn.commit()
    return int(note_id)


def archive(conn: psycopg.Connection[Any], note_id: int) -> None:
    queries.archive_note(conn, note_id=note_id)
    conn.commit()


def tag_names(conn: psycopg.Connection[Any], tenant_id: int) -> list[str]:
    return [name for (name,) in queries.tags.tag_names(conn, tenant_id=tenant_id)]
