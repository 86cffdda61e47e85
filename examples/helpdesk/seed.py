"""The helpdesk's seed: a few thousand customers, a support team, tens of thousands of tickets.

Loaded by querywarden after the schema (the app's migrations) into a template database that every
test's database is cloned from; `kit` makes it deterministic (a fixed random() sequence, rows in
id order), so every rebuild has the same rows and the planner the same statistics.

Shape at scale 1: 4,000 customers (a few large accounts open most tickets), 150 agents, 60,000
tickets (a quarter open, one in ten unassigned), 90,000 comments. Timestamps count back from a
fixed "now", 2026-06-01 00:00 UTC, in ticket id order, as a real append-mostly table lies.
"""

from __future__ import annotations

from typing import Any

import psycopg

from querywarden.seeding.kit import SeedKit, skewed_sql

NOW = "timestamptz '2026-06-01 00:00:00+00'"


def seed(conn: psycopg.Connection[Any], *, kit: SeedKit) -> None:
    customers, agents = kit.scaled(4_000), kit.scaled(150, minimum=10)
    tickets, comments = kit.scaled(60_000), kit.scaled(90_000)
    kit.setseed()
    kit.generate("helpdesk_customer", {
        "name": "'Customer ' || g",
        "email": "'customer' || g || '@example.com'",
        "plan": "(ARRAY['free', 'team', 'business', 'enterprise'])[1 + g %% 4]",
        "created_at": f"{NOW} - make_interval(days => (g %% 900)::int + 30)",
    }, customers)
    kit.generate("helpdesk_agent", {
        "name": "'Agent ' || g",
        "email": "'agent' || g || '@helpdesk.example.com'",
        "team": "(ARRAY['billing', 'technical', 'onboarding'])[1 + g %% 3]",
        "active": "g %% 25 <> 0",
    }, agents)
    kit.generate("helpdesk_ticket", {
        "customer_id": skewed_sql(customers, 2.5),
        "assignee_id": f"CASE WHEN random() < 0.1 THEN NULL ELSE 1 + floor(random() * {agents})::bigint END",
        "subject": "'Ticket ' || g || ': ' || (ARRAY['cannot log in', 'invoice is wrong', 'export fails', "
                   "'feature request', 'slow dashboard'])[1 + g %% 5]",
        "status": "(ARRAY['open', 'pending', 'solved', 'closed'])[1 + floor(random() * 4)::int]",
        "priority": "1 + floor(power(random(), 2) * 4)::smallint",
        "created_at": f"{NOW} - make_interval(mins => ({tickets} - g)::int * 7)",
        "updated_at": f"{NOW} - make_interval(mins => ({tickets} - g)::int * 7) + interval '3 hours'",
    }, tickets)
    kit.generate("helpdesk_comment", {
        "ticket_id": f"1 + floor(random() * {tickets})::bigint",
        "author_id": f"CASE WHEN random() < 0.4 THEN NULL ELSE 1 + floor(random() * {agents})::bigint END",
        "body": "'Comment ' || g",
        "created_at": f"{NOW} - make_interval(mins => ({comments} - g)::int * 5)",
    }, comments)
