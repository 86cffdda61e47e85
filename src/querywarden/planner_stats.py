"""Production's planner statistics behind the seeded template (PostgreSQL 18's pg_restore_*_stats).

A statistics file is production's column statistics (null fraction, width, n_distinct, most common
values and their frequencies, histograms, correlation) and relation sizes, exported either with the
query in docs/production-stats.md (JSON) or with `pg_dump --statistics-only` (SQL). The seed item
`planner-stats:prod-stats.json` (or `.sql`) writes its column statistics into the seeded template
while it is built, and pins them (`SET STATISTICS 0` on every imported column), so neither the
build's own VACUUM ANALYZE nor any later ANALYZE of a clone replaces them. Columns the file does not
cover keep the seed's own statistics.

What that gives and what not: selectivities (what fraction of a table a condition keeps, how skewed
a column is, how well its order follows the heap) are production's. Table sizes are not: the planner
reads a table's page count from the file on disk at planning time and scales the stored
tuples-per-page by it, so row estimates are production's fractions of the seed's row counts. Plans
that depend on how big a table is (seq scan against index scan on a small table, hash against
nested loop for a big join) still follow the seed's volume. Relation statistics are therefore read
(to say how far the seed is from production's size) and not written: the build's VACUUM would
replace them, and where they survived the planner would only take their rows per page.

The file comes from a pull request like everything else, so it is never executed: a pg_dump file is
parsed as data (the calls pg_dump writes, argument literals only; any other statement refuses the
file), every key is checked against the keys PostgreSQL 18 accepts, every value against its type,
and every relation and column must exist in the template. The statistics are then written through
parameterised calls of pg_restore_attribute_stats with our own SQL text.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .errors import ConfigError, DatabaseError

ITEM_PREFIX = "planner-stats:"
ENVIRONMENT_KEY = "planner_statistics"
MIN_SERVER_VERSION = 180000
# Far above a real export (a few hundred tables at statistics target 100 is a few MiB).
MAX_FILE_BYTES = 64 * 1024 * 1024
_MAX_TEXT = 4 * 1024 * 1024
_MAX_NAME = 63  # NAMEDATALEN - 1

Progress = Callable[[str], None]


# The export of docs/production-stats.md (a test keeps the two the same): run it in production's
# application database with psql -XAtq; PostgreSQL 14 or later.
EXPORT_QUERY = """\
-- querywarden export: planner statistics (json)
SELECT json_build_object(
    'source', 'pg_stats',
    'server_version_num', current_setting('server_version_num')::int,
    'exported_at', now(),
    'relations', coalesce((
        SELECT json_agg(json_build_object(
                   'schemaname', n.nspname,
                   'relname', c.relname,
                   'relpages', c.relpages,
                   'reltuples', c.reltuples,
                   'relallvisible', c.relallvisible)
               ORDER BY n.nspname, c.relname)
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'm', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
    ), '[]'::json),
    'attributes', coalesce((
        SELECT json_agg(
                   (to_jsonb(s) - 'most_common_vals' - 'histogram_bounds' - 'most_common_elems'
                                - 'range_length_histogram' - 'range_bounds_histogram' - 'range_empty_frac')
                   || jsonb_strip_nulls(jsonb_build_object(
                          'most_common_vals', s.most_common_vals::text,
                          'histogram_bounds', s.histogram_bounds::text,
                          'most_common_elems', s.most_common_elems::text))
               ORDER BY s.schemaname, s.tablename, s.attname, s.inherited)
        FROM pg_stats AS s
        WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema') AND s.schemaname !~ '^pg_(toast|temp_)'
    ), '[]'::json)
);
"""


class PlannerStatsError(ConfigError):
    """A planner statistics file cannot be used, or cannot be applied on this server."""


# The column statistics pg_restore_attribute_stats (PostgreSQL 18) accepts, with the SQL type each
# value is passed as. Anyarray values (most_common_vals, histogram_bounds, ...) travel as text and
# are read by the column type's own input function on the server.
ATTRIBUTE_KEYS: Mapping[str, str] = {
    "null_frac": "real",
    "avg_width": "integer",
    "n_distinct": "real",
    "most_common_vals": "text",
    "most_common_freqs": "real[]",
    "histogram_bounds": "text",
    "correlation": "real",
    "most_common_elems": "text",
    "most_common_elem_freqs": "real[]",
    "elem_count_histogram": "real[]",
    "range_length_histogram": "text",
    "range_empty_frac": "real",
    "range_bounds_histogram": "text",
}
RELATION_KEYS: Mapping[str, str] = {
    "relpages": "integer",
    "reltuples": "real",
    "relallvisible": "integer",
    "relallfrozen": "integer",
}
_IDENTITY_KEYS = ("schemaname", "relname", "tablename", "attname", "attnum", "inherited", "version")


@dataclass(frozen=True)
class RelationStats:
    """Production's size of one relation (read, reported, never written)."""

    schema: str
    name: str
    relpages: int | None = None
    reltuples: float | None = None
    relallvisible: int | None = None


