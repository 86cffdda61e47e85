"""A support desk: customers open tickets, agents work them from their queue and comment on them."""

from django.db import models


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    plan = models.CharField(max_length=20, default="free")
    created_at = models.DateTimeField()


class Agent(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(unique=True)
    team = models.CharField(max_length=50)
    active = models.BooleanField(default=True)


class Ticket(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        PENDING = "pending"
        SOLVED = "solved"
        CLOSED = "closed"

    # The foreign keys are served by the composite indexes below (their leading column), so Django's
    # own single-column indexes on them would only be written, never read.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="tickets", db_index=False)
    assignee = models.ForeignKey(
        Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="tickets", db_index=False
    )
    subject = models.CharField(max_length=300)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    priority = models.SmallIntegerField(default=2)  # 1 low .. 4 urgent
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            # an agent's queue: their open tickets, most urgent and oldest first
            models.Index(fields=["assignee", "status", "-priority", "created_at"], name="ticket_agent_queue_idx"),
            # a customer's ticket list, newest first
            models.Index(fields=["customer", "-created_at"], name="ticket_customer_recent_idx"),
        ]


class Comment(models.Model):
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="comments")
    body = models.TextField()
    created_at = models.DateTimeField()
