"""The time-tracker's data access in plain psycopg 3: the code paths its test suite guards.

Every function takes an open psycopg connection. Reads leave the transaction to the caller; the two
writes (start_timer, stop_timer) commit. The SQL matches the catalog in queries.sql, which the CLI
guards; the pytest plugin guards the same statements as the application really issues them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.rows import dict_row

Row = dict[str, Any]
# The seed's "now": timers and weeks are relative to it, so results do not depend on the clock.
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


def user_by_email(conn: psycopg.Connection[Any], email: str) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            "SELECT id, workspace_id, full_name, timezone, deactivated FROM users WHERE email = %(email)s",
            {"email": email},
        )
        return cur.fetchone()


def running_timer(conn: psycopg.Connection[Any], user_id: int) -> Row | None:
    """The user's running timer, if any: shown in the header of every page."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT id, project_id, description, started_at
            FROM time_entries
            WHERE user_id = %(user_id)s AND stopped_at IS NULL
            """,
            {"user_id": user_id},
        )
        return cur.fetchone()


def recent_entries(conn: psycopg.Connection[Any], user_id: int, limit: int = 50) -> list[Row]:
    """The user's latest entries with their project, newest first: the timeline."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT te.id, te.description, te.started_at, te.stopped_at, te.duration_s, te.billable,
                   te.project_id, p.name AS project_name, p.color AS project_color
            FROM (
                SELECT id, description, started_at, stopped_at, duration_s, billable, project_id
                FROM time_entries
                WHERE user_id = %(user_id)s
                ORDER BY started_at DESC
                LIMIT %(limit)s
            ) AS te
            LEFT JOIN projects p ON p.id = te.project_id
            ORDER BY te.started_at DESC
            """,
            {"user_id": user_id, "limit": limit},
        )
        return cur.fetchall()


def week_totals(conn: psycopg.Connection[Any], user_id: int, week_start: datetime) -> list[Row]:
    """Time per project over one week, longest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT te.project_id,
                   (SELECT p.name FROM projects p WHERE p.id = te.project_id) AS project_name,
                   count(*) AS entries,
                   sum(te.duration_s) AS seconds,
                   coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
            FROM time_entries te
            WHERE te.user_id = %(user_id)s
              AND te.started_at >= %(week_start)s
              AND te.started_at < %(week_end)s
              AND te.stopped_at IS NOT NULL
            GROUP BY te.project_id
            ORDER BY seconds DESC
            """,
            {"user_id": user_id, "week_start": week_start, "week_end": week_start + timedelta(days=7)},
        )
        return cur.fetchall()


@dataclass(frozen=True)
class Dashboard:
    running: Row | None
    recent: list[Row]
    week: list[Row]


def dashboard(conn: psycopg.Connection[Any], user_id: int, today: datetime = NOW) -> Dashboard:
    """The page every user lands on: running timer, timeline and this week's totals (three queries)."""
    week_start = (today - timedelta(days=today.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return Dashboard(
        running=running_timer(conn, user_id),
        recent=recent_entries(conn, user_id, limit=20),
        week=week_totals(conn, user_id, week_start),
    )


def start_timer(
    conn: psycopg.Connection[Any],
    *,
    workspace_id: int,
    user_id: int,
    project_id: int | None,
    description: str,
    started_at: datetime,
    billable: bool = False,
) -> int:
    """Start a timer; returns the new entry's id."""
    row = conn.execute(
        """
        INSERT INTO time_entries (workspace_id, user_id, project_id, description, started_at, billable)
        VALUES (%(workspace_id)s, %(user_id)s, %(project_id)s, %(description)s, %(started_at)s, %(billable)s)
        RETURNING id
        """,
        {
            "workspace_id": workspace_id,
            "user_id": user_id,
            "project_id": project_id,
            "description": description,
            "started_at": started_at,
            "billable": billable,
        },
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def stop_timer(conn: psycopg.Connection[Any], user_id: int, stopped_at: datetime = NOW) -> tuple[int, int] | None:
    """Stop the user's running timer; returns (entry id, duration in seconds), or None if none ran."""
    row = conn.execute(
        """
        UPDATE time_entries
        SET stopped_at = %(stopped_at)s,
            duration_s = floor(extract(epoch FROM %(stopped_at)s - started_at))::int
        WHERE user_id = %(user_id)s AND stopped_at IS NULL
        RETURNING id, duration_s
        """,
        {"user_id": user_id, "stopped_at": stopped_at},
    ).fetchone()
    conn.commit()
    return None if row is None else (int(row[0]), int(row[1]))


def monthly_workspace_report(conn: psycopg.Connection[Any], workspace_id: int, month_start: datetime) -> list[Row]:
    """Hours per user and project over a month: the admin's report, rarely opened."""
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT u.id AS user_id, u.full_name, p.id AS project_id, p.name AS project_name,
                   c.name AS client_name,
                   count(*) AS entries,
                   sum(te.duration_s) AS seconds,
                   coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
            FROM time_entries te
            JOIN users u ON u.id = te.user_id
            LEFT JOIN projects p ON p.id = te.project_id
            LEFT JOIN clients c ON c.id = p.client_id
            WHERE te.workspace_id = %(workspace_id)s
              AND te.started_at >= %(month_start)s
              AND te.started_at < %(month_end)s
              AND te.stopped_at IS NOT NULL
            GROUP BY u.id, p.id, c.name
            ORDER BY u.full_name, seconds DESC
            """,
            {"workspace_id": workspace_id, "month_start": month_start, "month_end": month_end},
        )
        return cur.fetchall()
