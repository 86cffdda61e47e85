"""Catalog files: named hot queries in aiosql's style, with metadata in comment lines under the name.

    -- name: account_balance
    -- calls-per-minute: 12000
    -- params: {"aid": 4242}
    SELECT abalance FROM pgbench_accounts WHERE aid = %(aid)s;

Every defect is reported with file, line and query name, because a guard that silently drops a
query it could not read would pass a change it never looked at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError
from .query import GuardedQuery, Params, SourceLocation
from .sqlscan import placeholders, split_statements

_NAME_LINE = re.compile(r"^--\s*name\s*:\s*(?P<name>\S+)\s*$")
_META_LINE = re.compile(r"^--\s*(?P<key>[a-z][a-z0-9-]*)\s*:\s*(?P<value>.*?)\s*$")
_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# aiosql's operation suffixes: the ones that run one statement once are measurable.
_SUFFIXES = ("<!", "!", "$", "^")
_UNMEASURABLE_SUFFIXES = {"*!": "runs the statement once per parameter set", "#": "is a multi-statement script"}
KNOWN_KEYS = ("budget-ms", "calls-per-minute", "params")


@dataclass
class _Block:
    name: str
    line: int
    meta: dict[str, tuple[str, int]] = field(default_factory=dict)
    sql_lines: list[str] = field(default_factory=list)
    sql_line: int = 0
    in_meta: bool = True


def _number(value: str, key: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise CatalogError(f"{where}: `-- {key}: {value}` is not a number; write e.g. `-- {key}: 1200`") from None
    if number < 0 or number != number or number in (float("inf"), float("-inf")):
        raise CatalogError(f"{where}: `-- {key}` must be a finite number >= 0, not {value}")
    return number


def _params(value: str, where: str) -> Params:
    try:
        parsed: Any = json.loads(value)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{where}: `-- params:` is not valid JSON ({exc.msg}); write a JSON object such as "
            '{"user_id": 42} for %(name)s placeholders or a list such as [42] for %s'
        ) from None
    if not isinstance(parsed, (dict, list)):
        raise CatalogError(f"{where}: `-- params:` must be a JSON object or list, not {type(parsed).__name__}")
    return parsed


def _check_params(sql: str, params: Params, where: str) -> None:
    found = placeholders(sql)
    if found.names and found.positional:
        raise CatalogError(f"{where}: mixes %(name)s and %s placeholders; psycopg accepts only one style per query")
    if found.names:
        example = json.dumps({name: "..." for name in found.names})
        if params is None:
            raise CatalogError(
                f"{where}: uses {', '.join(f'%({n})s' for n in found.names)} but has no `-- params:` line; "
                f"add `-- params: {example}`"
            )
        if not isinstance(params, dict):
            raise CatalogError(f"{where}: uses named placeholders, so `-- params:` must be a JSON object like {example}")
        missing = [name for name in found.names if name not in params]
        if missing:
            raise CatalogError(f"{where}: `-- params:` has no value for {', '.join(missing)}; add it to the JSON object")
    elif found.positional:
        if params is None:
            raise CatalogError(
                f"{where}: uses {found.positional} %s placeholder(s) but has no `-- params:` line; "
                f"add `-- params: [...]` with {found.positional} value(s)"
            )
        if not isinstance(params, list) or len(params) != found.positional:
            raise CatalogError(f"{where}: uses {found.positional} %s placeholder(s); `-- params:` must be a list of that length")


def _query_name(raw: str, where: str) -> str:
    for suffix, why in _UNMEASURABLE_SUFFIXES.items():
        if raw.endswith(suffix):
            raise CatalogError(f"{where}: `{raw}` {why}; querywarden measures single statements (drop the `{suffix}`)")
    name = raw
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if not _VALID_NAME.match(name):
        raise CatalogError(f"{where}: query name {raw!r} must start with a letter and use letters, digits, _ . -")
    return name


def _finish(block: _Block, path: Path, default_calls_per_minute: float) -> GuardedQuery:
    where = f"{path}:{block.line}: query {block.name!r}"
    sql = "\n".join(block.sql_lines).strip()
    statements = split_statements(sql)
    if not statements:
        raise CatalogError(f"{where}: has no SQL under its name and metadata lines")
    if len(statements) > 1:
        raise CatalogError(f"{where}: holds {len(statements)} statements; give each its own `-- name:`")
    sql = statements[0]
    meta = {key: value for key, (value, _) in block.meta.items()}
    params = _params(meta["params"], where) if "params" in meta else None
    _check_params(sql, params, where)
    calls = _number(meta["calls-per-minute"], "calls-per-minute", where) if "calls-per-minute" in meta else None
    budget = _number(meta["budget-ms"], "budget-ms", where) if "budget-ms" in meta else None
    return GuardedQuery(
        name=block.name,
        sql=sql,
        params=params,
        calls_per_minute=default_calls_per_minute if calls is None else calls,
        budget_ms=budget,
        source=SourceLocation(str(path), block.sql_line or block.line),
    )


def parse_catalog(text: str, path: Path, *, default_calls_per_minute: float = 60.0) -> list[GuardedQuery]:
    """Parse one catalog file's text into guarded queries, in file order."""
    queries: list[GuardedQuery] = []
    block: _Block | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        name_match = _NAME_LINE.match(stripped)
        if name_match:
            if block is not None:
                queries.append(_finish(block, path, default_calls_per_minute))
            block = _Block(_query_name(name_match.group("name"), f"{path}:{number}"), number)
            continue
        if block is None:
            if stripped and not stripped.startswith("--"):
                raise CatalogError(f"{path}:{number}: SQL before the first `-- name:` line; name the query it belongs to")
            continue
        meta_match = _META_LINE.match(stripped) if block.in_meta else None
        if meta_match:
            key = meta_match.group("key")
            if key not in KNOWN_KEYS:
                raise CatalogError(
                    f"{path}:{number}: query {block.name!r}: unknown metadata key {key!r} "
                    f"(known: {', '.join(KNOWN_KEYS)}); fix the spelling or remove the line"
                )
            if key in block.meta:
                raise CatalogError(f"{path}:{number}: query {block.name!r}: `-- {key}:` given twice")
            block.meta[key] = (meta_match.group("value"), number)
            continue
        if stripped.startswith("--") and block.in_meta:
            continue  # a docstring line, as aiosql allows
        if stripped:
            block.in_meta = False
            if not block.sql_line:
                block.sql_line = number
        if not block.in_meta:
            block.sql_lines.append(line)
    if block is not None:
        queries.append(_finish(block, path, default_calls_per_minute))
    return queries