@dataclass(frozen=True)
class AttributeStats:
    """Production's statistics of one column (`attname`), or of an index expression (`attnum`)."""

    schema: str
    relation: str
    attname: str | None
    attnum: int | None
    inherited: bool
    values: tuple[tuple[str, Any], ...]

    @property
    def column(self) -> str:
        return self.attname if self.attname is not None else f"#{self.attnum}"

    @property
    def where(self) -> str:
        return f"{self.schema}.{self.relation}.{self.column}" + (" (inherited)" if self.inherited else "")


@dataclass(frozen=True)
class PlannerStats:
    """A parsed, validated planner statistics file."""

    path: Path
    kind: str  # "json" or "pg_dump"
    digest: str  # sha256 of the file's bytes, first 12 hex digits
    server_version: int | None
    relations: tuple[RelationStats, ...]
    attributes: tuple[AttributeStats, ...]

    @property
    def environment_value(self) -> str:
        return f"imported {self.digest}"


@dataclass(frozen=True)
class ApplyReport:
    """What writing a statistics file into a database did."""

    stats: PlannerStats
    applied: tuple[str, ...]  # schema.relation.column
    skipped: tuple[tuple[str, str], ...]  # (schema.relation.column, why)
    tables: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        text = (
            f"planner statistics {self.stats.path.name} (imported {self.stats.digest}): "
            f"{len(self.applied)} column(s) of {len(self.tables)} relation(s) written and pinned"
        )
        if self.skipped:
            shown = ", ".join(f"{where} ({why})" for where, why in self.skipped[:8])
            more = f" and {len(self.skipped) - 8} more" if len(self.skipped) > 8 else ""
            text += f"; skipped {len(self.skipped)}: {shown}{more}"
        return text


# --------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------


def _bad(path: Path, what: str) -> PlannerStatsError:
    return PlannerStatsError(f"planner statistics {path}: {what}")


