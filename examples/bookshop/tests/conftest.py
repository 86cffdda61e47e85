"""Facts of the seed (at the scale of pytest.ini) the bookshop's tests rely on; the fixtures
(querywarden, querywarden_session for the sync ORM, querywarden_db_url for an async engine, ...)
come from the plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import NullPool

from bookshop.api import make_engine

PROLIFIC_AUTHOR = 1  # thousands of books: the author page must not read them all
BOOK = 1_234  # a few reviews; its author has dozens of other books, with reviews of their own
BIG_CUSTOMER = 1  # the shop's biggest customer: over a thousand orders


@pytest.fixture
async def async_engine(querywarden_db_url: str) -> AsyncIterator[AsyncEngine]:
    """The API's asyncio engine on this test's own clone of the seeded database (the same
    `postgresql+psycopg://` URL: create_async_engine picks psycopg's async dialect)."""
    engine = make_engine(querywarden_db_url, poolclass=NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()
