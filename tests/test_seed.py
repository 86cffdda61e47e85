"""Seeding: SQL and Python seed items, the scale, progress, autovacuum off, and template builds."""

from __future__ import annotations

import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from querywarden.database import Server, connect
from querywarden.errors import ConfigError, DatabaseError
from querywarden.seeding.seed import BUILD_LOCK_CLASS, Seed, build, drop_template, ensure_template, template_name

SEED_MODULE = textwrap.dedent(
    """
    from querywarden.seeding.kit import SeedKit

    def plain(conn):
        conn.execute("INSERT INTO calls (what) VALUES ('plain')")

    def with_scale(conn, scale):
        conn.execute("INSERT INTO calls (what, scale) VALUES ('with_scale', %s)", (scale,))
        return 7

    def with_kit(conn, *, kit: SeedKit):
        kit.generate("numbers", {"n": "g"}, kit.scaled(1000))

    def with_everything(conn, **extras):
        names = ",".join(sorted(extras))
        conn.execute("INSERT INTO calls (what, scale) VALUES (%s, %s)", (names, extras["kit"].scale))

    def in_a_transaction(conn):
        conn.autocommit = False
        conn.execute("INSERT INTO calls (what) VALUES ('in_a_transaction')")
    """
)


@pytest.fixture
def seed_dir(tmp_path: Path) -> Path:
    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE calls (what text, scale float8);\nCREATE TABLE numbers (n int);\n", encoding="utf-8"
    )
    (tmp_path / "data.sql").write_text(
        "SELECT setseed(0.5);\n"
        "INSERT INTO numbers SELECT g FROM generate_series(1, round(100 * current_setting('querywarden.scale')::numeric)::int) g;\n"
        "CREATE INDEX numbers_n ON numbers (n);\n",
        encoding="utf-8",
    )
    (tmp_path / "seedfile.py").write_text(SEED_MODULE, encoding="utf-8")
    return tmp_path


def test_sql_and_callables_load_with_the_scale_they_ask_for(seed_dir: Path, scratch_db: str) -> None:
    seed = Seed(
        ("data.sql", "seedfile.py:plain", "seedfile.py:with_scale", "seedfile.py:with_kit",
         "seedfile.py:with_everything", "seedfile.py:in_a_transaction"),
        0.5,
        seed_dir,
        schema=("schema.sql",),
    )
    said: list[str] = []
    with psycopg.connect(scratch_db) as conn:
        rows = seed.load(conn, said.append)
        calls = conn.execute("SELECT what, scale FROM calls ORDER BY what").fetchall()
        numbers = conn.execute("SELECT count(*) FROM numbers").fetchone()
    # 50 rows from SQL at scale 0.5, 7 reported by with_scale, 500 written through the kit
    assert rows == 50 + 7 + 500
    assert numbers == (550,)
    assert calls == [
        ("in_a_transaction", None),
        ("kit,progress,scale", 0.5),
        ("plain", None),
        ("with_scale", 0.5),
    ]
    assert "  data.sql [2/3] INSERT INTO numbers: 50 rows in " in "\n".join(said)
    assert not any("[1/3]" in m for m in said)  # SELECT setseed() is not data
    assert any(m.startswith("  seedfile.py:plain: done in ") for m in said)
    assert any(m.startswith("  seedfile.py:with_scale: 7 rows in ") and m.endswith(" rows/s)") for m in said)
    assert any(m.startswith("  numbers: 500 rows in ") for m in said)


def test_a_failing_statement_names_the_file_and_statement(seed_dir: Path, scratch_db: str) -> None:
    (seed_dir / "bad.sql").write_text("SELECT 1;\nINSERT INTO nowhere VALUES (1);\n", encoding="utf-8")
    with psycopg.connect(scratch_db) as conn, pytest.raises(DatabaseError) as caught:
        Seed(("bad.sql",), 1.0, seed_dir).load(conn)
    assert str(caught.value) == f'seed {seed_dir / "bad.sql"} statement 2 failed: relation "nowhere" does not exist'


