"""Property tests: the parsers never fail in a way that is not a clear, named error, and fingerprints are
stable under everything that does not change a query's structure (and change with everything that does).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from querywarden.baseline import BaselineStore, parse, parse_path, baseline_text
from querywarden.catalog import parse_catalog
from querywarden.judge import compare
from querywarden.policy import Policy
from querywarden.database import mask_dsn, scrub
from querywarden.errors import BaselineError, CatalogError
from querywarden.fingerprint import identify
from querywarden.measure import redact_literals
from querywarden.sqlscan import placeholders, split_statements

from factories import observation, seq_plan

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# sqlglot parses each rendering (tens of ms): fewer examples keep the suite quick (2,500 each passed once).
PARSING = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- Text that looks like what the parsers read -------------------------------------------------

SQL_PIECES = [
    "SELECT", "select", " ", "\n", "\t", "*", ",", "(", ")", ";", "'", "''", '"', "$$", "$tag$", "$1", "%s", "%%",
    "%(id)s", "%(", "--", "/*", "*/", "FROM t", "WHERE", "a = 1", "-1.5e3", "IN (1, 2)", "E'\\''", "::int",
    "INSERT INTO t VALUES (1)", "UPDATE t SET a = 2", "DELETE FROM t", "WITH x AS (", "VACUUM", "NOTIFY c",
    "pg_terminate_backend(1)", "é", "\x00", "\\", "--name: q\n", "-- name: q\n", "-- params: ", "{\"id\": 1}",
    "[1, 2]", "-- calls-per-minute: 5\n", "-- budget-ms: x\n", "-- weight: 1\n", "<!", "*!", "#", "^", "$",
]
sqlish = st.lists(st.sampled_from(SQL_PIECES), max_size=40).map("".join)
any_text = st.one_of(st.text(max_size=300), sqlish)


@FAST
@given(any_text)
@example("-- name: q\n-- params: {\"a\": 1}\nSELECT %(a)s, %(b)s;")
@example("-- name: q\nSELECT 1; SELECT 2;")
@example("-- name: q\n-- params: [1e999]\nSELECT %s;")
def test_catalog_parser_raises_nothing_but_catalog_errors(text: str) -> None:
    try:
        queries = parse_catalog(text, Path("catalog.sql"))
    except CatalogError as exc:
        assert str(exc).startswith("catalog.sql:") or "query" in str(exc)
        return
    for query in queries:
        assert query.sql.strip()
        assert query.source is not None and query.source.path == "catalog.sql"


names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


@FAST
@given(st.lists(st.tuples(names, st.integers(min_value=0, max_value=10**6), st.integers()), min_size=1, max_size=6,
                unique_by=lambda entry: entry[0]))
def test_a_written_catalog_reads_back_as_written(entries: list[tuple[str, int, int]]) -> None:
    text = "\n".join(
        f"-- name: {name}\n-- a docstring line\n-- calls-per-minute: {calls}\n-- params: {{\"v\": {value}}}\n"
        f"SELECT v FROM t\nWHERE v = %(v)s;\n"
        for name, calls, value in entries
    )
    queries = parse_catalog(text, Path("c.sql"))
    assert [(q.name, q.calls_per_minute, q.params) for q in queries] == [
        (name, float(calls), {"v": value}) for name, calls, value in entries
    ]
    assert [q.source.line for q in queries if q.source] == [7 * i + 5 for i in range(len(entries))]


# --- The baseline loader ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
GOOD = json.loads(baseline_text(observation(plan=seq_plan())))


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


PATHS = _paths(GOOD)[1:]


def _loads_or_refuses(text: str) -> None:
    """Loading gives an observation a comparison can use, or a BaselineError naming the file."""
    try:
        loaded = parse(text, "baselines/q.json")
    except BaselineError as exc:
        assert str(exc).startswith("baselines/q.json: ")
        return
    baseline_text(loaded)
    compare(loaded.name, loaded, loaded, Policy())


@FAST
@given(any_text)
def test_arbitrary_text_is_a_baseline_or_a_baseline_error(text: str) -> None:
    _loads_or_refuses(text)


@FAST
@given(st.binary(max_size=300))
def test_arbitrary_bytes_on_disk_load_or_raise_a_baseline_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    store = BaselineStore(tmp_path_factory.mktemp("b", numbered=True))
    store.path_for("q").write_bytes(data)
    try:
        store.load("q")
    except BaselineError as exc:
        assert str(exc).startswith(str(store.path_for("q")))


@FAST
@given(st.sampled_from(PATHS), json_values | st.sampled_from([1e308, -1, 10**30, "NaN", [], {}]))
def test_a_baseline_with_any_one_field_hand_edited_loads_or_raises_a_baseline_error(
    path: tuple[Any, ...], value: Any
) -> None:
    document = copy.deepcopy(GOOD)
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    _loads_or_refuses(json.dumps(document))


@FAST
@given(json_values)
def test_any_json_document_is_a_baseline_or_a_baseline_error(value: Any) -> None:
    for document in (value, {"format": 1, "query": value}):
        _loads_or_refuses(json.dumps(document))
        try:
            parse_path(json.dumps(document), "b/t.json")
        except BaselineError:
            pass


@pytest.mark.parametrize(
    "text",
    [
        "[" * 50_000 + "]" * 50_000,
        json.dumps({"format": 1, "query": {**GOOD["query"], "plan": {"children": [{}] * 3}}}),
        json.dumps(GOOD).replace('"count": 7', '"count": ' + "9" * 5000),
        json.dumps(GOOD).replace('"median_ms": 0.05', '"median_ms": Infinity'),
    ],
    ids=["deep", "plan-children-empty", "huge-integer", "infinity"],
)
def test_pathological_baselines_are_baseline_errors(text: str) -> None:
    with pytest.raises(BaselineError):
        parse(text, "q.json")


# --- The SQL fingerprinter --------------------------------------------------------------------


@st.composite
def layouts(draw: st.DrawFn) -> str:
    """Whitespace, possibly with a comment in it: what separates two tokens."""
    gap = draw(st.sampled_from([" ", "  ", "\n", "\t", "\n    "]))
    comment = draw(st.sampled_from(["", "", "/* note */ ", "-- note\n", "/* a /* nested */ one */ "]))
    return gap + comment


@st.composite
def queries(draw: st.DrawFn) -> tuple[list[str], tuple[str, ...]]:
    """A query as tokens (literals marked with `?`) and its structure, which must decide the fingerprint."""
    table = draw(st.sampled_from(["accounts", "orders", "users"]))
    columns = draw(st.lists(st.sampled_from(["id", "email", "total", "status"]), min_size=1, max_size=3, unique=True))
    filters = draw(st.lists(st.tuples(st.sampled_from(["id", "total", "status"]), st.sampled_from(["=", "<", ">="])),
                            max_size=3))
    order = draw(st.sampled_from(["", "id", "total"]))
    limit = draw(st.booleans())
    tokens = ["SELECT", ", ".join(columns), "FROM", table]
    for index, (column, op) in enumerate(filters):
        tokens += ["WHERE" if index == 0 else "AND", column, op, "?"]
    if order:
        tokens += ["ORDER BY", order]
    if limit:
        tokens += ["LIMIT", "?"]
    structure = (table, tuple(columns), tuple(filters), order, str(limit))
    return tokens, structure


literals = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.text(alphabet="abc xyz'@.", max_size=10).map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.sampled_from(["%s", "$1", "%(value)s", "-7", "3.25", "TRUE"]),
)


@st.composite
def renderings(draw: st.DrawFn, tokens: list[str]) -> str:
    out = []
    for token in tokens:
        if token == "?":
            token = draw(literals)
        elif draw(st.booleans()):
            token = token.lower() if token.isupper() or " " in token else token.upper()
        out.append(token + draw(layouts()))
    return "".join(out) + draw(st.sampled_from(["", ";", " ;\n", "; -- trailing note\n", ";/* c */", "--x"]))


@PARSING
@given(st.data())
def test_fingerprint_ignores_whitespace_comments_case_and_literals(data: st.DataObject) -> None:
    tokens, _ = data.draw(queries())
    first, second = data.draw(renderings(tokens)), data.draw(renderings(tokens))
    a, b = identify(first), identify(second)
    assert a.fingerprint == b.fingerprint, (first, second)
    assert a.normalized == b.normalized
    assert a.kind == "read"


@PARSING
@given(st.data())
def test_fingerprint_differs_when_the_structure_differs(data: st.DataObject) -> None:
    (tokens_a, structure_a), (tokens_b, structure_b) = data.draw(queries()), data.draw(queries())
    assume(structure_a != structure_b)
    assert identify(data.draw(renderings(tokens_a))).fingerprint != identify(data.draw(renderings(tokens_b))).fingerprint


@FAST
@given(any_text)
@example("SELECT " + "(" * 5000 + "1" + ")" * 5000)
@example("SELECT 'unterminated")
@example("$$")
def test_identify_and_the_scanner_never_raise(text: str) -> None:
    identity = identify(text)
    assert identity.kind in ("read", "write", "refused")
    assert (identity.refusal is not None) == (identity.kind == "refused")
    assert len(identity.fingerprint) == 16
    statements = split_statements(text)
    assert all(statement and statement == statement.strip() for statement in statements)
    found = placeholders(text)
    assert found.positional >= 0 and len(set(found.names)) == len(found.names)


simple_statements = st.lists(
    st.sampled_from(["SELECT 1", "SELECT ';' AS semi", "SELECT $$;$$", "/* ; */ SELECT 2", "SELECT \"a;b\" FROM t",
                     "UPDATE t SET a = 'x;y'", "SELECT 3 -- ; trailing\n"]),
    min_size=1, max_size=6,
)


@FAST
@given(simple_statements, st.sampled_from([";", ";\n", " ; ", ";;\n"]))
def test_split_statements_finds_each_statement_whatever_it_quotes(statements: list[str], separator: str) -> None:
    assert split_statements(separator.join(statements)) == [s.strip() for s in statements]


# --- What must not leak -----------------------------------------------------------------------

passwords = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="*"),
                    min_size=6, max_size=20)


@FAST
@given(passwords)
def test_scrub_removes_the_password_from_any_message_quoting_the_dsn(password: str) -> None:
    from urllib.parse import quote

    # A "password" that is a piece of the message's own words (`passwo`, `failed`) shows nothing secret;
    # scrub leaves ordinary words alone, so only the others can be asked to vanish.
    framing = ("connection to postgresql://app:***@db.internal:5432/app host=db.internal user=app password='***' "
               'failed: FATAL: password "***" rejected; dsn was')
    assume(password not in framing and quote(password, safe="") not in framing)
    for dsn in (f"postgresql://app:{quote(password, safe='')}@db.internal:5432/app",
                "host=db.internal user=app password='" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"):
        message = f'connection to {dsn} failed: FATAL: password "{password}" rejected; dsn was {dsn}'
        cleaned = scrub(message, dsn)
        assert password not in cleaned
        assert quote(password, safe="") not in cleaned
        assert quote(password, safe="") not in mask_dsn(dsn)


@FAST
@given(st.text(min_size=4, max_size=30).filter(lambda v: v.strip() and "?" not in v))
def test_redacted_plan_details_never_hold_a_string_value(value: str) -> None:
    literal = "'" + value.replace("'", "''") + "'"
    detail = f"((email = {literal}::text) AND (id = '12345'::bigint) AND (n > 42))"
    redacted = redact_literals(detail)
    assert redacted == "((email = '?'::text) AND (id = '?'::bigint) AND (n > ?))"