def load_catalogs(paths: Sequence[Path | str], *, default_calls_per_minute: float = 60.0) -> list[GuardedQuery]:
    """Read catalog files (or every *.sql file in a directory tree); names must be unique across all of them."""
    queries: list[GuardedQuery] = []
    seen: dict[str, GuardedQuery] = {}
    for path in _expand(Path(p) for p in paths):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CatalogError(f"{path}: catalog file not found; check the --catalog path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{path}: cannot read catalog file ({exc})") from None
        for query in parse_catalog(text, path, default_calls_per_minute=default_calls_per_minute):
            if query.name in seen:
                raise CatalogError(
                    f"{query.source}: query name {query.name!r} is already used at {seen[query.name].source}; "
                    "names key the baselines, so each must be unique"
                )
            seen[query.name] = query
            queries.append(query)
    if not queries:
        raise CatalogError(f"no queries found in {', '.join(str(p) for p in paths)}; add `-- name:` blocks")
    return queries


def _expand(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_dir():
            yield from _sql_files(path, set())
        else:
            yield path


def _sql_files(directory: Path, visited: set[Path]) -> Iterator[Path]:
    """Every *.sql file under `directory`, subdirectories included, in name order at each level.

    A hot query kept in a subdirectory must be measured, not silently reported missing. Symlinked
    directories are followed, once each, so a link back up the tree cannot loop.
    """
    real = directory.resolve()
    if real in visited:
        return
    visited.add(real)
    try:
        entries = sorted(directory.iterdir(), key=lambda entry: entry.name)
    except OSError as exc:
        raise CatalogError(f"{directory}: cannot read catalog directory ({exc}); check its permissions") from None
    for entry in entries:
        if entry.is_dir():
            yield from _sql_files(entry, visited)
        elif entry.suffix == ".sql":
            yield entry