def test_an_unloadable_callable_is_a_config_error(seed_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"seed item 'seedfile.py:missing' cannot be loaded"):
        Seed(("seedfile.py:missing",), 1.0, seed_dir).fingerprint()
    with pytest.raises(ConfigError, match=r"seed item 'no_such_module_qw:seed' cannot be loaded"):
        Seed(("no_such_module_qw:seed",), 1.0, seed_dir).fingerprint()


def test_fingerprints_follow_data_scale_and_schema(seed_dir: Path) -> None:
    seed = Seed(("data.sql", "seedfile.py:plain"), 1.0, seed_dir, schema=("schema.sql",))
    other_scale = Seed(seed.items, 0.1, seed_dir, schema=seed.schema)
    assert seed.data_fingerprint() != other_scale.data_fingerprint()
    assert template_name(seed) != template_name(other_scale)
    before = (seed.fingerprint(), seed.data_fingerprint())
    (seed_dir / "schema.sql").write_text("CREATE TABLE calls (what text, scale float8, more int);\n", encoding="utf-8")
    assert seed.fingerprint() != before[0] and seed.data_fingerprint() == before[1]
    with (seed_dir / "seedfile.py").open("a", encoding="utf-8") as out:
        out.write("\n# a change to the callable's file is a change to the data\n")
    assert seed.data_fingerprint() != before[1]


AUTOVACUUM_SCHEMA = """
CREATE TABLE plain_table (id int, body text);
CREATE TABLE asked_for_it (id int) WITH (autovacuum_enabled = on, fillfactor = 90);
CREATE TABLE events (id int, at date) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE SCHEMA other;
CREATE TABLE other.notes (id int, body text);
CREATE UNLOGGED TABLE scratch (id int);
INSERT INTO plain_table SELECT g, repeat('x', 10) FROM generate_series(1, 1000) g;
CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n FROM plain_table;
"""

RELOPTIONS = """
SELECT n.nspname || '.' || c.relname, c.reloptions, t.reloptions
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
WHERE c.relkind IN ('r', 'm') AND n.nspname IN ('public', 'other')
ORDER BY 1
"""


@pytest.fixture
def unique_seed(tmp_path: Path) -> Iterator[Seed]:
    """A seed of its own (a unique comment gives it a unique template name); its template is dropped after."""
    (tmp_path / "schema.sql").write_text(f"-- {uuid.uuid4()}\n{AUTOVACUUM_SCHEMA}", encoding="utf-8")
    seed = Seed((), 1.0, tmp_path, schema=("schema.sql",))
    yield seed


def test_build_turns_autovacuum_off_on_every_table_whatever_the_ddl_says(server: Server, unique_seed: Seed) -> None:
    name = f"qw_test_{uuid.uuid4().hex[:10]}"
    try:
        report = build(server, unique_seed, name)
        assert report.tables == (
            "other.notes", "public.asked_for_it", "public.events_2025", "public.plain_table", "public.scratch", "public.totals",
        )
        with server.clone(name, prefix="qw_test") as clone, psycopg.connect(clone) as conn:
            options = {table: (own, toast) for table, own, toast in conn.execute(RELOPTIONS).fetchall()}
            analyzed = conn.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'plain_table'").fetchone()
    finally:
        server.drop(name)
    assert set(options) == set(report.tables)
    for table, (own, toast) in options.items():
        assert "autovacuum_enabled=off" in own, table
        if toast is not None:
            assert "autovacuum_enabled=off" in toast, table
    assert options["public.plain_table"][1] == ["autovacuum_enabled=off"]  # its TOAST table too
    assert "fillfactor=90" in options["public.asked_for_it"][0]  # the seed's other options stay
    assert analyzed == (2,)  # statistics were gathered, and clones carry them


