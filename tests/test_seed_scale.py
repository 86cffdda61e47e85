"""The example's seed plans the same at a tenth of its size as at full size, and full size is >= 1M rows.

Scale 1 takes ~35 s to build here (1.3M rows, whole-table ANALYZE); the template is named by the
seed's fingerprint and kept, like every seeded template, so `make demo` and later runs reuse it.
1× against 10× (10M time entries, minutes to build) is in benchmarks/seeding.py (--compare-scale 10).
"""

from __future__ import annotations

from collections.abc import Sequence

from querywarden.catalog import load_catalogs
from querywarden.config import load_config
from querywarden.database import Server, connect
from querywarden.fingerprint import identify
from querywarden.measure import prepare_session
from querywarden.plan import parse_explain
from querywarden.query import GuardedQuery
from querywarden.seed import Seed, ensure_template

from conftest import EXAMPLE, REPO


def read_queries() -> list[GuardedQuery]:
    return [q for q in load_catalogs([EXAMPLE / "queries.sql"]) if identify(q.sql).kind == "read"]


def plan_shapes(server: Server, template: str, queries: Sequence[GuardedQuery]) -> dict[str, tuple[str, ...]]:
    """Each query's plan signature on a clone of `template`, under the project's pinned settings."""
    settings = load_config(REPO).measure
    shapes: dict[str, tuple[str, ...]] = {}
    with server.clone(template, prefix="qw_test") as dsn, connect(dsn) as conn:
        prepare_session(conn, settings)
        for query in queries:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION READ ONLY")
                row = conn.execute("EXPLAIN (FORMAT JSON) " + query.sql, query.params).fetchone()
            assert row is not None
            shapes[query.name] = parse_explain(row[0]).signature()
    return shapes


def test_a_tenth_of_the_data_gives_the_same_plan_shapes_as_full_size(server: Server, example_template: str) -> None:
    full = Seed(("seed.sql",), 1.0, EXAMPLE, schema=("schema.sql",))
    full_template = ensure_template(server, full)
    queries = read_queries()
    assert len(queries) >= 6

    small, large = plan_shapes(server, example_template, queries), plan_shapes(server, full_template, queries)

    differing = {name: (small[name], large[name]) for name in small if small[name] != large[name]}
    assert not differing, differing
    # and the plans are the ones an index-backed application expects at full size
    assert large["running_timer"] == ("Index Scan using time_entries_running_timer_idx on time_entries",)
    assert not any("Seq Scan on time_entries" in node for shape in large.values() for node in shape)

    with server.clone(full_template, prefix="qw_test") as dsn, connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM time_entries").fetchone()
    assert row is not None and row[0] >= 1_000_000
