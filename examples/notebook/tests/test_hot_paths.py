"""The notebook's hot code paths, run through the real aiosql and guarded by the querywarden plugin.

aiosql sends its statements through the psycopg connection it is given, so `querywarden.capture`
records them like any other: after each test the plugin measures them and compares the path with
its baseline in baselines/notebook-tests/ (a slower plan, more blocks read or an extra statement
fails a hot path's test).
"""

from __future__ import annotations

import psycopg
import pytest

import app
from conftest import BIG_TENANT, BIG_TENANTS_NOTE, TYPICAL_TENANT
from querywarden.plugin import Querywarden


@pytest.mark.hot_path(calls_per_minute=9000)
def test_sidebar_of_the_big_tenant(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db) as captured:
        page = app.sidebar(querywarden_db, BIG_TENANT)
    assert page.count == 9600
    assert len(page.recent) == 20
    assert len(captured) == 2  # the count and the list, one statement each


@pytest.mark.hot_path(calls_per_minute=9000)
def test_sidebar_of_a_typical_tenant(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db):
        page = app.sidebar(querywarden_db, TYPICAL_TENANT)
    assert 0 < page.count < 30


@pytest.mark.hot_path(calls_per_minute=6000)
def test_note_page(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    with querywarden.capture(querywarden_db):
        found = app.note(querywarden_db, BIG_TENANTS_NOTE)
    assert found is not None and found["tenant_id"] == BIG_TENANT


@pytest.mark.hot_path(calls_per_minute=1500)
def test_tagged_notes_of_the_big_tenant(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    """A query from sql/tags/, which aiosql names tags.notes_tagged."""
    with querywarden.capture(querywarden_db):
        notes = app.tagged(querywarden_db, BIG_TENANT, "home")
    assert len(notes) == 20


@pytest.mark.hot_path(calls_per_minute=120)
def test_add_and_archive_a_note(querywarden: Querywarden, querywarden_db: psycopg.Connection) -> None:
    """Writes are measured on this test's own transaction, and rolled back with it."""
    with querywarden.capture(querywarden_db):
        note_id = app.add_note(querywarden_db, TYPICAL_TENANT, "Standup", "Notes from the standup")
        app.archive(querywarden_db, note_id)
    assert app.note(querywarden_db, note_id) is not None
