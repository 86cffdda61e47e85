"""Production call rates from pg_stat_statements: match exported statements to catalog queries.

An export (CSV or JSON, made with the query in docs/production-stats.md) lists every statement
pg_stat_statements saw since its last reset, `$n`-normalised, with its calls and execution time,
plus the window (`stats_reset` .. `exported_at`). Each catalog query is matched to the exported
statements with the same shape, calls are summed and divided by the window, and the catalog's
`-- calls-per-minute:` lines can be rewritten in place. Statements that match no catalog query are
listed too: they are hot paths nothing guards.

Matching. pg_stat_statements replaces every constant with `$n` but keeps the text otherwise; the
application (and the catalog) wrote `%(name)s`, `%s` or literals. Two keys are tried:
`statement_key` (a token-level normalisation built for that text: literals, placeholders, booleans,
NULL, a leading sign, the field of EXTRACT and IN-lists all become one placeholder; case, spacing and
comments are dropped) and `fingerprint.identify(sql).fingerprint` (the baselines' fingerprint, which
also equates layouts sqlglot rewrites).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .catalog import parse_catalog
from .errors import StatsImportError
from .fingerprint import identify
from .query import GuardedQuery
from .sqlscan import scan

DOCS = "docs/production-stats.md"
# How many of the most-called unmatched statements get the (slower) sqlglot fingerprint as a second chance.
_IDENTIFY_LIMIT = 1000
_TOKEN = re.compile(
    r"""
    (?P<param>\$\d+|%\([^)]*\)[sbt]|%[sbt])
  | (?P<percent>%%)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*)
  | (?P<cast>::)
  | (?P<op>[-+*/<>=~!@#%^&|`?]+)
  | (?P<punct>[(),;\[\].:])
    """,
    re.VERBOSE,
)
_VALUE = "?"
_CONSTANT_WORDS = {"true", "false", "null"}
# Words after which a `-` or `+` right before a value is a sign, not an operator.
_SIGN_CONTEXT = {
    "select", "where", "and", "or", "not", "then", "else", "when", "return", "by", "limit", "offset",
    "in", "values", "is", "between", "like", "ilike", "set", "on", "having", "case", "any", "all", "array",
}
_APP_FIRST_WORDS = {"select", "with", "insert", "update", "delete", "merge", "values", "table"}
_RELATION_AFTER = {"from", "join", "into", "update", "using"}
_STRING_PREFIXES = {"e", "b", "x", "n"}


# --------------------------------------------------------------------------------------------------
# Reading an export
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductionStatement:
    """One row of pg_stat_statements: the `$n`-normalised text, its calls and total execution time."""

    query: str
    calls: int
    total_exec_time_ms: float


@dataclass(frozen=True)
class StatsExport:
    path: Path
    statements: tuple[ProductionStatement, ...]
    stats_reset: datetime | None = None
    exported_at: datetime | None = None
    dealloc: int | None = None

    def window_minutes(self, override: float | None = None) -> float:
        """Minutes the counters cover: `override` if given, else exported_at − stats_reset."""
        if override is not None:
            if not override > 0 or math.isinf(override):
                raise StatsImportError(f"--window-minutes must be a positive number of minutes, not {override:g}")
            return override
        if self.stats_reset is None or self.exported_at is None:
            raise StatsImportError(
                f"{self.path}: has no stats_reset and exported_at to tell how long the counters ran; "
                f"export it with the query in {DOCS} or pass --window-minutes N"
            )
        minutes = (self.exported_at - self.stats_reset).total_seconds() / 60.0
        if minutes <= 0:
            raise StatsImportError(
                f"{self.path}: stats_reset ({self.stats_reset.isoformat()}) is not before exported_at "
                f"({self.exported_at.isoformat()}); re-export it or pass --window-minutes N"
            )
        return minutes


def _bad(path: Path, what: str) -> StatsImportError:
    return StatsImportError(f"{path}: {what}; export it with the query in {DOCS}")


def _timestamp(value: Any, column: str, path: Path, where: str) -> datetime | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise _bad(path, f"{where}{column} is {value!r}, not a timestamp")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise _bad(path, f"{where}{column} is {value!r}, not an ISO 8601 timestamp (set DateStyle to ISO)") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


def _number(value: Any, column: str, path: Path, where: str, *, whole: bool) -> float:
    if isinstance(value, bool):
        raise _bad(path, f"{where}{column} is {value!r}, not a number")
    try:
        number = float(value) if not isinstance(value, (int, float)) else float(value)
    except (TypeError, ValueError):
        raise _bad(path, f"{where}{column} is {value!r}, not a number") from None
    if not math.isfinite(number) or number < 0 or (whole and number != int(number)):
        kind = "a whole number >= 0" if whole else "a number >= 0"
        raise _bad(path, f"{where}{column} is {value!r}, not {kind}")
    return number


def _lower_keys(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(key).strip().lower(): value for key, value in row.items() if key is not None}


def _statement(row: Mapping[str, Any], path: Path, where: str) -> ProductionStatement:
    query = row.get("query")
    if not isinstance(query, str):
        raise _bad(path, f"{where}query is {query!r}, not SQL text")
    calls = int(_number(row.get("calls"), "calls", path, where, whole=True))
    if row.get("total_exec_time") not in (None, ""):
        total = _number(row["total_exec_time"], "total_exec_time", path, where, whole=False)
    elif row.get("total_time") not in (None, ""):  # PostgreSQL 12 and older
        total = _number(row["total_time"], "total_time", path, where, whole=False)
    else:
        mean_key = "mean_exec_time" if row.get("mean_exec_time") not in (None, "") else "mean_time"
        total = _number(row.get(mean_key), mean_key, path, where, whole=False) * calls
    return ProductionStatement(query, calls, total)


def _check_columns(columns: Iterable[str], path: Path) -> None:
    found = set(columns)
    missing = [c for c in ("query", "calls") if c not in found]
    if not found & {"total_exec_time", "mean_exec_time", "total_time", "mean_time"}:
        missing.append("total_exec_time or mean_exec_time")
    if missing:
        raise _bad(path, f"has no {', '.join(missing)} column (found: {', '.join(sorted(found)) or 'none'})")


def _from_rows(rows: Sequence[Mapping[str, Any]], path: Path, top: Mapping[str, Any], first_line: int) -> StatsExport:
    statements: list[ProductionStatement] = []
    reset: datetime | None = _timestamp(top.get("stats_reset"), "stats_reset", path, "")
    exported: datetime | None = _timestamp(top.get("exported_at"), "exported_at", path, "")
    dealloc_value = top.get("dealloc")
    for index, raw in enumerate(rows):
        where = f"row {index + first_line}: "
        if not isinstance(raw, Mapping):
            raise _bad(path, f"{where}is {type(raw).__name__}, not an object with query and calls")
        row = _lower_keys(raw)
        if index == 0:
            _check_columns(row, path)
        statements.append(_statement(row, path, where))
        reset = reset or _timestamp(row.get("stats_reset"), "stats_reset", path, where)
        exported = exported or _timestamp(row.get("exported_at"), "exported_at", path, where)
        if dealloc_value in (None, ""):
            dealloc_value = row.get("dealloc")
    dealloc = None
    if dealloc_value not in (None, ""):
        dealloc = int(_number(dealloc_value, "dealloc", path, "", whole=True))
    if not statements:
        raise _bad(
            path,
            "holds no statements (is pg_stat_statements in shared_preload_libraries, and was the export run "
            "in the application's database?)",
        )
    return StatsExport(path, tuple(statements), reset, exported, dealloc)


def _read_json(text: str, path: Path) -> StatsExport:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _bad(path, f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(document, list):
        return _from_rows(document, path, {}, 1)
    if isinstance(document, dict):
        top = _lower_keys(document)
        rows = top.get("statements")
        if isinstance(rows, list):
            return _from_rows(rows, path, top, 1)
        if rows is None and "statements" in top:
            return _from_rows([], path, top, 1)
    raise _bad(path, "is JSON but neither a list of statements nor an object with a `statements` list")


def _read_csv(text: str, path: Path) -> StatsExport:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = [str(c).strip().lower() for c in (reader.fieldnames or [])]
        if not columns:
            raise _bad(path, "is empty")
        _check_columns(columns, path)
        rows = [dict(row) for row in reader]
    except csv.Error as exc:
        raise _bad(path, f"is not valid CSV ({exc})") from None
    return _from_rows(rows, path, {}, 2)


def read_export(path: Path) -> StatsExport:
    """Read a pg_stat_statements export: JSON (`.json`, or text starting with `{`/`[`) or CSV with a header."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise StatsImportError(f"{path}: file not found; export pg_stat_statements with the query in {DOCS}") from None
    except IsADirectoryError:
        raise StatsImportError(f"{path}: is a directory; pass the exported CSV or JSON file") from None
    except UnicodeDecodeError:
        raise _bad(path, "is not UTF-8 text") from None
    except OSError as exc:
        raise StatsImportError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    head = text.lstrip()[:1]
    if path.suffix.lower() == ".json" or head in ("{", "["):
        return _read_json(text, path)
    if not head:
        raise _bad(path, "is empty")
    return _read_csv(text, path)


# --------------------------------------------------------------------------------------------------
# Statement keys
# --------------------------------------------------------------------------------------------------


def _tokens(sql: str) -> list[str]:
    tokens: list[str] = []
    last_end = -1  # where the previous code token ended, to see string prefixes written flush (E'..')
    for chunk in scan(sql):
        text = chunk.text
        if not chunk.code:
            if text.startswith(("'", "$")):
                if tokens and chunk.start == last_end:
                    if tokens[-1] in _STRING_PREFIXES:
                        tokens.pop()
                    elif tokens[-2:] == ["u", "&"]:
                        del tokens[-2:]
                tokens.append(_VALUE)
            elif text.startswith('"'):
                inner = text[1:-1]
                tokens.append(inner if _IDENTIFIER.fullmatch(inner) else text)
            last_end = -1
            continue  # comments
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            value = match.group(0)
            if kind in ("param", "number"):
                tokens.append(_VALUE)
            elif kind == "percent":
                tokens.append("%")
            elif kind == "word":
                word = value.lower()
                tokens.append(_VALUE if word in _CONSTANT_WORDS else word)
            else:
                tokens.append(value)
            last_end = chunk.start + match.end()
    return tokens


_OPERATOR = re.compile(r"[-+*/<>=~!@#%^&|`]+")
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")


def _sign_position(previous: str | None) -> bool:
    """Whether a `-`/`+` after `previous` is a sign (`= -1`, `(-1`, `select -1`) rather than an operator."""
    return previous is None or previous in _SIGN_CONTEXT or previous in ("(", ",", "[", "::") or bool(_OPERATOR.fullmatch(previous))


def _normalise(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        # a sign glued to a value: `= -1` is one constant to PostgreSQL
        if token in ("-", "+") and following == _VALUE and _sign_position(out[-1] if out else None):
            i += 1
            continue
        # a cast of a value (`'2026-05-01'::timestamptz`, as client-side binding writes it) is the value
        if token == "::" and out and out[-1] == _VALUE and following is not None and _IDENTIFIER.fullmatch(following):
            i += 2
            if tokens[i : i + 1] == ["("] and ")" in tokens[i:]:
                i = tokens.index(")", i) + 1
            while tokens[i : i + 2] == ["[", "]"]:
                i += 2
            continue
        # LIMIT ALL is a NULL constant to pg_stat_statements
        if token == "all" and out and out[-1] == "limit":
            out.append(_VALUE)
            i += 1
            continue
        # EXTRACT(field FROM ...): PostgreSQL turns the field into a constant
        if out[-2:] == ["extract", "("] and following == "from":
            token = _VALUE
        out.append(token)
        i += 1
    # IN (?, ?, ?) is one list whatever its length
    collapsed: list[str] = []
    j = 0
    while j < len(out):
        if out[j] == "in" and out[j + 1 : j + 3] == ["(", _VALUE]:
            k = j + 3
            while out[k : k + 2] == [",", _VALUE]:
                k += 2
            if k < len(out) and out[k] == ")":
                collapsed.extend(["in", "(", _VALUE, ")"])
                j = k + 1
                continue
        collapsed.append(out[j])
        j += 1
    while collapsed and collapsed[-1] == ";":
        collapsed.pop()
    return collapsed


def statement_key(sql: str) -> str:
    """A key equal for a catalog query and pg_stat_statements' text of the same statement."""
    return hashlib.sha256(" ".join(_normalise(_tokens(sql))).encode("utf-8")).hexdigest()[:16]


def is_application_statement(sql: str) -> bool:
    """A DML statement that reads or writes at least one table outside the system catalogs."""
    tokens = _normalise(_tokens(sql))
    if not tokens or tokens[0] not in _APP_FIRST_WORDS:
        return False
    for before, name in zip(tokens, tokens[1:]):
        if before in _RELATION_AFTER and re.match(r'[A-Za-z_"]', name) and name not in ("lateral", "only"):
            bare = name.strip('"').lower()
            if not (bare.startswith("pg_") or bare in ("information_schema", "unnest", "generate_series")):
                return True
    return False


# --------------------------------------------------------------------------------------------------
# Matching and rates
# --------------------------------------------------------------------------------------------------


@dataclass
class Rate:
    """Production traffic of one statement shape over the window."""

    calls: int = 0
    total_ms: float = 0.0
    statements: int = 0
    text: str = ""
    _text_calls: int = -1

    def add(self, statement: ProductionStatement) -> None:
        self.calls += statement.calls
        self.total_ms += statement.total_exec_time_ms
        self.statements += 1
        if statement.calls > self._text_calls:
            self.text, self._text_calls = statement.query, statement.calls

    @property
    def mean_ms(self) -> float:
        return self.total_ms / self.calls if self.calls else 0.0


@dataclass(frozen=True)
class Matched:
    """A catalog query with its production rate (None when production never ran it)."""

    query: GuardedQuery
    calls_per_minute: float | None
    mean_ms: float | None
    written_value: str | None
    has_line: bool = True
    shared_with: tuple[str, ...] = ()

    @property
    def changes(self) -> bool:
        """Whether writing would change the catalog: a new line, or another value."""
        if self.written_value is None:
            return False
        return not self.has_line or float(self.written_value) != self.query.calls_per_minute


@dataclass(frozen=True)
class Unguarded:
    text: str
    calls_per_minute: float
    mean_ms: float
    ms_per_minute: float


@dataclass(frozen=True)
class ImportResult:
    export: StatsExport
    window_minutes: float
    matched: tuple[Matched, ...]
    unguarded: tuple[Unguarded, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def format_rate(calls_per_minute: float) -> str:
    """A calls-per-minute value for a catalog line: 3 significant figures, no exponent, no trailing zeros.

    Rounding keeps a re-import from rewriting 19,873.4 as 19,877.2: the catalog changes only when
    production's rate really moved.
    """
    if calls_per_minute <= 0:
        return "0"
    digits = 2 - int(math.floor(math.log10(calls_per_minute)))
    rounded = round(calls_per_minute, digits)
    if rounded == int(rounded):
        return str(int(rounded))
    return f"{rounded:.{max(digits, 0)}f}".rstrip("0").rstrip(".")


def match_export(
    export: StatsExport,
    queries: Sequence[GuardedQuery],
    window_minutes: float,
    *,
    rate_lines: Mapping[tuple[str, str], bool] | None = None,
) -> ImportResult:
    """Sum each catalog query's production calls; list the application statements no query matches."""
    by_key: dict[str, list[int]] = {}
    by_fingerprint: dict[str, list[int]] = {}
    for index, query in enumerate(queries):
        by_key.setdefault(statement_key(query.sql), []).append(index)
        by_fingerprint.setdefault(identify(query.sql).fingerprint, []).append(index)
    rates = [Rate() for _ in queries]
    leftovers: dict[str, Rate] = {}
    unmatched: list[tuple[str, ProductionStatement]] = []
    for statement in export.statements:
        key = statement_key(statement.query)
        targets = by_key.get(key)
        if targets:
            for index in targets:
                rates[index].add(statement)
        else:
            unmatched.append((key, statement))
    still_unseen = any(rate.calls == 0 and not rate.statements for rate in rates)
    ranked = sorted(unmatched, key=lambda item: -item[1].calls)
    for position, (key, statement) in enumerate(ranked):
        targets = None
        if still_unseen and position < _IDENTIFY_LIMIT and is_application_statement(statement.query):
            targets = by_fingerprint.get(identify(statement.query).fingerprint)
        if targets:
            for index in targets:
                rates[index].add(statement)
        elif is_application_statement(statement.query):
            leftovers.setdefault(key, Rate()).add(statement)
    matched: list[Matched] = []
    sharing: dict[int, tuple[str, ...]] = {}
    for indexes in list(by_key.values()):
        if len(indexes) > 1:
            for i in indexes:
                sharing[i] = tuple(queries[j].name for j in indexes if j != i)
    for index, (query, rate) in enumerate(zip(queries, rates)):
        if rate.statements:
            per_minute = rate.calls / window_minutes
            has_line = True if rate_lines is None else rate_lines.get((_source_path(query), query.name), True)
            matched.append(Matched(query, per_minute, rate.mean_ms, format_rate(per_minute), has_line, sharing.get(index, ())))
        else:
            matched.append(Matched(query, None, None, None, True, sharing.get(index, ())))
    unguarded = sorted(
        (
            Unguarded(" ".join(rate.text.split()), rate.calls / window_minutes, rate.mean_ms, rate.total_ms / window_minutes)
            for rate in leftovers.values()
        ),
        key=lambda u: (-u.calls_per_minute, u.text),
    )
    notes: list[str] = []
    hidden = [s for s in export.statements if s.query.strip() == "<insufficient privilege>"]
    if hidden:
        notes.append(
            f"{len(hidden):,} statements ({sum(s.calls for s in hidden):,} calls) show <insufficient privilege> instead "
            "of their SQL: export as a superuser or a member of pg_read_all_stats"
        )
    if export.dealloc:
        notes.append(
            f"pg_stat_statements evicted statements {export.dealloc:,} times since the reset (pg_stat_statements.max "
            "is too small): rare statements' counts may be low"
        )
    if window_minutes < 60:
        span = f"{window_minutes:,.1f} minutes" if window_minutes >= 1 else f"{window_minutes * 60:,.1f} seconds"
        notes.append(f"the window is only {span}: rates from a short window may miss the daily peak")
    return ImportResult(export, window_minutes, tuple(matched), tuple(unguarded), tuple(notes))


def _source_path(query: GuardedQuery) -> str:
    return query.source.path if query.source else ""


# --------------------------------------------------------------------------------------------------
# Rewriting catalog files
# --------------------------------------------------------------------------------------------------

_NAME = re.compile(r"^\s*--\s*name\s*:\s*\S+\s*$")
_RATE = re.compile(r"^(?P<head>\s*--\s*calls-per-minute\s*:\s*)(?P<value>.*?)(?P<tail>\s*)$")
_LINE_END = re.compile(r"(\r\n|\r|\n|\x0b|\x0c|\x1c|\x1d|\x1e|\x85|\u2028|\u2029)$")


def _split_ending(line: str) -> tuple[str, str]:
    match = _LINE_END.search(line)
    return (line[: match.start()], match.group(0)) if match else (line, "")


@dataclass(frozen=True)
class _Block:
    name_line: int
    rate_line: int | None


def _blocks(lines: Sequence[str]) -> list[_Block]:
    """Where each query's `-- name:` line and its `-- calls-per-minute:` line (if any) are, in order.

    Mirrors catalog.parse_catalog: metadata lines are the comment lines between the name and the
    first line of SQL.
    """
    blocks: list[_Block] = []
    name_line: int | None = None
    rate_line: int | None = None
    in_meta = False
    for number, raw in enumerate(lines):
        line, _ = _split_ending(raw)
        stripped = line.strip()
        if _NAME.match(stripped):
            if name_line is not None:
                blocks.append(_Block(name_line, rate_line))
            name_line, rate_line, in_meta = number, None, True
            continue
        if name_line is None or not in_meta:
            continue
        if stripped.startswith("--"):
            if rate_line is None and _RATE.match(line):
                rate_line = number
        elif stripped:
            in_meta = False
    if name_line is not None:
        blocks.append(_Block(name_line, rate_line))
    return blocks


def rate_lines(text: str, path: Path) -> dict[str, bool]:
    """For each query of a catalog text, whether it has its own `-- calls-per-minute:` line."""
    queries = parse_catalog(text, path)
    blocks = _blocks(text.splitlines(keepends=True))
    return {query.name: block.rate_line is not None for query, block in zip(queries, blocks)}


def rewrite_rates(text: str, path: Path, values: Mapping[str, str]) -> str:
    """`text` with the `-- calls-per-minute:` value of each named query set to `values[name]`.

    An existing line keeps its spelling, spacing and line ending and only its value changes; a query
    without one gets `-- calls-per-minute: N` right under its name line. Everything else is kept
    byte for byte. The result is parsed again to prove that only those rates changed.
    """
    before = parse_catalog(text, path)
    lines = text.splitlines(keepends=True)
    blocks = _blocks(lines)
    if len(blocks) != len(before):
        raise StatsImportError(f"{path}: could not line up its queries for rewriting; edit the calls-per-minute lines by hand")
    inserts: dict[int, str] = {}
    for query, block in zip(before, blocks):
        if query.name not in values:
            continue
        value = values[query.name]
        if block.rate_line is not None:
            body, ending = _split_ending(lines[block.rate_line])
            match = _RATE.match(body)
            assert match is not None
            lines[block.rate_line] = match.group("head") + value + match.group("tail") + ending
        else:
            _, ending = _split_ending(lines[block.name_line])
            if not ending:  # a name line at the very end of the file has no SQL: parse_catalog refuses it
                ending = "\n"
            inserts[block.name_line] = f"-- calls-per-minute: {value}{ending}"
    result: list[str] = []
    for number, line in enumerate(lines):
        result.append(line)
        if number in inserts:
            result.append(inserts[number])
    new_text = "".join(result)
    after = parse_catalog(new_text, path)
    expected = [
        (q.name, q.sql, q.params, q.budget_ms, float(values[q.name]) if q.name in values else q.calls_per_minute)
        for q in before
    ]
    got = [(q.name, q.sql, q.params, q.budget_ms, q.calls_per_minute) for q in after]
    if expected != got:
        raise StatsImportError(f"{path}: rewriting its calls-per-minute lines would change more than the rates; edit them by hand")
    return new_text


def write_rates(result: ImportResult) -> list[Path]:
    """Rewrite the catalog files of matched queries whose rate changed; return the files written."""
    per_file: dict[str, dict[str, str]] = {}
    for item in result.matched:
        if item.written_value is not None and item.changes and item.query.source is not None:
            per_file.setdefault(item.query.source.path, {})[item.query.name] = item.written_value
    written: list[Path] = []
    for name, values in sorted(per_file.items()):
        path = Path(name)
        try:
            original = path.read_bytes()
        except OSError as exc:
            raise StatsImportError(f"{path}: cannot be read for rewriting ({exc.strerror or exc})") from None
        text = original.decode("utf-8")
        new_text = rewrite_rates(text, path, values)
        encoded = new_text.encode("utf-8")
        if encoded == original:
            continue
        _replace(path, encoded)
        written.append(path)
    return written


def _replace(path: Path, data: bytes) -> None:
    """Write atomically next to the file, keeping its permission bits."""
    mode = path.stat().st_mode & 0o7777
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise
