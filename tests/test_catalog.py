"""Catalog parsing: every defect names file, line and query; nothing is silently dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from querywarden.catalog import load_catalogs, parse_catalog
from querywarden.errors import CatalogError


def parse(text: str) -> list:  # type: ignore[type-arg]
    return parse_catalog(text, Path("cat.sql"))


def test_reads_name_metadata_and_sql() -> None:
    [query] = parse(
        "-- name: account_balance\n"
        "-- calls-per-minute: 12000\n"
        '-- params: {"aid": 4242}\n'
        "-- budget-ms: 5\n"
        "SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s;\n"
    )
    assert query.name == "account_balance"
    assert query.calls_per_minute == 12000
    assert query.params == {"aid": 4242}
    assert query.budget_ms == 5
    assert query.sql == "SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s"
    assert str(query.source) == "cat.sql:5"


def test_several_queries_docstrings_positional_params_and_aiosql_suffixes() -> None:
    queries = parse(
        "-- leading comment\n\n"
        "-- name: first^\n-- Fetch one row.\n-- params: [1, 2]\nSELECT a FROM t\nWHERE a = %s AND b = %s;\n\n"
        "-- name: second!\nUPDATE t SET a = 1 -- no ; here\n;\n"
    )
    assert [q.name for q in queries] == ["first", "second"]
    assert queries[0].params == [1, 2]
    assert queries[0].sql == "SELECT a FROM t\nWHERE a = %s AND b = %s"
    assert queries[1].calls_per_minute == 60.0  # the default rate


def test_percent_inside_strings_and_escaped_percent_are_not_placeholders() -> None:
    [query] = parse("-- name: q\nSELECT '%s', \"%(x)s\" FROM t WHERE a LIKE 'x%%' -- %s\n")
    assert query.params is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: q\nSELECT * FROM t WHERE a = %(aid)s\n",
         "cat.sql:1: query 'q': uses %(aid)s but has no `-- params:` line; add `-- params: {\"aid\": \"...\"}`"),
        ("-- name: q\n-- params: {\"other\": 1}\nSELECT %(aid)s\n",
         "cat.sql:1: query 'q': `-- params:` has no value for aid; add it to the JSON object"),
        ("-- name: q\n-- params: [1]\nSELECT %s, %s\n",
         "cat.sql:1: query 'q': uses 2 %s placeholder(s); `-- params:` must be a list of that length"),
        ("-- name: q\n-- params: {nope}\nSELECT 1\n",
         "cat.sql:1: query 'q': `-- params:` is not valid JSON"),
        ("-- name: q\n-- calls-per-minute: lots\nSELECT 1\n",
         "cat.sql:1: query 'q': `-- calls-per-minute: lots` is not a number"),
        ("-- name: q\n-- calls-per-minut: 5\nSELECT 1\n",
         "cat.sql:2: query 'q': unknown metadata key 'calls-per-minut'"),
        ("-- name: q\n-- params: [1]\n-- params: [2]\nSELECT %s\n", "cat.sql:3: query 'q': `-- params:` given twice"),
        ("-- name: q\n\n", "cat.sql:1: query 'q': has no SQL"),
        ("-- name: q\nSELECT 1; SELECT 2;\n", "cat.sql:1: query 'q': holds 2 statements"),
        ("SELECT 1;\n-- name: q\nSELECT 2\n", "cat.sql:1: SQL before the first `-- name:` line"),
        ("-- name: many*!\n-- calls-per-minute: 5\nINSERT INTO t VALUES (%s)\n",
         "cat.sql:1: query 'many': `many*!` runs its statement once per parameter set"),
        ("-- name: 9lives\nSELECT 1\n", "cat.sql:1: query name '9lives' must start with a letter"),
    ],
)
def test_errors_name_file_line_and_query(text: str, message: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_duplicate_names_across_files_name_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.sql").write_text("-- name: q\nSELECT 1\n")
    (tmp_path / "b.sql").write_text("\n-- name: q\nSELECT 2\n")
    with pytest.raises(CatalogError, match=r"b.sql:3: query name 'q' is already used at .*a.sql:2"):
        load_catalogs([tmp_path / "a.sql", tmp_path / "b.sql"])


def test_directory_expands_to_its_sql_files_and_empty_catalog_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "b.sql").write_text("-- name: b\nSELECT 2\n")
    (tmp_path / "a.sql").write_text("-- name: a\nSELECT 1\n")
    assert [q.name for q in load_catalogs([tmp_path])] == ["a", "b"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(CatalogError, match="no queries found"):
        load_catalogs([tmp_path / "empty"])
    with pytest.raises(CatalogError, match="catalog file not found"):
        load_catalogs([tmp_path / "nope.sql"])


def test_a_directory_is_read_with_its_subdirectories_in_a_fixed_order(tmp_path: Path) -> None:
    """A hot query kept in a subdirectory is guarded, not reported missing with exit 0; its name is
    namespaced by the subdirectories, as aiosql names it."""
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "z.sql").write_text("-- name: z\nSELECT 4\n")
    (tmp_path / "sub" / "deeper" / "c.sql").write_text("-- name: c\nSELECT 3\n")
    (tmp_path / "sub" / "b.sql").write_text("-- name: b\nSELECT 2\n")
    (tmp_path / "a.sql").write_text("-- name: a\nSELECT 1\n")
    (tmp_path / "sub" / "notes.txt").write_text("-- name: not_sql\nSELECT 5\n")
    queries = load_catalogs([tmp_path])
    assert [q.name for q in queries] == ["a", "sub.b", "sub.deeper.c", "z"]
    assert str(queries[2].source) == f"{tmp_path / 'sub' / 'deeper' / 'c.sql'}:2"


def test_the_same_name_in_two_subdirectories_is_two_queries_and_a_clash_names_both(tmp_path: Path) -> None:
    for part in ("one", "two"):
        (tmp_path / part).mkdir()
        (tmp_path / part / "q.sql").write_text("-- name: hot\nSELECT 1\n")
    assert [q.name for q in load_catalogs([tmp_path])] == ["one.hot", "two.hot"]
    (tmp_path / "z.sql").write_text("-- name: two.hot\nSELECT 2\n")
    with pytest.raises(CatalogError, match=r"z.sql:2: query name 'two.hot' is already used at .*two/q.sql:2"):
        load_catalogs([tmp_path])


def test_a_symlink_back_up_the_tree_is_read_once(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "q.sql").write_text("-- name: q\nSELECT 1\n")
    (tmp_path / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)
    assert [q.name for q in load_catalogs([tmp_path])] == ["sub.q"]
