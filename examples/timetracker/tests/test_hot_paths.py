"""The time-tracker's hot code paths, each guarded against query regressions by querywarden.

Each test runs a code path on a fresh clone of the seeded database inside `querywarden.capture`.
After the test the plugin measures every statement the path issued and compares the path with its
baseline in baselines/timetracker-tests/: a slower plan, more blocks read or more statements (an
N+1 loop) fails a hot path's test; on a rare path it is reported as a warning.
"""

from __future__ import annotations

from datetime import datetime, timezone

import psycopg
import pytest
from sqlalchemy.orm import Session

import app
import app_orm
from conftest import BIG_WORKSPACE, HEAVY_USER, IDLE_USER, SECOND_WORKSPACE
from querywarden.plugin import Querywarden


@pytest.mark.hot_path(calls_per_minute=20000)
def test_running_timer(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db):
        timer = app.running_timer(querywarden_db, HEAVY_USER)
    assert timer is not None


@pytest.mark.hot_path(calls_per_minute=12000)
def test_dashboard(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db) as captured:
        page = app.dashboard(querywarden_db, HEAVY_USER)
    assert page.running is not None
    assert len(page.recent) == 20
    assert len(captured) == 3  # running timer, timeline, week totals: one statement each


@pytest.mark.hot_path(calls_per_minute=400)
def test_start_timer(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db):
        entry = app.start_timer(
            querywarden_db,
            workspace_id=BIG_WORKSPACE,
            user_id=IDLE_USER,
            project_id=1,
            description="Sprint planning",
            started_at=app.NOW,
            billable=True,
        )
    assert app.running_timer(querywarden_db, IDLE_USER) == {
        "id": entry,
        "project_id": 1,
        "description": "Sprint planning",
        "started_at": app.NOW,
    }


@pytest.mark.hot_path(calls_per_minute=400)
def test_stop_timer(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db):
        stopped = app.stop_timer(querywarden_db, HEAVY_USER)
    assert stopped is not None
    assert app.running_timer(querywarden_db, HEAVY_USER) is None


@pytest.mark.hot_path(calls_per_minute=2500)
def test_active_projects_orm(querywarden: Querywarden, querywarden_session: Session) -> None:
    with querywarden.capture(querywarden_session) as captured:
        projects = app_orm.active_projects(querywarden_session, SECOND_WORKSPACE)
        names = [(project.name, project.client.name if project.client else None) for project in projects]
    assert names
    assert len(captured) == 2  # the projects, then their clients in one IN (...) query


@pytest.mark.hot_path(calls_per_minute=2)
def test_monthly_report(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db):
        rows = app.monthly_workspace_report(querywarden_db, BIG_WORKSPACE, datetime(2026, 5, 1, tzinfo=timezone.utc))
    assert rows
