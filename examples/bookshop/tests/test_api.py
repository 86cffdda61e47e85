"""The async API's hot paths (bookshop/api.py), guarded by querywarden like the sync ones.

Each test gets an `AsyncEngine` on its own fresh clone of the seeded database (`async_engine` in
conftest.py, on the plugin's `querywarden_db_url`) and captures the `AsyncSession` the API runs
on; the calling line in the baseline is the API's own `await`.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bookshop.api import RECENT_ORDERS, make_sessionmaker, recent_orders
from bookshop.models import Customer, Order
from conftest import BIG_CUSTOMER, BOOK
from querywarden.plugin import Querywarden

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
COMMITTED_ORDERS, FLUSHED_ORDERS = 5, 3


@pytest.mark.hot_path(calls_per_minute=15000)
async def test_recent_orders(querywarden: Querywarden, async_engine: AsyncEngine) -> None:
    async with make_sessionmaker(async_engine)() as session:
        with querywarden.capture(session) as captured:
            orders = await recent_orders(session, BIG_CUSTOMER)
    assert len(orders) == RECENT_ORDERS
    assert [order["created_at"] for order in orders] == sorted((order["created_at"] for order in orders), reverse=True)
    assert all(order["title"].startswith("Book ") for order in orders)
    assert len(captured) == 1  # the books come in the same statement (joinedload)


@pytest.mark.hot_path(calls_per_minute=15000)
async def test_recent_orders_of_a_new_customer(querywarden: Querywarden, async_engine: AsyncEngine) -> None:
    """A customer with orders the test commits on its own clone, and more it has only flushed: the
    API's statement is measured in the session's open transaction, on all of them."""
    async with make_sessionmaker(async_engine)() as session:
        customer = Customer(name="New Customer", email="new.customer@example.com")
        session.add(customer)
        await session.flush()
        session.add_all(_orders(customer.id, range(COMMITTED_ORDERS)))
        await session.commit()  # really committed: the clone is this test's alone
        session.add_all(_orders(customer.id, range(COMMITTED_ORDERS, COMMITTED_ORDERS + FLUSHED_ORDERS)))
        await session.flush()
        with querywarden.capture(session):
            orders = await recent_orders(session, customer.id)
    assert len(orders) == COMMITTED_ORDERS + FLUSHED_ORDERS


def _orders(customer_id: int, hours: range) -> list[Order]:
    return [
        Order(customer_id=customer_id, book_id=BOOK, quantity=1, total_cents=1500, status="paid",
              created_at=NOW - timedelta(hours=hour))
        for hour in hours
    ]
