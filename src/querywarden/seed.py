"""Seeding: build a production-sized database once into a template, then clone it per run or test.

A seed is a schema (the application's DDL or migrations: changing it is what the guard reviews)
and data items; each is SQL files and/or Python callables (`module:function` or `path/to/file.py:function`,
called with a psycopg connection). After loading, tables are VACUUM ANALYZEd with a statistics target
high enough to sample whole tables, so planner costs are the same on every re-seed. The template's
name carries a fingerprint of the seed's contents and scale, so a changed seed builds a new one.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .database import Server, connect, scrub
from .errors import ConfigError, DatabaseError
from .sqlscan import split_statements

Progress = Callable[[str], None]
STATISTICS_TARGET = 10000
_LOCK_KEY = 0x71776172  # advisory lock serialising template builds on one server


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Seed:
    """What to load into a fresh database, and at what scale."""

    items: tuple[str, ...]
    scale: float = 1.0
    base_dir: Path = Path(".")
    schema: tuple[str, ...] = ()

    def _resolve(self, item: str) -> Path:
        path = Path(item)
        return path if path.is_absolute() else self.base_dir / path

    def _callable(self, item: str) -> Callable[..., Any]:
        target, _, function = item.rpartition(":")
        try:
            if target.endswith(".py"):
                path = self._resolve(target)
                spec = importlib.util.spec_from_file_location(f"querywarden_seed_{path.stem}", path)
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {path}")
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            else:
                module = importlib.import_module(target)
            found = getattr(module, function)
        except (ImportError, AttributeError, FileNotFoundError, SyntaxError) as exc:
            raise ConfigError(f"seed item {item!r} cannot be loaded ({exc}); use path.sql, module:function or file.py:function") from None
        if not callable(found):
            raise ConfigError(f"seed item {item!r} is not callable")
        return found  # type: ignore[no-any-return]

    def fingerprint(self) -> str:
        """Identity of the whole build (schema and data): names the template database."""
        return self._digest(self.schema + self.items)

    def data_fingerprint(self) -> str:
        """Identity of the data alone, recorded in baselines: another data set makes them incomparable,
        while a schema change (a dropped index) is exactly what gets compared."""
        return self._digest(self.items)

    def _digest(self, items: tuple[str, ...]) -> str:
        """Hash of every item's bytes (a callable's whole source file) and the scale."""
        digest = hashlib.sha256(f"scale={self.scale!r}".encode())
        for item in items:
            if item.endswith(".sql"):
                path = self._resolve(item)
            else:
                source = inspect.getsourcefile(self._callable(item))
                if source is None:
                    raise ConfigError(f"seed item {item!r}: its source file cannot be found to fingerprint it")
                path = Path(source)
            try:
                digest.update(item.encode() + b"\0" + path.read_bytes())
            except OSError as exc:
                raise ConfigError(f"seed file {path} cannot be read ({exc}); check the seed setting") from None
        return digest.hexdigest()[:12]

    def load(self, conn: psycopg.Connection[Any], progress: Progress = _quiet) -> int:
        """Run every item in order; return rows written. Reports each statement as it finishes."""
        conn.autocommit = True
        conn.execute("SELECT set_config('querywarden.scale', %s, false)", (repr(self.scale),))
        total_rows = 0
        for item in self.schema + self.items:
            if item.endswith(".sql"):
                path = self._resolve(item)
                try:
                    statements = split_statements(path.read_text(encoding="utf-8"))
                except OSError as exc:
                    raise ConfigError(f"seed file {path} cannot be read ({exc})") from None
                for number, statement in enumerate(statements, start=1):
                    started = time.perf_counter()
                    try:
                        cur = conn.execute(statement)
                    except psycopg.Error as exc:
                        raise DatabaseError(
                            f"seed {path} statement {number} failed: {str(exc).strip().splitlines()[0]}"
                        ) from None
                    elapsed = time.perf_counter() - started
                    writes = (cur.statusmessage or "").startswith(("INSERT", "COPY", "UPDATE", "SELECT INTO"))
                    rows = max(cur.rowcount, 0) if writes else 0
                    total_rows += rows
                    if rows:
                        progress(
                            f"  {path.name} #{number}: {rows:,} rows in {elapsed:.1f} s ({rows / max(elapsed, 1e-6):,.0f} rows/s)"
                        )
            else:
                started = time.perf_counter()
                self._callable(item)(conn)
                progress(f"  {item}: done in {time.perf_counter() - started:.1f} s")
        return total_rows


def analyze(conn: psycopg.Connection[Any], progress: Progress = _quiet) -> None:
    """VACUUM ANALYZE with whole-table statistics so re-seeding gives the same costs."""
    started = time.perf_counter()
    conn.autocommit = True
    conn.execute(sql.SQL("SET default_statistics_target = {}").format(sql.Literal(STATISTICS_TARGET)))
    conn.execute("VACUUM ANALYZE")
    progress(f"  VACUUM ANALYZE (statistics target {STATISTICS_TARGET}) in {time.perf_counter() - started:.1f} s")


def template_name(seed: Seed) -> str:
    return f"qw_seed_{seed.fingerprint()}"


def ensure_template(server: Server, seed: Seed, progress: Progress = _quiet) -> str:
    """The seeded template database for `seed` on `server`, built now unless a complete one exists.

    Builds run under an advisory lock and into a temporary name that is renamed only when complete,
    so concurrent runs (xdist workers) build once and an interrupted build is never reused.
    """
    name = template_name(seed)
    with server.admin() as admin:
        admin.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                progress(f"reusing seeded template {name}")
                return name
            building = f"{name}_building"
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(building)))
            server.create(building)
            progress(f"seeding {name} (scale {seed.scale:g})")
            started = time.perf_counter()
            try:
                with connect(server.dsn_for(building)) as conn:
                    rows = seed.load(conn, progress)
                    analyze(conn, progress)
            except BaseException:
                server.drop(building)
                raise
            progress(f"seeded {rows:,} rows in {time.perf_counter() - started:.1f} s")
            admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))
            admin.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true").format(sql.Identifier(name)))
            return name
        except psycopg.Error as exc:
            raise DatabaseError(f"cannot build seeded template {name}: {scrub(str(exc).splitlines()[0], server.dsn)}") from None
        finally:
            if not admin.closed:
                admin.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def seed_from_items(items: Sequence[str], scale: float, base_dir: Path) -> Seed:
    if not items:
        raise ConfigError("no seed given; set `seed` in [tool.querywarden] or pass --seed")
    return Seed(tuple(items), scale, base_dir)
