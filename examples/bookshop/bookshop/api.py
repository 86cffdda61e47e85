"""The shop's async JSON API: SQLAlchemy 2's asyncio extension on psycopg 3 (`create_async_engine`
takes the same `postgresql+psycopg://` URL as the sync engine)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import joinedload

from .models import Order

RECENT_ORDERS = 10


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    return create_async_engine(url, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def recent_orders(session: AsyncSession, customer_id: int) -> list[dict[str, Any]]:
    """A customer's latest orders with their books' titles (orders_customer_created_idx): one statement."""
    result = await session.scalars(
        select(Order)
        .where(Order.customer_id == customer_id)
        .order_by(Order.created_at.desc())
        .limit(RECENT_ORDERS)
        .options(joinedload(Order.book))
    )
    return [
        {"id": order.id, "title": order.book.title, "quantity": order.quantity,
         "total_cents": order.total_cents, "status": order.status, "created_at": order.created_at}
        for order in result
    ]
