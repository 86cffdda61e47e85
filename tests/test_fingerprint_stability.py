"""Stored fingerprints depend on nothing but this code: not on sqlglot's version, not on Python's.

Baselines are committed, so a fingerprint that changed with a dependency's release would make two
developers with different lockfiles rewrite each other's files. The golden values below pin the
algorithm: when one fails, the token form changed, and that is a migration (bump FINGERPRINT_VERSION,
rewrite the committed baselines), not a test to update quietly.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from querywarden import fingerprint
from querywarden.fingerprint import FINGERPRINT_VERSION, fingerprint_of, fingerprint_version, identify, render, sql_tokens

GOLDEN = {
    "SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s":
        ("v1:c9990d70d07db", "select abalance\nfrom pgbench_accounts\nwhere aid = ?"),
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2":
        ("v1:9769019733585", "update pgbench_accounts\nset abalance = abalance + ?\nwhere aid = ?"),
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (%s, %s, %s, %s, CURRENT_TIMESTAMP)":
        ("v1:0a00a8f716931", "insert into pgbench_history(tid, bid, aid, delta, mtime)\nvalues (?, ?, ?, ?, current_timestamp)"),
    "SELECT id FROM users WHERE id IN (1, 2, 3) AND \"Email\" LIKE E'%\\'%' ORDER BY created_at DESC LIMIT 10":
        ("v1:d63b1bd34f356", 'select id\nfrom users\nwhere id in (?) and "Email" like ?\norder by created_at desc\nlimit ?'),
    "WITH t AS (SELECT a, count(*) AS n FROM x GROUP BY a) SELECT * FROM t LEFT JOIN y ON y.a = t.a WHERE n > -1":
        ("v1:981729689ffec",
         "with t as (\n  select a, count(*) as n\n  from x\n  group by a\n)\nselect *\nfrom t\nleft join y on y.a = t.a\nwhere n > ?"),
    "DELETE FROM sessions WHERE expires_at < now() - interval '1 day' RETURNING id":
        ("v1:a07ee6c4570e9", "delete from sessions\nwhere expires_at < now() - interval ?\nreturning id"),
}


@pytest.mark.parametrize("sql", list(GOLDEN))
def test_golden_fingerprints_and_normalized_text(sql: str) -> None:
    identity = identify(sql)
    assert (identity.fingerprint, identity.normalized) == GOLDEN[sql], (
        "the fingerprint algorithm changed: bump FINGERPRINT_VERSION and migrate the committed baselines"
    )


def test_a_fingerprint_carries_its_version_and_old_ones_are_told_apart() -> None:
    value = identify("SELECT 1").fingerprint
    assert value.startswith(f"v{FINGERPRINT_VERSION}:") and len(value) == 16
    assert fingerprint_version(value) == FINGERPRINT_VERSION
    assert fingerprint_version("182ce9e95029182c") == 0  # a sqlglot-era fingerprint, as committed before
    assert fingerprint_version("v2:0123456789abc") == 2
    for junk in ("", "v0:0123456789abc", "v1:XYZ", "182CE9E95029182C", "182ce9e95029182", "v1:0123456789abcd"):
        assert fingerprint_version(junk) is None, junk


ENTRY_POINTS = ("sql_tokens", "fingerprint_of", "render", "fingerprint_version")


def _sqlglot_free_closure() -> tuple[dict[str, ast.FunctionDef], set[str], set[str]]:
    """The module's functions, the names bound to sqlglot, and every function the entry points reach."""
    tree = ast.parse(Path(fingerprint.__file__).read_text(encoding="utf-8"))
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    tainted: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            tainted.update((alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name.startswith("sqlglot"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlglot"):
            tainted.update(alias.asname or alias.name for alias in node.names)
    # Module constants built from sqlglot names (`_READ_ROOTS = (exp.Select, …)`) carry the taint.
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            if {n.id for n in ast.walk(node.value) if isinstance(n, ast.Name)} & tainted:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                tainted.update(t.id for t in targets if isinstance(t, ast.Name))
    reached: set[str] = set()
    todo = list(ENTRY_POINTS)
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        used = {n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)}
        todo += [used_name for used_name in used if used_name in functions]
    return functions, tainted, reached


def test_the_stored_fields_are_computed_without_sqlglot() -> None:
    functions, tainted, reached = _sqlglot_free_closure()
    assert {"sqlglot", "exp", "SqlglotError", "_READ_ROOTS"} <= tainted  # the check sees what it must
    assert {"_code_tokens", "_collapse_in_lists", "_breaks_before"} <= reached
    for name in sorted(reached):
        used = {n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name)}  # `exp.Select` holds Name exp
        assert not used & tainted, f"{name}() reaches sqlglot: {used & tainted}"
        assert "classify" not in used and "_classify" not in used, name


def test_identify_stores_what_the_sqlglot_free_path_computes() -> None:
    """`identify` may classify with sqlglot, but its normalized text and fingerprint are the token form's."""
    source = ast.get_source_segment(Path(fingerprint.__file__).read_text(encoding="utf-8"),
                                    _sqlglot_free_closure()[0]["identify"])
    assert source is not None and "SqlIdentity(render(found), fingerprint_of(found), kind, refusal)" in source
    for sql in GOLDEN:
        found = sql_tokens(sql)
        assert (identify(sql).normalized, identify(sql).fingerprint) == (render(found), fingerprint_of(found))
