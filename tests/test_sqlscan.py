"""The lexical scanner: semicolons and placeholders inside strings and comments are not syntax."""

from __future__ import annotations

from querywarden.sqlscan import placeholders, split_statements


def test_split_respects_strings_comments_and_dollar_quotes() -> None:
    script = (
        "CREATE TABLE t (a text); -- a comment; still comment\n"
        "INSERT INTO t VALUES ('a;b'), ('it''s;');\n"
        "/* block; /* nested; */ still */ SELECT 1;\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n"
        ";;  -- only a comment\n"
    )
    statements = split_statements(script)
    assert len(statements) == 4
    assert statements[1] == "-- a comment; still comment\nINSERT INTO t VALUES ('a;b'), ('it''s;')"
    assert statements[3].endswith("$body$ SELECT 1; $body$ LANGUAGE sql")


def test_placeholders_named_positional_and_escaped() -> None:
    found = placeholders("SELECT %(a)s, %(b)s, %(a)s, 'x%s' FROM t WHERE c LIKE 'y%%' AND d = %s -- %(z)s")
    assert found.names == ("a", "b")
    assert found.positional == 1
    assert placeholders("SELECT 10 %% 3, $1").names == ()
    assert placeholders("SELECT 10 %% 3").positional == 0


def test_backslash_escapes_count_only_in_e_strings() -> None:
    # E'\'' is a quote inside the string: what follows it is three more statements, not string text.
    smuggled = "SELECT E'\\''; COMMIT; DELETE FROM audit; SELECT '';"
    assert split_statements(smuggled) == ["SELECT E'\\''", "COMMIT", "DELETE FROM audit", "SELECT ''"]
    assert split_statements("SELECT e'a\\\\'; SELECT 2") == ["SELECT e'a\\\\'", "SELECT 2"]
    # In a standard string a backslash is an ordinary character, and `some'x'` is no E string.
    assert split_statements("SELECT 'a\\'; SELECT 2") == ["SELECT 'a\\'", "SELECT 2"]
    assert split_statements("SELECT some'x;y'; SELECT 2") == ["SELECT some'x;y'", "SELECT 2"]
