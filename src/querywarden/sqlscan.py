"""A lexical scanner for PostgreSQL text: where statements end and which placeholders a query uses.

It understands just enough of the lexical grammar (quoted strings, quoted identifiers, dollar quotes,
line and block comments) that a `;` or `%s` inside a string or comment is never taken for syntax.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_NAMED = re.compile(r"%\((?P<name>[^)]*)\)[sbt]")


@dataclass(frozen=True)
class Chunk:
    """A piece of SQL text: `code` is outside strings and comments, where syntax lives."""

    text: str
    code: bool
    start: int


def scan(sql: str) -> Iterator[Chunk]:
    """Split SQL into code and non-code (string, identifier, comment) chunks, in order."""
    i = 0
    code_start = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        end = -1
        if c == "'" or c == '"':
            # E'…' strings take backslash escapes: E'\'' is one quote inside the string, not its end.
            escapes = c == "'" and i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] in "_$"))
            end = i + 1
            while end < n:
                if escapes and sql[end] == "\\":
                    end += 2
                    continue
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:
                        end += 2
                        continue
                    break
                end += 1
            end = min(end + 1, n)
        elif sql.startswith("--", i):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
        elif sql.startswith("/*", i):
            depth, end = 1, i + 2
            while end < n and depth:
                if sql.startswith("/*", end):
                    depth, end = depth + 1, end + 2
                elif sql.startswith("*/", end):
                    depth, end = depth - 1, end + 2
                else:
                    end += 1
        elif c == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            match = _DOLLAR_TAG.match(sql, i)
            if match:
                close = sql.find(match.group(0), match.end())
                end = n if close < 0 else close + len(match.group(0))
        if end < 0:
            i += 1
            continue
        if code_start < i:
            yield Chunk(sql[code_start:i], True, code_start)
        yield Chunk(sql[i:end], False, i)
        i = code_start = end
    if code_start < n:
        yield Chunk(sql[code_start:], True, code_start)


def split_statements(sql: str) -> list[str]:
    """Split a script into statements at top-level semicolons; drop empty and comment-only ones."""
    statements: list[str] = []
    current: list[str] = []
    has_code = False
    for chunk in scan(sql):
        if not chunk.code:
            current.append(chunk.text)
            continue
        parts = chunk.text.split(";")
        for index, part in enumerate(parts):
            current.append(part)
            has_code = has_code or bool(part.strip())
            if index < len(parts) - 1:
                if has_code:
                    statements.append("".join(current).strip())
                current, has_code = [], False
    if has_code:
        statements.append("".join(current).strip())
    return statements


@dataclass(frozen=True)
class Placeholders:
    """psycopg placeholders found in a query: `%(name)s` names, and how many positional `%s`."""

    names: tuple[str, ...]
    positional: int


def placeholders(sql: str) -> Placeholders:
    names: list[str] = []
    positional = 0
    for chunk in scan(sql):
        if not chunk.code:
            continue
        text = chunk.text
        i = 0
        while i < len(text):
            if text[i] != "%":
                i += 1
                continue
            if text.startswith("%%", i):
                i += 2
                continue
            named = _NAMED.match(text, i)
            if named:
                if named.group("name") not in names:
                    names.append(named.group("name"))
                i = named.end()
            elif text[i + 1 : i + 2] in ("s", "b", "t"):
                positional += 1
                i += 2
            else:
                i += 1
    return Placeholders(tuple(names), positional)
