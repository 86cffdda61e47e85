"""seedkit: skewed, deterministic, fast data for seed callables (against a real PostgreSQL)."""

from __future__ import annotations

import hashlib
import random
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from querywarden.errors import DatabaseError
from querywarden.seeding.seed import Seed
from querywarden.seeding.kit import (
    SeedKit,
    Zipf,
    current_scale,
    heartbeat,
    power_law_sizes,
    rate_text,
    scaled,
    scatter,
    skewed_sql,
)


@pytest.fixture
def conn(scratch_db: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with psycopg.connect(scratch_db, autocommit=True) as connection:
        yield connection


def table_digest(conn: psycopg.Connection[tuple[object, ...]], table: str) -> str:
    """A hash of the table's rows in physical order: equal only for byte-identical seeding."""
    rows = conn.execute(f"SELECT ctid::text, t::text FROM {table} AS t ORDER BY ctid").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_zipf_is_deterministic_and_skewed() -> None:
    first = Zipf(2000, 1.0, random.Random(7)).samples(50_000)
    again = Zipf(2000, 1.0, random.Random(7)).samples(50_000)
    assert first == again
    counts = Counter(first)
    zipf = Zipf(2000, 1.0)
    # rank 1 gets ~12% of draws, the 20 biggest about 40%, the smaller half of all ranks under 10%
    assert zipf.share(1) == pytest.approx(0.1215, abs=0.001)
    assert counts[1] / 50_000 == pytest.approx(zipf.share(1), rel=0.05)
    top20 = sum(counts[rank] for rank in range(1, 21)) / 50_000
    assert 0.35 < top20 < 0.45
    assert sum(counts[rank] for rank in range(1001, 2001)) / 50_000 < 0.10
    assert min(first) >= 1 and max(first) <= 2000


def test_zipf_single_draws_follow_the_same_law() -> None:
    zipf = Zipf(10, 2.0, random.Random(3))
    counts = Counter(zipf.sample() for _ in range(20_000))
    assert set(counts) <= set(range(1, 11))
    assert counts[1] / 20_000 == pytest.approx(zipf.share(1), rel=0.05)
    assert zipf.share(0) == zipf.share(11) == 0.0
    with pytest.raises(ValueError):
        Zipf(0)


def test_power_law_sizes_are_exact_skewed_and_bounded() -> None:
    sizes = power_law_sizes(20_000, 2_000, exponent=1.1, minimum=2)
    assert sum(sizes) == 20_000
    assert min(sizes) >= 2
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] > 100 * sizes[-1] / 2  # one huge workspace...
    assert sum(1 for s in sizes if s <= 3) > 1000  # ...and many tiny ones
    assert power_law_sizes(20_000, 2_000, exponent=1.1, minimum=2) == sizes
    assert power_law_sizes(7, 3, exponent=0) == [3, 2, 2]
    with pytest.raises(ValueError):
        power_law_sizes(5, 3, minimum=2)


def test_scatter_is_a_permutation_of_ids() -> None:
    for n in (1, 7, 104_729 * 2, 1000):
        ids = [scatter(rank, n) for rank in range(min(n, 5000))]
        assert len(set(ids)) == len(ids) and all(1 <= i <= n for i in ids)
    assert [scatter(r, 1000) for r in range(3)] != [1, 2, 3]
    with pytest.raises(ValueError):
        scatter(10, 10)


def test_scaled_counts_round_and_keep_a_minimum() -> None:
    assert scaled(2000, 0.1) == 200
    assert scaled(3, 0.1) == 1
    assert scaled(3, 0.1, minimum=0) == 0
    assert scaled(1_000_000, 10) == 10_000_000


def test_rate_text_shows_speed_and_an_eta_when_the_total_is_known() -> None:
    assert rate_text(1000, 2.0) == "1,000 rows in 2.0 s (500 rows/s)"
    assert rate_text(250_000, 2.0, 1_000_000) == "250,000 / 1,000,000 rows (25%), 125,000 rows/s, ETA 6.0 s"
    assert rate_text(100, 1.0, 100) == "100 / 100 rows (100%), 100 rows/s"
    assert rate_text(1, 1.0, 10_000_000).endswith("ETA 2777 h 47 min")
    assert rate_text(1, 1.0, 200).endswith("ETA 3 min 19 s")


def test_heartbeat_reports_a_statement_that_is_still_running() -> None:
    said: list[str] = []
    arrived = threading.Event()

    def progress(message: str) -> None:
        said.append(message)
        arrived.set()

    with heartbeat(progress, "seed.sql [3/9]", every_s=0.01):
        assert arrived.wait(30), "no heartbeat arrived"
    assert said[0].startswith("  seed.sql [3/9]: still running after ")
    count = len(said)
    assert arrived.is_set() and len(said) == count  # the thread stopped with the block


