"""The helpdesk's hot code paths, each guarded against query regressions by querywarden.

Each test uses pytest-django's `db` (a transaction rolled back after the test, on a clone of the
seeded database) and runs a code path of helpdesk/queries.py inside `querywarden.capture(connection)`.
After the test the plugin measures every statement the path issued and compares the path with its
baseline in baselines/helpdesk-tests/: a plan that reads more (a dropped index), more statements (an
N+1 loop through the ORM) fails a hot path's test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection

from conftest import BIG_CUSTOMER, BUSY_AGENT
from helpdesk.models import Agent, Comment, Customer, Ticket
from helpdesk.queries import PAGE_SIZE, QUEUE_SIZE, agent_queue, assign_ticket, ticket_list
from querywarden.plugin import Querywarden

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
# Few: where PostgreSQL puts a test's new rows (a page with room, or a new one) varies from run to run,
# and each heap page the queue then reads is a buffer the baseline compares.
NEW_TICKETS = 6


@pytest.mark.hot_path(calls_per_minute=30000)
def test_agent_queue(querywarden: Querywarden, db: None) -> None:
    with querywarden.capture(connection) as captured:
        queue = agent_queue(BUSY_AGENT)
    assert len(queue) == QUEUE_SIZE
    assert all(ticket.status == "open" and ticket.assignee_id == BUSY_AGENT for ticket in queue)
    order = [(-ticket.priority, ticket.created_at) for ticket in queue]
    assert order == sorted(order)
    assert len(captured) == 1


@pytest.mark.hot_path(calls_per_minute=8000)
def test_ticket_list(querywarden: Querywarden, db: None) -> None:
    # One statement joins tickets, customers and assignees; the baseline counts the statements, so a
    # lost select_related (an N+1 loop over the page) blocks this test without an assertion here.
    with querywarden.capture(connection):
        page = ticket_list(BIG_CUSTOMER)
    assert len(page) == PAGE_SIZE
    assert {row["customer"] for row in page} == {f"Customer {BIG_CUSTOMER}"}
    assert any(row["assignee"] for row in page)


@pytest.mark.hot_path(calls_per_minute=30000)
def test_queue_of_a_new_agent(querywarden: Querywarden, db: None) -> None:
    """The rows this queue shows exist only in the test's transaction: they are measured there."""
    agent = Agent.objects.create(name="New Agent", email="new.agent@helpdesk.example.com", team="billing")
    customer = Customer.objects.create(name="New Customer", email="new@example.com", created_at=NOW)
    for number in range(NEW_TICKETS + 2):
        Ticket.objects.create(
            customer=customer, assignee=agent, subject=f"Question {number}",
            status="open" if number < NEW_TICKETS else "solved", priority=1 + number % 4,
            created_at=NOW - timedelta(hours=number), updated_at=NOW,
        )
    with querywarden.capture(connection):
        queue = agent_queue(agent.pk)
    assert len(queue) == NEW_TICKETS
    assert {ticket.subject for ticket in queue} == {f"Question {number}" for number in range(NEW_TICKETS)}


@pytest.mark.hot_path(calls_per_minute=400)
def test_assign_ticket(querywarden: Querywarden, db: None) -> None:
    # Last: its writes are measured in the test's transaction and rolled back, but the row versions
    # they made stay in the clone's heap, where they would move the rows a later test inserts.
    ticket = Ticket.objects.filter(assignee__isnull=True).order_by("pk").first()
    assert ticket is not None
    with querywarden.capture(connection):
        assert assign_ticket(ticket.pk, BUSY_AGENT, NOW)
    ticket.refresh_from_db()
    assert (ticket.assignee_id, ticket.status) == (BUSY_AGENT, "open")
    assert Comment.objects.filter(ticket=ticket, author_id=BUSY_AGENT).count() == 1