def _name(value: Any, key: str, path: Path, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_NAME or "\0" in value:
        raise _bad(path, f"{where}: {key} must be a name of 1 to {_MAX_NAME} characters, not {value!r}")
    return value


def _real(value: Any, key: str, path: Path, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _bad(path, f"{where}: {key} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(path, f"{where}: {key} must be a finite number, not {value!r}")
    return float(value)


def _integer(value: Any, key: str, path: Path, where: str) -> int:
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,10}", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**31:
        raise _bad(path, f"{where}: {key} must be a whole number, not {value!r}")
    return value


def _boolean(value: Any, key: str, path: Path, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("t", "true", "f", "false"):
        return value.lower() in ("t", "true")
    raise _bad(path, f"{where}: {key} must be true or false, not {value!r}")


def _reals(value: Any, key: str, path: Path, where: str) -> list[float]:
    if isinstance(value, str):  # pg_dump's '{0.1,0.2}'::real[]
        body = value.strip()
        if not (body.startswith("{") and body.endswith("}")):
            raise _bad(path, f"{where}: {key} must be an array of numbers, not {value[:40]!r}")
        inner = body[1:-1].strip()
        value = [part.strip() for part in inner.split(",")] if inner else []
    if not isinstance(value, list) or len(value) > 100_000:
        raise _bad(path, f"{where}: {key} must be an array of numbers")
    return [_real(item, key, path, where) for item in value]


def _text(value: Any, key: str, path: Path, where: str) -> str:
    if not isinstance(value, str):
        raise _bad(path, f"{where}: {key} must be the array's text form (export it with ::text, see "
                         f"docs/production-stats.md), not JSON {type(value).__name__}")
    if len(value) > _MAX_TEXT or "\0" in value:
        raise _bad(path, f"{where}: {key} is too long or holds a NUL character")
    return value


def _value(kind: str, value: Any, key: str, path: Path, where: str) -> Any:
    if kind == "real":
        return _real(value, key, path, where)
    if kind == "integer":
        return _integer(value, key, path, where)
    if kind == "real[]":
        return _reals(value, key, path, where)
    return _text(value, key, path, where)


def _attribute(row: Mapping[str, Any], path: Path, where: str, *, from_dump: bool) -> AttributeStats:
    schema = _name(row.get("schemaname"), "schemaname", path, where)
    relation = _name(row.get("relname", row.get("tablename")), "relname", path, where)
    attname = row.get("attname")
    attnum = row.get("attnum")
    if (attname is None) == (attnum is None):
        raise _bad(path, f"{where}: give attname or attnum (one of them)")
    name = None if attname is None else _name(attname, "attname", path, where)
    number = None if attnum is None else _integer(attnum, "attnum", path, where)
    if number is not None and number <= 0:
        raise _bad(path, f"{where}: attnum must be positive, not {number}")
    inherited = _boolean(row.get("inherited", False), "inherited", path, where)
    values: list[tuple[str, Any]] = []
    for key, raw in sorted(row.items()):
        if key in _IDENTITY_KEYS or raw is None:
            continue
        kind = ATTRIBUTE_KEYS.get(key)
        if kind is None:
            if from_dump:
                raise _bad(path, f"{where}: unknown argument {key!r} of pg_restore_attribute_stats")
            continue  # another pg_stats column (a newer server's): not restorable, left out
        values.append((key, _value(kind, raw, key, path, where)))
    located = f"{where} ({schema}.{relation}.{name if name is not None else f'#{number}'})"
    if not values:
        raise _bad(path, f"{located}: holds no statistics")
    _check_pairs(dict(values), path, located)
    return AttributeStats(schema, relation, name, number, inherited, tuple(values))


def _check_pairs(values: Mapping[str, Any], path: Path, where: str) -> None:
    """Arrays that go together must come together and be as long as each other (PostgreSQL checks the
    values against the column type; these are what can be told without the server)."""
    for vals, freqs in (("most_common_vals", "most_common_freqs"), ("most_common_elems", "most_common_elem_freqs")):
        if (vals in values) != (freqs in values):
            raise _bad(path, f"{where}: {vals} and {freqs} go together; it has only one of them")
    for key in ("null_frac", "range_empty_frac"):
        if key in values and not 0.0 <= values[key] <= 1.0:
            raise _bad(path, f"{where}: {key} must be between 0 and 1, not {values[key]}")
    if "correlation" in values and not -1.0 <= values["correlation"] <= 1.0:
        raise _bad(path, f"{where}: correlation must be between -1 and 1, not {values['correlation']}")
    for key in ("most_common_freqs", "most_common_elem_freqs"):
        if any(not 0.0 <= f <= 1.0 for f in values.get(key, ())):
            raise _bad(path, f"{where}: {key} must hold fractions between 0 and 1")


def _relation(row: Mapping[str, Any], path: Path, where: str) -> RelationStats:
    schema = _name(row.get("schemaname"), "schemaname", path, where)
    relation = _name(row.get("relname", row.get("tablename")), "relname", path, where)
    for key in row:
        if key not in RELATION_KEYS and key not in ("schemaname", "relname", "tablename", "version", "relkind"):
            raise _bad(path, f"{where}: unknown relation statistic {key!r}")
    pages = row.get("relpages")
    tuples = row.get("reltuples")
    visible = row.get("relallvisible")
    return RelationStats(
        schema,
        relation,
        None if pages is None else _integer(pages, "relpages", path, where),
        None if tuples is None else _real(tuples, "reltuples", path, where),
        None if visible is None else _integer(visible, "relallvisible", path, where),
    )


def _from_json(text: str, path: Path) -> tuple[int | None, list[RelationStats], list[AttributeStats]]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _bad(path, f"is neither JSON nor pg_dump output ({exc}); export it as docs/production-stats.md shows") from None
    if not isinstance(document, dict) or not isinstance(document.get("attributes"), list):
        raise _bad(path, "is JSON but not a planner statistics export (an object with \"attributes\" and "
                         "\"relations\" lists); export it as docs/production-stats.md shows")
    version = document.get("server_version_num")
    server_version = None if version is None else _integer(version, "server_version_num", path, "the export")
    relations = document.get("relations") or []
    if not isinstance(relations, list):
        raise _bad(path, "\"relations\" must be a list")
    found_relations = []
    for number, row in enumerate(relations, start=1):
        if not isinstance(row, dict):
            raise _bad(path, f"relations[{number}] is not an object")
        found_relations.append(_relation(row, path, f"relations[{number}]"))
    found_attributes = []
    for number, row in enumerate(document["attributes"], start=1):
        if not isinstance(row, dict):
            raise _bad(path, f"attributes[{number}] is not an object")
        found_attributes.append(_attribute(row, path, f"attributes[{number}]", from_dump=False))
    return server_version, found_relations, found_attributes


# pg_dump --statistics-only: the calls it writes, and the session setup around them.
_CALL = re.compile(
    r"SELECT \* FROM pg_catalog\.(?P<function>pg_restore_relation_stats|pg_restore_attribute_stats)\(\s*", re.ASCII
)
_LITERAL = re.compile(r"'(?P<body>(?:[^']|'')*)'(?:::(?P<type>[a-z][a-z ]*(?:\[\])?))?", re.ASCII)
_SETUP = re.compile(
    r"(?:SET [a-z_]+ = [^;\n]+|SELECT pg_catalog\.set_config\('search_path', '', false\)|\\(?:un)?restrict [A-Za-z0-9]+)\s*;?\s*$",
    re.ASCII,
)


def _dump_arguments(text: str, start: int, path: Path, line: int) -> tuple[dict[str, str], int]:
    """The key/value literals of one pg_restore_*_stats call from `start` (after its parenthesis);
    returns them and the position after `);`."""
    pairs: list[str] = []
    position = start
    while True:
        match = _LITERAL.match(text, position)
        if match is None:
            raise _bad(path, f"line {line}: an argument of pg_restore_*_stats is not a quoted literal; "
                             "only pg_dump --statistics-only output is read")
        pairs.append(match.group("body").replace("''", "'"))
        position = match.end()
        rest = re.compile(r"\s*(,|\)\s*;)\s*").match(text, position)
        if rest is None:
            raise _bad(path, f"line {line}: unexpected text in a pg_restore_*_stats call")
        position = rest.end()
        if rest.group(1) != ",":
            break
    if len(pairs) % 2:
        raise _bad(path, f"line {line}: pg_restore_*_stats arguments must come in name/value pairs")
    arguments: dict[str, str] = {}
    for key, value in zip(pairs[::2], pairs[1::2]):
        if key in arguments:
            raise _bad(path, f"line {line}: argument {key!r} given twice")
        arguments[key] = value
    return arguments, position


def _from_dump(text: str, path: Path) -> tuple[int | None, list[RelationStats], list[AttributeStats]]:
    relations: list[RelationStats] = []
    attributes: list[AttributeStats] = []
    versions: set[int] = set()
    position = 0
    while position < len(text):
        line_end = text.find("\n", position)
        line_end = len(text) if line_end < 0 else line_end
        line_text = text[position:line_end].strip()
        line = text.count("\n", 0, position) + 1
        if not line_text or line_text.startswith("--") or _SETUP.match(line_text):
            position = line_end + 1
            continue
        call = _CALL.match(text, position)
        if call is None:
            raise _bad(path, f"line {line}: {line_text[:60]!r} is not part of pg_dump --statistics-only output; "
                             "the file is read as data and never run, so nothing else may be in it")
        arguments, position = _dump_arguments(text, call.end(), path, line)
        where = f"line {line}"
        if "version" in arguments:
            versions.add(_integer(arguments["version"], "version", path, where))
        if call.group("function") == "pg_restore_relation_stats":
            relations.append(_relation(arguments, path, where))
        else:
            attributes.append(_attribute(arguments, path, where, from_dump=True))
    if not relations and not attributes:
        raise _bad(path, "holds no pg_restore_relation_stats or pg_restore_attribute_stats call; "
                         "dump it with pg_dump --statistics-only (PostgreSQL 18)")
    if len(versions) > 1:
        raise _bad(path, f"its calls name several server versions ({sorted(versions)}); dump one server")
    return (versions.pop() if versions else None), relations, attributes


def read_planner_stats(path: Path) -> PlannerStats:
    """Parse and validate a statistics file: the JSON export or pg_dump --statistics-only output."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise _bad(path, f"is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; export only the application's schema")
        data = path.read_bytes()
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc}); check the planner-stats item") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(path, "is not UTF-8 text") from None
    stripped = text.lstrip()
    if stripped.startswith("{"):
        kind = "json"
        server_version, relations, attributes = _from_json(text, path)
    else:
        kind = "pg_dump"
        server_version, relations, attributes = _from_dump(text, path)
    seen: set[tuple[str, str, str | None, int | None, bool]] = set()
    for attribute in attributes:
        key = (attribute.schema, attribute.relation, attribute.attname, attribute.attnum, attribute.inherited)
        if key in seen:
            raise _bad(path, f"{attribute.where} has statistics twice")
        seen.add(key)
    return PlannerStats(path, kind, hashlib.sha256(data).hexdigest()[:12], server_version,
                        tuple(relations), tuple(attributes))


# --------------------------------------------------------------------------------------------------
# The seed item
# --------------------------------------------------------------------------------------------------


def is_item(item: str) -> bool:
    """Whether a seed item is `planner-stats:FILE`."""
    return item.startswith(ITEM_PREFIX)


def item_path(item: str, base_dir: Path) -> Path:
    name = item[len(ITEM_PREFIX):].strip()
    if not name:
        raise ConfigError(f"seed item {item!r} names no file; write planner-stats:path/to/prod-stats.json")
    path = Path(name)
    return path if path.is_absolute() else base_dir / path


def item_bytes(item: str, base_dir: Path) -> bytes:
    """What the item adds to the seed's fingerprint: its file's bytes (a changed file builds a new template)."""
    path = item_path(item, base_dir)
    try:
        return b"planner-stats\0" + path.read_bytes()
    except OSError as exc:
        raise _bad(path, f"cannot be read ({exc.strerror or exc}); check the planner-stats item") from None


def seed_environment(items: Iterable[str], base_dir: Path) -> dict[str, str]:
    """What baselines measured on a seed with imported statistics record: `planner_statistics: imported <sha12>`
    (several files: their digests joined by `+`). Empty when the seed imports none."""
    digests = [hashlib.sha256(item_bytes(item, base_dir)[len(b"planner-stats\0"):]).hexdigest()[:12]
               for item in items if is_item(item)]
    return {ENVIRONMENT_KEY: "imported " + "+".join(digests)} if digests else {}


def load_item(conn: psycopg.Connection[Any], item: str, base_dir: Path, progress: Progress) -> ApplyReport:
    """Seed.load's step for a `planner-stats:` item: read, validate and write the file's statistics."""
    report = apply_planner_stats(conn, read_planner_stats(item_path(item, base_dir)))
    progress(f"  {report.summary()}")
    return report


# --------------------------------------------------------------------------------------------------
# Applying
# --------------------------------------------------------------------------------------------------

_RELATIONS = """
SELECT n.nspname, c.relname, c.relkind, c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'm', 'p', 'i', 'I', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp_)'
"""
_ATTRIBUTES = """
SELECT a.attrelid, a.attname, a.attnum, coalesce(i.indkey[a.attnum - 1] = 0, false)
FROM pg_attribute a
LEFT JOIN pg_index i ON i.indexrelid = a.attrelid
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
"""


def check_server(conn: psycopg.Connection[Any], what: str) -> None:
    """A PlannerStatsError (exit 2) unless the server can write statistics (PostgreSQL 18+)."""
    version = conn.info.server_version
    if version < MIN_SERVER_VERSION:
        raise PlannerStatsError(
            f"{what} needs PostgreSQL 18 or later (pg_restore_attribute_stats); this server is "
            f"{version // 10000}.{version % 10000}: seed on PostgreSQL 18, or drop the planner-stats item"
        )


def _restore_statement(stats: AttributeStats, version: int | None) -> tuple[sql.Composed, list[Any]]:
    """Our own SQL text for one pg_restore_attribute_stats call; every value is a parameter."""
    parts: list[sql.Composable] = []
    params: list[Any] = []

    def pair(key: str, kind: str, value: Any) -> None:
        parts.append(sql.SQL("{}, {}::{}").format(sql.Literal(key), sql.Placeholder(), sql.SQL(kind)))
        params.append(value)

    if version is not None:
        pair("version", "integer", version)
    pair("schemaname", "text", stats.schema)
    pair("relname", "text", stats.relation)
    if stats.attname is not None:
        pair("attname", "text", stats.attname)
    else:
        pair("attnum", "smallint", stats.attnum)
    pair("inherited", "boolean", stats.inherited)
    for key, value in stats.values:
        pair(key, ATTRIBUTE_KEYS[key], value)  # keys were checked against ATTRIBUTE_KEYS when read
    return sql.SQL("SELECT pg_catalog.pg_restore_attribute_stats({})").format(sql.SQL(", ").join(parts)), params


def _pin_statement(schema: str, relation: str, relkind: str, attname: str, attnum: int) -> sql.Composed:
    """SET STATISTICS 0: ANALYZE leaves the column's (imported) statistics alone from now on."""
    if relkind in ("i", "I"):
        return sql.SQL("ALTER INDEX {} ALTER COLUMN {} SET STATISTICS 0").format(
            sql.Identifier(schema, relation), sql.Literal(attnum))
    what = {"m": "MATERIALIZED VIEW", "f": "FOREIGN TABLE"}.get(relkind, "TABLE ONLY")
    return sql.SQL("ALTER {} {} ALTER COLUMN {} SET STATISTICS 0").format(
        sql.SQL(what), sql.Identifier(schema, relation), sql.Identifier(attname))


def apply_planner_stats(conn: psycopg.Connection[Any], stats: PlannerStats) -> ApplyReport:
    """Write the file's column statistics into the connected database and pin them.

    Relations or columns the database does not have are skipped and reported (production may hold
    tables the application under test does not); a value PostgreSQL refuses (a most common value
    that is not of the column's type) stops the build with the server's words.
    """
    check_server(conn, f"planner statistics {stats.path}")
    conn.autocommit = True
    relations = {(schema, name): (kind, oid) for schema, name, kind, oid in conn.execute(_RELATIONS).fetchall()}
    columns: dict[int, dict[str, int]] = {}
    numbers: dict[int, dict[int, tuple[str, bool]]] = {}
    for relid, attname, attnum, expression in conn.execute(_ATTRIBUTES, ([oid for _, oid in relations.values()],)).fetchall():
        columns.setdefault(relid, {})[attname] = attnum
        numbers.setdefault(relid, {})[attnum] = (attname, bool(expression))
    warnings: list[str] = []

    def notice(diagnostic: psycopg.errors.Diagnostic) -> None:
        if diagnostic.severity_nonlocalized in ("WARNING", "ERROR"):
            warnings.append(diagnostic.message_primary or "")

    applied: list[str] = []
    skipped: list[tuple[str, str]] = []
    tables: set[str] = set()
    pins: list[sql.Composed] = []
    conn.add_notice_handler(notice)
    try:
        for attribute in stats.attributes:
            found = relations.get((attribute.schema, attribute.relation))
            if found is None:
                skipped.append((attribute.where, "no such table in the schema"))
                continue
            kind, oid = found
            if kind in ("i", "I"):
                number = attribute.attnum if attribute.attnum is not None else columns.get(oid, {}).get(attribute.attname or "")
                if number is None or number not in numbers.get(oid, {}):
                    skipped.append((attribute.where, "no such index column"))
                    continue
                attname, expression = numbers[oid][number]
                if not expression:  # a plain column of an index has no statistics of its own
                    skipped.append((attribute.where, "not an expression of the index"))
                    continue
                attnum = number
                attribute = replace(attribute, attname=None, attnum=number)  # pg_restore_attribute_stats takes attnum for indexes
            else:
                if attribute.attname is None or attribute.attname not in columns.get(oid, {}):
                    skipped.append((attribute.where, "no such column in the schema"))
                    continue
                attname, attnum = attribute.attname, columns[oid][attribute.attname]
            statement, params = _restore_statement(attribute, stats.server_version)
            warnings.clear()
            try:
                row = conn.execute(statement, params).fetchone()
            except psycopg.Error as exc:
                raise PlannerStatsError(
                    f"planner statistics {stats.path}: {attribute.where}: PostgreSQL refused them: "
                    f"{str(exc).strip().splitlines()[0]}"
                ) from None
            if not (row and row[0]):
                said = "; ".join(w for w in warnings if w) or "not all of them could be written"
                raise PlannerStatsError(f"planner statistics {stats.path}: {attribute.where}: PostgreSQL refused them: {said}")
            applied.append(attribute.where)
            tables.add(f"{attribute.schema}.{attribute.relation}")
            pins.append(_pin_statement(attribute.schema, attribute.relation, kind, attname, attnum))
    finally:
        conn.remove_notice_handler(notice)
    for pin in pins:
        try:
            conn.execute(pin)
        except psycopg.Error as exc:
            raise DatabaseError(f"planner statistics {stats.path}: cannot pin the imported statistics: "
                                f"{str(exc).strip().splitlines()[0]}") from None
    return ApplyReport(stats, tuple(applied), tuple(skipped), tuple(sorted(tables)))


def size_gap(conn: psycopg.Connection[Any], stats: PlannerStats) -> list[tuple[str, float, float]]:
    """Per table the file has a size for: (schema.table, production's rows, this database's rows).

    What imported statistics cannot carry: the planner takes the table's size from its file here."""
    rows = conn.execute(
        "SELECT n.nspname, c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'm', 'p')"
    ).fetchall()
    here = {(schema, name): float(tuples) for schema, name, tuples in rows}
    found = []
    for relation in stats.relations:
        key = (relation.schema, relation.name)
        if key in here and relation.reltuples is not None:
            found.append((f"{relation.schema}.{relation.name}", relation.reltuples, here[key]))
    return sorted(found)


def describe(stats: PlannerStats) -> list[str]:
    """Lines about a statistics file for `import-stats --planner`."""
    tables: dict[str, int] = {}
    for attribute in stats.attributes:
        tables[f"{attribute.schema}.{attribute.relation}"] = tables.get(f"{attribute.schema}.{attribute.relation}", 0) + 1
    sizes = {f"{r.schema}.{r.name}": r for r in stats.relations}
    version = (f"PostgreSQL {stats.server_version // 10000}" if stats.server_version else "server version not recorded")
    lines = [
        f"{stats.path}: {stats.kind} export ({version}), sha {stats.digest}: statistics of "
        f"{len(stats.attributes)} column(s) on {len(tables)} relation(s)",
        "",
    ]
    width = max([len("relation"), *(len(name) for name in tables)])
    header = f"{'relation':<{width}}  {'columns':>7}  {'rows':>14}  {'pages':>10}"
    lines += [header, "-" * len(header)]
    for name in sorted(tables):
        size = sizes.get(name)
        rows = f"{size.reltuples:,.0f}" if size and size.reltuples is not None and size.reltuples >= 0 else "?"
        pages = f"{size.relpages:,}" if size and size.relpages is not None else "?"
        lines.append(f"{name:<{width}}  {tables[name]:>7}  {rows:>14}  {pages:>10}")
    return lines


def canonical_json(stats: PlannerStats) -> str:
    """The file's statistics as querywarden's JSON export, sorted, so a committed file diffs well."""
    document = {
        "source": "querywarden planner statistics",
        "server_version_num": stats.server_version,
        "relations": [
            {key: value for key, value in (("schemaname", r.schema), ("relname", r.name), ("relpages", r.relpages),
                                           ("reltuples", r.reltuples), ("relallvisible", r.relallvisible))
             if value is not None}
            for r in sorted(stats.relations, key=lambda r: (r.schema, r.name))
        ],
        "attributes": [
            {"schemaname": a.schema, "relname": a.relation,
             **({"attname": a.attname} if a.attname is not None else {"attnum": a.attnum}),
             "inherited": a.inherited, **dict(a.values)}
            for a in sorted(stats.attributes, key=lambda a: (a.schema, a.relation, a.attname or "", a.attnum or 0, a.inherited))
        ],
    }
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def names_in(items: Sequence[str]) -> list[str]:
    return [item for item in items if is_item(item)]