def test_scale_is_read_from_the_session_setting(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert current_scale(conn) == 1.0
    conn.execute("SELECT set_config('querywarden.scale', '0.25', false)")
    assert current_scale(conn) == 0.25
    assert SeedKit(conn).scaled(1000) == 250
    conn.execute("SELECT set_config('querywarden.scale', 'big', false)")
    with pytest.raises(DatabaseError, match="querywarden.scale is 'big', not a number"):
        current_scale(conn)


def copy_and_generate(conn: psycopg.Connection[tuple[object, ...]], said: list[str]) -> SeedKit:
    conn.execute("CREATE TABLE accounts (id bigint, workspace_id int, note text)")
    conn.execute("CREATE TABLE events (g bigint, account_id bigint, weight float8)")
    kit = SeedKit(conn, scale=0.5, random_seed=11, progress=said.append, report_every_s=0.0)
    n = kit.scaled(40_000)
    zipf = kit.zipf(100, 1.2)
    kit.copy("accounts", ["id", "workspace_id", "note"],
             ((i, zipf.sample(), f"note {kit.rng.random():.6f}") for i in range(1, n + 1)), total=n)
    kit.setseed()
    kit.generate("events", {"g": "g", "account_id": skewed_sql("%(accounts)s", 3), "weight": "random()"},
                 kit.scaled(10_000), params={"accounts": n}, batch=1_500)
    return kit


def test_copy_and_generate_write_the_same_rows_every_time(scratch_db: str, server: object) -> None:
    digests = []
    messages: list[list[str]] = []
    for _ in range(2):
        with psycopg.connect(scratch_db, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS accounts, events")
            said: list[str] = []
            kit = copy_and_generate(conn, said)
            assert kit.rows == 20_000 + 5_000
            digests.append((table_digest(conn, "accounts"), table_digest(conn, "events")))
            messages.append(said)
            counts: dict[object, int] = dict(conn.execute("SELECT workspace_id, count(*) FROM accounts GROUP BY 1").fetchall())
            assert counts[1] > 10 * counts.get(50, 1)  # skewed: workspace 1 is huge
            row = conn.execute("SELECT min(g), max(g), count(DISTINCT g), min(account_id), max(account_id) FROM events").fetchone()
            assert row is not None and row[:3] == (1, 5_000, 5_000)
            assert 1 <= int(str(row[3])) and int(str(row[4])) <= 20_000
    assert digests[0] == digests[1]
    said = messages[0]
    # progress while copying, with the share done and an ETA (the total is known), then a summary
    assert any(m.startswith("  accounts: ") and "/ 20,000 rows (" in m and "ETA" in m for m in said)
    assert said[-1].startswith("  events: 5,000 rows in ") and said[-1].endswith(" rows/s)")
    assert any(m.startswith("  events: ") and "/ 5,000 rows (" in m for m in said)


def test_a_failing_step_names_itself(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    conn.execute("CREATE TABLE t (id int NOT NULL)")
    kit = SeedKit(conn, scale=1)
    with pytest.raises(DatabaseError, match=r"seed step 'nulls' \(COPY\) failed \(2 rows sent\): null value"):
        kit.copy("t", ["id"], iter([(1,), (None,)]), label="nulls")
    with pytest.raises(DatabaseError, match=r"seed step 't' failed at rows 1..2: "):
        kit.generate("t", {"id": "NULL"}, 2)


def test_the_example_in_the_module_docstring_seeds(tmp_path: Path, scratch_db: str) -> None:
    import querywarden.seeding.kit as seedkit

    doc = seedkit.__doc__ or ""
    example = textwrap.dedent(doc.split("A minimal one:\n\n", 1)[1].split("\n\nSkew matters", 1)[0])
    (tmp_path / "example_seed.py").write_text(example, encoding="utf-8")
    (tmp_path / "schema.sql").write_text(
        "CREATE TABLE workspaces (id int GENERATED ALWAYS AS IDENTITY, name text);\n"
        "CREATE TABLE users (id int GENERATED ALWAYS AS IDENTITY, workspace_id int, email text);\n",
        encoding="utf-8",
    )
    seed = Seed(("example_seed.py:seed",), 0.1, tmp_path, schema=("schema.sql",))
    with psycopg.connect(scratch_db) as conn:
        assert seed.load(conn) == 200 + 2000
        biggest = conn.execute("SELECT count(*) FROM users GROUP BY workspace_id ORDER BY 1 DESC LIMIT 1").fetchone()
    assert biggest is not None and biggest[0] > 200  # one workspace holds over a tenth of the users
