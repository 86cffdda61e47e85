"""Catalog files: named hot queries in aiosql's format, read as aiosql reads them.

    -- name: account_balance(aid)^
    -- The balance shown on the account page.
    -- calls-per-minute: 12000
    -- params: {"aid": 4242}
    SELECT abalance FROM pgbench_accounts WHERE aid = :aid;

A real aiosql file is a catalog as it is: `-- name: q`, `-- name: q(a, b)` and the suffixes
`^ $ ! <! *! #` (or none); the comment lines under the name are the docstring; `:name` parameters
(turned into psycopg's `%(name)s` for measuring, outside strings, comments and `::` casts); and a
directory's subdirectories namespace its queries (`sub/q.sql` holds `sub.name`). querywarden's own
`%(name)s` and `%s` placeholders still work.

querywarden's metadata lives in those docstring lines, which aiosql ignores. The rule: a comment line
between the name line and the SQL whose first word is `calls-per-minute`, `params` (or
`params[label]`), `budget-ms` or `allow-seq-scan`, followed by a colon, is metadata; every other comment line is
docstring text, except one whose word is a near miss of those (`calls-per-minut:`, `Params:`),
which is an error, so a typo cannot turn a guarded query into an unguarded one.

What is guarded: every query that can be measured, at the default rate unless it says otherwise.
Skipped, and listed as skipped (never an error, never a pass): a query that carries no metadata and
either is an aiosql `*!` (one statement run once per parameter set) or `#` (a script), or uses
`:name` parameters that no `-- params:` line gives values. As soon as a query carries a metadata
line it is meant to be guarded, and whatever keeps it from being measured is an error.

`-- params:` with a JSON list of objects, or several `-- params[label]:` lines, measures the query
once per parameter set, each as its own guarded query `name[1]`, `name[2]` (or `name[label]`) with
its own baseline; the call rate is split evenly between the sets.

Every defect is reported with file, line and query name, because a guard that silently drops a
query it could not read would pass a change it never looked at.
"""

from __future__ import annotations

import hashlib

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CatalogError
from .query import GuardedQuery, Params, SourceLocation
from .sqlscan import placeholders, scan, split_statements

_NAME_LINE = re.compile(r"^--\s*name\s*:\s*(?P<spec>.*?)\s*$")
# aiosql's `name(param, ...)op`: an optional parameter list, then the operation suffix.
_SPEC = re.compile(r"^(?P<name>[^\s()]+?)\s*(?:\((?P<params>[^()]*)\))?\s*(?P<op><!|\*!|!|\^|\$|#)?$")
_META_LINE = re.compile(r"^--\s*(?P<key>[A-Za-z][A-Za-z0-9_-]*)(?:\[(?P<label>[^\]]*)\])?\s*:\s*(?P<value>.*?)\s*$")
_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_VALID_LABEL = re.compile(r"^[A-Za-z0-9_-]+$")
_DECLARED = re.compile(r"^\s*[A-Za-z_][\w-]*\s*$")
# `:name` outside strings and comments; `::` casts and `:=` are not parameters (aiosql's rule too).
_COLON_NAME = re.compile(r"(?<!:):(?P<name>[A-Za-z_]\w*)")
_UNMEASURABLE = {"*!": "runs its statement once per parameter set", "#": "is a multi-statement script"}
KNOWN_KEYS = ("allow-seq-scan", "budget-ms", "calls-per-minute", "params")
_NEAR_PREFIXES = ("calls-per", "calls_per", "budget-", "budget_")


@dataclass(frozen=True)
class Skipped:
    """A catalog query that querywarden cannot measure and that asks for no guarding: said, not judged."""

    name: str
    reason: str
    source: SourceLocation

    def __str__(self) -> str:
        return f"{self.name} ({self.source}): {self.reason}"


@dataclass(frozen=True)
class Catalog:
    """What the catalog files hold: the guarded queries, in file order, and the skipped ones."""

    queries: tuple[GuardedQuery, ...]
    skipped: tuple[Skipped, ...] = ()


@dataclass
class _Block:
    name: str
    line: int
    op: str
    declared: list[str] | None
    meta: dict[str, tuple[str, int]] = field(default_factory=dict)
    param_sets: list[tuple[str, str, int]] = field(default_factory=list)  # (label, JSON, line)
    sql_lines: list[str] = field(default_factory=list)
    sql_line: int = 0
    in_meta: bool = True

    @property
    def has_meta(self) -> bool:
        return bool(self.meta or self.param_sets)


