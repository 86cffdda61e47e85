"""Facts of the seed (at the scale of pytest.ini) the bookshop's tests rely on; the fixtures
(querywarden, querywarden_session for the sync ORM, querywarden_db_url for an async engine, ...)
come from the plugin."""

from __future__ import annotations

PROLIFIC_AUTHOR = 1  # thousands of books: the author page must not read them all
BOOK = 1_234  # a few reviews; its author has dozens of other books, with reviews of their own
BIG_CUSTOMER = 1  # the shop's biggest customer: over a thousand orders
