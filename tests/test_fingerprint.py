"""Fingerprints ignore literals, comments, case and layout; classification refuses what cannot be undone."""

from __future__ import annotations

import pytest

from querywarden.fingerprint import identify


def test_same_fingerprint_for_values_whitespace_comments_case_and_placeholder_style() -> None:
    variants = [
        "SELECT abalance FROM accounts WHERE aid = %(aid)s",
        "select  abalance\n  from ACCOUNTS -- lookup\n where AID = 42",
        "SELECT abalance FROM accounts WHERE aid = $1 /* hi */",
        "SELECT abalance FROM accounts WHERE aid = %s;",
    ]
    assert len({identify(v).fingerprint for v in variants}) == 1


def test_in_lists_of_any_length_share_a_fingerprint() -> None:
    assert identify("SELECT 1 FROM t WHERE a IN (1, 2, 3)").fingerprint == identify(
        "SELECT 1 FROM t WHERE a IN (%s)"
    ).fingerprint


def test_structurally_different_queries_differ() -> None:
    assert identify("SELECT a FROM t WHERE b = 1").fingerprint != identify("SELECT a FROM t WHERE c = 1").fingerprint
    assert identify("SELECT a FROM t").fingerprint != identify("SELECT a FROM t ORDER BY a").fingerprint


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "read"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", "read"),
        ("SELECT 1 UNION SELECT 2", "read"),
        ("UPDATE t SET a = 1 WHERE id = %s RETURNING id", "write"),
        ("INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING", "write"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d", "write"),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a", "write"),
    ],
)
def test_classification(sql: str, kind: str) -> None:
    assert identify(sql).kind == kind


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("VACUUM t", "VACUUM statements"),
        ("CREATE INDEX i ON t (a)", "CREATE statements"),
        ("DROP TABLE t", "DROP statements"),
        ("NOTIFY channel", "NOTIFY statements"),
        ("COPY t TO PROGRAM 'cat'", "COPY statements"),
        ("SELECT pg_terminate_backend(42)", "pg_terminate_backend()"),
        ("SELECT dblink_exec('db', 'DELETE FROM t')", "dblink_exec()"),
    ],
)
def test_refused_statements_say_why(sql: str, why: str) -> None:
    identity = identify(sql)
    assert identity.kind == "refused"
    assert identity.refusal is not None and why in identity.refusal
