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


# --- The token form the fingerprint hashes ---------------------------------------------------------


def fp(sql: str) -> str:
    return identify(sql).fingerprint


def test_every_kind_of_literal_is_one_placeholder() -> None:
    plain = fp("SELECT a FROM t WHERE b = %s")
    for literal in ("'x'", "E'it\\'s'", "e'a\\\\'", "$$x$$", "$tag$ ' $tag$", "B'0101'", "X'1F'", "N'x'", "U&'d\\0061t'",
                    "42", "4.2", ".5", "1e-3", "0x1F", "1_000", "-7", "- 7", "TRUE", "false", "$1", "%(b)s"):
        assert fp(f"SELECT a FROM t WHERE b = {literal}") == plain, literal
    assert fp("SELECT a FROM t WHERE b=-1") == plain  # the server reads `=-` as `=` then `-1`


def test_a_minus_after_a_value_is_a_subtraction_not_a_sign() -> None:
    assert identify("SELECT a - 1 FROM t").normalized == "select a - ?\nfrom t"
    assert identify("SELECT a, -1 FROM t LIMIT -1").normalized == "select a, ?\nfrom t\nlimit ?"
    assert fp("SELECT a - 1 FROM t") != fp("SELECT a, 1 FROM t")


def test_quoted_identifiers_and_non_ascii_letters_keep_their_case() -> None:
    # As PostgreSQL folds: only unquoted ASCII letters; "Users" and users are different tables.
    assert fp('SELECT a FROM "Users"') != fp("SELECT a FROM users")
    assert fp('SELECT a FROM "Users"') == fp('select A from "Users"')
    assert fp("SELECT Ä FROM t") != fp("SELECT ä FROM t")
    assert fp("SELECT Ab FROM t") == fp("SELECT aB FROM t")


def test_in_lists_collapse_only_when_they_are_lists_of_values() -> None:
    orm = "SELECT 1 FROM t WHERE id IN (%(pk_1)s::INTEGER, %(pk_2)s::INTEGER, %(pk_3)s::INTEGER)"
    assert fp(orm) == fp("SELECT 1 FROM t WHERE id IN (%(pk_1)s::INTEGER)")
    assert identify(orm).normalized == "select ?\nfrom t\nwhere id in (?::integer)"
    assert fp("SELECT 1 FROM t WHERE id IN (a, b)") != fp("SELECT 1 FROM t WHERE id IN (a)")
    assert fp("SELECT 1 FROM t WHERE id IN (1, a)") != fp("SELECT 1 FROM t WHERE id IN (1)")
    assert fp("SELECT 1 FROM t WHERE (a, b) IN ((1, 2), (3, 4))") != fp("SELECT 1 FROM t WHERE (a, b) IN ((1, 2))")


def test_psycopg_percent_escape_and_trailing_semicolons() -> None:
    assert fp("SELECT a %% 2 FROM t") == fp("SELECT a % 2 FROM t")
    assert fp("SELECT 1;") == fp("SELECT 1 ;; -- done") == fp("SELECT 1")


def test_several_statements_in_one_text_are_refused() -> None:
    """Classifying by the first statement would call `SELECT 1; DELETE FROM t` a read."""
    for sql, count in (("SELECT 1; DELETE FROM t", 2), ("SELECT E'\\''; COMMIT; DELETE FROM audit; SELECT ''", 4)):
        identity = identify(sql)
        assert identity.kind == "refused", sql
        assert identity.refusal == f"it holds {count} statements, and querywarden measures one at a time"
    assert identify("SELECT 'a;b'; -- trailing\n").kind == "read"