def test_ensure_template_builds_once_reuses_and_reports(server: Server, unique_seed: Seed) -> None:
    name = template_name(unique_seed)
    said: list[str] = []
    try:
        assert ensure_template(server, unique_seed, said.append) == name
        again: list[str] = []
        assert ensure_template(server, unique_seed, again.append) == name
        with server.admin() as admin:
            row = admin.execute("SELECT datistemplate FROM pg_database WHERE datname = %s", (name,)).fetchone()
            building = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (f"{name}_building",)).fetchone()
    finally:
        drop_template(server, name)
    assert row == (True,) and building == (0,)
    assert said[0] == f"seeding {name} (scale 1)"
    with server.admin() as admin:
        default = admin.execute("SHOW default_statistics_target").fetchone()
    assert default is not None
    assert any(m.startswith(f"  VACUUM ANALYZE (statistics target {default[0]}) in ") for m in said)  # the server's own
    assert said[-1].startswith("seeded 1,000 rows in ") and said[-1].endswith("autovacuum off on 6 tables")
    assert again == [f"reusing seeded template {name}"]
    assert not server.exists(name)


def test_a_failed_build_leaves_no_database_behind(server: Server, tmp_path: Path) -> None:
    (tmp_path / "broken.sql").write_text(f"-- {uuid.uuid4()}\nCREATE TABLE t (id int);\nINSERT INTO t VALUES ('x');\n", encoding="utf-8")
    seed = Seed(("broken.sql",), 1.0, tmp_path)
    name = template_name(seed)
    with pytest.raises(DatabaseError, match=r"broken.sql statement 2 failed: invalid input syntax for type integer"):
        ensure_template(server, seed)
    assert not server.exists(name) and not server.exists(f"{name}_building")


def _small_seed(directory: Path) -> Seed:
    directory.mkdir()
    (directory / "schema.sql").write_text(f"-- {uuid.uuid4()}\nCREATE TABLE t (id int);\n", encoding="utf-8")
    return Seed((), 1.0, directory, schema=("schema.sql",))


def test_a_build_waits_only_for_a_build_of_the_same_template(server: Server, pg_dsn: str, tmp_path: Path) -> None:
    """Another run building template A (its lock held here) holds up A, never an unrelated seed B."""
    seed_a, seed_b = _small_seed(tmp_path / "a"), _small_seed(tmp_path / "b")
    name_a, name_b = template_name(seed_a), template_name(seed_b)
    said_a: list[str] = []
    said_b: list[str] = []
    outcome: list[object] = []
    try:
        with psycopg.connect(pg_dsn, autocommit=True) as other_run:
            other_run.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (BUILD_LOCK_CLASS, name_a))
            waiting = threading.Thread(target=lambda: outcome.append(ensure_template(server, seed_a, said_a.append)))
            waiting.start()
            assert ensure_template(server, seed_b, said_b.append) == name_b  # not held up by A's lock
            for _ in range(600):  # A must be waiting for the lock, not building
                if said_a:
                    break
                waiting.join(0.05)
            assert said_a == [f"waiting for another run to finish building seeded template {name_a}"]
            assert not server.exists(name_a)
        waiting.join(60)  # the other run's session ended: its lock is gone
        assert outcome == [name_a] and server.exists(name_a)
    finally:
        drop_template(server, name_a)
        drop_template(server, name_b)
    assert not any("waiting" in line for line in said_b)


def test_a_stated_statistics_target_is_what_the_template_is_analysed_at(server: Server, unique_seed: Seed) -> None:
    from dataclasses import replace

    stated = replace(unique_seed, statistics_target=37)
    assert template_name(stated) != template_name(unique_seed)  # another target is another template
    name = template_name(stated)
    said: list[str] = []
    try:
        ensure_template(server, stated, said.append)
        with connect(server.dsn_for(name)) as conn:
            bounds = conn.execute(
                "SELECT max(array_length(histogram_bounds::text::text[], 1)) FROM pg_stats WHERE schemaname = 'public'"
            ).fetchone()
    finally:
        drop_template(server, name)
    assert any(m.startswith("  VACUUM ANALYZE (statistics target 37) in ") for m in said)
    assert bounds == (38,)  # target + 1 histogram bounds (the server default, 100, would give 101)