def colon_parameters(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with aiosql's `:name` parameters turned into psycopg's `%(name)s`, and the names found.

    Only code is rewritten: strings, quoted identifiers, dollar quotes and comments stay as they are,
    and `::type` casts, `:=` and `:1` are not parameters.
    """
    names: list[str] = []
    out: list[str] = []

    def convert(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in names:
            names.append(name)
        return f"%({name})s"

    for chunk in scan(sql):
        out.append(_COLON_NAME.sub(convert, chunk.text) if chunk.code else chunk.text)
    return "".join(out), tuple(names)


def _number(value: str, key: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise CatalogError(f"{where}: `-- {key}: {value}` is not a number; write e.g. `-- {key}: 1200`") from None
    if number < 0 or number != number or number in (float("inf"), float("-inf")):
        raise CatalogError(f"{where}: `-- {key}` must be a finite number >= 0, not {value}")
    return number


def _json(value: str, key: str, where: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise CatalogError(
            f"{where}: `-- {key}:` is not valid JSON ({exc.msg}); write a JSON object such as "
            '{"user_id": 42} for :name and %(name)s parameters, a list of such objects for several '
            "parameter sets, or a list such as [42] for %s"
        ) from None


def _shown(name: str, colon: Sequence[str]) -> str:
    return f":{name}" if name in colon else f"%({name})s"


def _check_params(sql: str, params: Params, where: str, colon: Sequence[str], key: str = "params") -> None:
    found = placeholders(sql)
    if found.names and found.positional:
        raise CatalogError(f"{where}: mixes named and %s placeholders; psycopg accepts only one style per query")
    if found.names:
        example = json.dumps({name: "..." for name in found.names})
        if params is None:
            raise CatalogError(
                f"{where}: uses {', '.join(_shown(n, colon) for n in found.names)} but has no `-- params:` line; "
                f"add `-- params: {example}`"
            )
        if not isinstance(params, dict):
            raise CatalogError(f"{where}: uses named parameters, so `-- {key}:` must be a JSON object like {example}")
        missing = [name for name in found.names if name not in params]
        if missing:
            raise CatalogError(f"{where}: `-- {key}:` has no value for {', '.join(missing)}; add it to the JSON object")
    elif found.positional:
        if params is None:
            raise CatalogError(
                f"{where}: uses {found.positional} %s placeholder(s) but has no `-- params:` line; "
                f"add `-- params: [...]` with {found.positional} value(s)"
            )
        if not isinstance(params, list) or len(params) != found.positional:
            raise CatalogError(f"{where}: uses {found.positional} %s placeholder(s); `-- {key}:` must be a list of that length")


def _param_sets(block: _Block, sql: str, where: str) -> list[tuple[str | None, Params]]:
    """The parameter sets of a query: (label, params); a single unlabelled set has label None."""
    if block.param_sets:
        sets: list[tuple[str | None, Params]] = []
        for label, value, _ in block.param_sets:
            parsed = _json(value, f"params[{label}]", where)
            if not isinstance(parsed, (dict, list)):
                raise CatalogError(f"{where}: `-- params[{label}]:` must be a JSON object or list, not {type(parsed).__name__}")
            sets.append((label, parsed))
        return sets
    if "params" not in block.meta:
        return [(None, None)]
    parsed = _json(block.meta["params"][0], "params", where)
    if not isinstance(parsed, (dict, list)):
        raise CatalogError(f"{where}: `-- params:` must be a JSON object or list, not {type(parsed).__name__}")
    if isinstance(parsed, list) and parsed and all(isinstance(item, dict) for item in parsed) and placeholders(sql).names:
        return [(str(index), item) for index, item in enumerate(parsed, start=1)]
    if isinstance(parsed, list) and not parsed and placeholders(sql).names:
        raise CatalogError(f"{where}: `-- params: []` gives no parameter set; write a JSON object or a list of objects")
    return [(None, parsed)]


def _parse_spec(spec: str, where: str) -> tuple[str, str, list[str] | None]:
    match = _SPEC.match(spec)
    if not match:
        raise CatalogError(
            f"{where}: `-- name: {spec}` is not a query name with an optional (parameter, list) and "
            "aiosql suffix (^ $ ! <! *! #); write e.g. `-- name: get_user(user_id)^`"
        )
    name, op, raw = match.group("name"), match.group("op") or "", match.group("params")
    if not _VALID_NAME.match(name):
        raise CatalogError(f"{where}: query name {name!r} must start with a letter and use letters, digits, _ . -")
    declared: list[str] | None = None
    if raw is not None:
        declared = [] if not raw.strip() else raw.split(",")
        if any(not _DECLARED.match(item) for item in declared):
            raise CatalogError(f"{where}: `({raw})` must list parameter names separated by commas, e.g. (user_id, since)")
        declared = [item.strip().replace("-", "_") for item in declared]
    return name, op, declared


def _finish(block: _Block, path: Path, default_calls_per_minute: float, namespace: str) -> list[GuardedQuery] | Skipped:
    name = f"{namespace}.{block.name}" if namespace else block.name
    where = f"{path}:{block.line}: query {name!r}"
    source = SourceLocation(str(path), block.sql_line or block.line)
    text = "\n".join(block.sql_lines).strip()
    if block.op in _UNMEASURABLE:
        if block.has_meta:
            raise CatalogError(
                f"{where}: `{block.name}{block.op}` {_UNMEASURABLE[block.op]}, which querywarden cannot measure; "
                f"remove its querywarden lines (it is then listed as skipped) or guard a single-statement query instead"
            )
        return Skipped(name, f"aiosql `{block.op}` {_UNMEASURABLE[block.op]}; querywarden measures single statements", source)
    statements = split_statements(text)
    if not statements:
        raise CatalogError(f"{where}: has no SQL under its name and metadata lines")
    if len(statements) > 1:
        raise CatalogError(f"{where}: holds {len(statements)} statements; give each its own `-- name:`")
    sql, colon = colon_parameters(statements[0])
    if block.declared is not None and sorted(set(block.declared)) != sorted(colon):
        raise CatalogError(
            f"{where}: declares ({', '.join(block.declared)}) but uses "
            f"({', '.join(':' + n for n in colon) or 'no :name parameters'}); make the list match, as aiosql requires"
        )
    if colon and not block.has_meta:
        example = json.dumps({n: "..." for n in colon})
        return Skipped(name, f"uses {', '.join(':' + n for n in colon)} with no values; add `-- params: {example}` to guard it", source)
    sets = _param_sets(block, sql, where)
    for label, params in sets:
        key = "params" if label is None or not block.param_sets else f"params[{label}]"
        _check_params(sql, params, where if label is None else f"{where} set {label}", colon, key)
    calls = _number(block.meta["calls-per-minute"][0], "calls-per-minute", where) if "calls-per-minute" in block.meta else None
    budget = _number(block.meta["budget-ms"][0], "budget-ms", where) if "budget-ms" in block.meta else None
    allowed = block.meta["allow-seq-scan"][0].strip() if "allow-seq-scan" in block.meta else None
    if allowed == "":
        raise CatalogError(f"{where}: `-- allow-seq-scan:` needs the reason a reviewer reads, e.g. "
                           "`-- allow-seq-scan: 12 rows, read whole by design`")
    rate = (default_calls_per_minute if calls is None else calls) / len(sets)
    return [
        GuardedQuery(
            name=name if label is None else f"{name}[{label}]",
            sql=sql,
            params=params,
            calls_per_minute=rate,
            budget_ms=budget,
            source=source,
            allow_seq_scan=allowed,
        )
        for label, params in sets
    ]


def _near_key(key: str) -> str | None:
    """The querywarden key a line's word looks like a misspelling of, if any."""
    lowered = key.lower()
    if lowered in KNOWN_KEYS:
        return lowered
    close = difflib.get_close_matches(lowered, KNOWN_KEYS, n=1, cutoff=0.8)
    if close:
        return close[0]
    if lowered.startswith(_NEAR_PREFIXES):
        return "calls-per-minute" if lowered.startswith("calls") else "budget-ms"
    return None


def _metadata(block: _Block, line: str, number: int, path: Path) -> bool:
    """Take a comment line under the name as metadata (True) or leave it to the docstring (False)."""
    match = _META_LINE.match(line)
    if not match:
        return False
    key, label, value = match.group("key"), match.group("label"), match.group("value")
    here = f"{path}:{number}: query {block.name!r}"
    if key not in KNOWN_KEYS:
        near = _near_key(key)
        if near is None:
            return False  # docstring text such as `-- note: used by login`
        raise CatalogError(
            f"{here}: unknown metadata key {key!r} (did you mean `{near}`?); fix the spelling, "
            f"or reword the line if it is documentation"
        )
    if label is not None:
        if key != "params":
            raise CatalogError(f"{here}: only `-- params[label]:` takes a label, not `-- {key}[{label}]:`")
        if not _VALID_LABEL.match(label):
            raise CatalogError(f"{here}: parameter set label {label!r} must use letters, digits, _ and -")
        if "params" in block.meta:
            raise CatalogError(f"{here}: `-- params[{label}]:` next to a plain `-- params:` line; label every set or use one list")
        if any(label == seen for seen, _, _ in block.param_sets):
            raise CatalogError(f"{here}: parameter set label {label!r} given twice")
        block.param_sets.append((label, value, number))
        return True
    if key == "params" and block.param_sets:
        raise CatalogError(f"{here}: `-- params:` next to `-- params[label]:` lines; label every set or use one list")
    if key in block.meta:
        raise CatalogError(f"{here}: `-- {key}:` given twice" + (
            "; for several parameter sets write one JSON list of objects, or label each: `-- params[big]: {...}`"
            if key == "params" else ""))
    block.meta[key] = (value, number)
    return True


def _parse(text: str, path: Path, default_calls_per_minute: float, namespace: str = "") -> Catalog:
    queries: list[GuardedQuery] = []
    skipped: list[Skipped] = []
    block: _Block | None = None

    def finish(done: _Block) -> None:
        result = _finish(done, path, default_calls_per_minute, namespace)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            queries.extend(result)

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        name_match = _NAME_LINE.match(stripped)
        if name_match:
            if block is not None:
                finish(block)
            name, op, declared = _parse_spec(name_match.group("spec"), f"{path}:{number}")
            block = _Block(name, number, op, declared)
            continue
        if block is None:
            if stripped and not stripped.startswith("--"):
                raise CatalogError(f"{path}:{number}: SQL before the first `-- name:` line; name the query it belongs to")
            continue
        if stripped.startswith("--") and block.in_meta:
            _metadata(block, stripped, number, path)  # otherwise a docstring line, as aiosql reads it
            continue
        if stripped:
            block.in_meta = False
            if not block.sql_line:
                block.sql_line = number
        if not block.in_meta:
            block.sql_lines.append(line)
    if block is not None:
        finish(block)
    return Catalog(tuple(queries), tuple(skipped))


def parse_catalog_text(text: str, path: Path, *, default_calls_per_minute: float = 60.0, namespace: str = "") -> Catalog:
    """One catalog file's text: its guarded queries in file order and its skipped ones."""
    return _parse(text, path, default_calls_per_minute, namespace)


def parse_catalog(text: str, path: Path, *, default_calls_per_minute: float = 60.0) -> list[GuardedQuery]:
    """Parse one catalog file's text into guarded queries, in file order (skipped ones left out)."""
    return list(_parse(text, path, default_calls_per_minute).queries)


def read_catalogs(paths: Sequence[Path | str], *, default_calls_per_minute: float = 60.0) -> Catalog:
    """Read catalog files (or every *.sql file in a directory tree, subdirectories as namespaces).

    Names must be unique across all of them; a catalog with nothing to guard is an error.
    """
    queries: list[GuardedQuery] = []
    skipped: list[Skipped] = []
    seen: dict[str, GuardedQuery] = {}
    for path, namespace in _expand(Path(p) for p in paths):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CatalogError(f"{path}: catalog file not found; check the --catalog path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{path}: cannot read catalog file ({exc})") from None
        found = _parse(text, path, default_calls_per_minute, namespace)
        for query in found.queries:
            if query.name in seen:
                raise CatalogError(
                    f"{query.source}: query name {query.name!r} is already used at {seen[query.name].source}; "
                    "names key the baselines, so each must be unique"
                )
            seen[query.name] = query
            queries.append(query)
        skipped.extend(found.skipped)
    if not queries:
        listed = ", ".join(str(p) for p in paths)
        if skipped:
            raise CatalogError(
                f"no query to guard in {listed}: all {len(skipped)} skipped (first: {skipped[0]}); "
                "give a query `-- params:` or a single-statement operation"
            )
        raise CatalogError(f"no queries found in {listed}; add `-- name:` blocks")
    return Catalog(tuple(queries), tuple(skipped))


def load_catalogs(paths: Sequence[Path | str], *, default_calls_per_minute: float = 60.0) -> list[GuardedQuery]:
    """The guarded queries of `read_catalogs`, in order."""
    return list(read_catalogs(paths, default_calls_per_minute=default_calls_per_minute).queries)


def _expand(paths: Iterable[Path]) -> Iterable[tuple[Path, str]]:
    for path in paths:
        if path.is_dir():
            for found in _sql_files(path, set()):
                yield found, ".".join(found.relative_to(path).parent.parts)
        else:
            yield path, ""


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


def in_shard(name: str, shard: tuple[int, int]) -> bool:
    """Whether query `name` belongs to shard `index` of `count` (1-based): by a hash of its name, so a
    query stays in its shard when others are added, and a query's parameter sets `q[…]` stay together."""
    index, count = shard
    digest = hashlib.sha256(name.partition("[")[0].encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count == index - 1
