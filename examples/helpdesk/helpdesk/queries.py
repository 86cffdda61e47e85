"""The helpdesk's code paths the tests guard: what the agent app and the customer portal call."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet

from .models import Comment, Ticket

QUEUE_SIZE = 50
PAGE_SIZE = 25


def agent_queue(agent_id: int) -> list[Ticket]:
    """The agent app's home screen, refreshed every few seconds by every agent: their open tickets,
    most urgent first, oldest first within a priority (served by ticket_agent_queue_idx)."""
    queue: QuerySet[Ticket] = Ticket.objects.filter(assignee_id=agent_id, status=Ticket.Status.OPEN).order_by(
        "-priority", "created_at"
    )
    return list(queue[:QUEUE_SIZE])


def ticket_list(customer_id: int) -> list[dict[str, object]]:
    """The customer portal's ticket page: the newest tickets with who works on each, in one query."""
    tickets = (
        Ticket.objects.filter(customer_id=customer_id)
        .select_related("customer", "assignee")
        .order_by("-created_at")[:PAGE_SIZE]
    )
    return [
        {
            "id": ticket.pk,
            "subject": ticket.subject,
            "status": ticket.status,
            "customer": ticket.customer.name,
            "assignee": ticket.assignee.name if ticket.assignee else None,
        }
        for ticket in tickets
    ]


def assign_ticket(ticket_id: int, agent_id: int, now: datetime) -> bool:
    """An agent takes a ticket: it moves to their queue and the history says so."""
    with transaction.atomic():
        moved = Ticket.objects.filter(pk=ticket_id).update(assignee_id=agent_id, status=Ticket.Status.OPEN, updated_at=now)
        if moved:
            Comment.objects.create(ticket_id=ticket_id, author_id=agent_id, body="Assigned to me.", created_at=now)
    return bool(moved)
