"""pytest-django's test database is querywarden's seeded one; facts of the seed the tests rely on."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def django_db_setup(querywarden_django_db_setup: None) -> None:
    """pytest-django's test database is querywarden's seeded one."""


BUSY_AGENT = 7  # about a hundred open tickets: a full queue
BIG_CUSTOMER = 1  # the largest account (the seed draws customers with a power law)
