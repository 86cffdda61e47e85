"""Fixtures of the time-tracker's suite; querywarden's own (querywarden, querywarden_db, ...) come from the plugin."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

import app_orm

HEAVY_USER = 1187  # the heaviest user of the seed, with a running timer at any scale >= 0.06
IDLE_USER = 1  # owner of workspace 1, no running timer
BIG_WORKSPACE = 1
SECOND_WORKSPACE = 2


@pytest.fixture
def orm_session(querywarden_db_dsn: str) -> Iterator[Session]:
    """A SQLAlchemy session on this test's fresh clone of the seeded database."""
    engine = app_orm.engine_for(querywarden_db_dsn)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()
