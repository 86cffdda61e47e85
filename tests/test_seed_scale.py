"""The example's seed plans the same at its default scale (1) as at ten times that, with >= 1M rows.

Building here, quiet machine: scale 1 ~12 s (1.3M rows), scale 10 ~2 min (13.3M rows, 2.3 GB); a
loaded machine takes two to three times that. Both templates are named by the seed's fingerprint
and kept, like every seeded template, so `make demo` and later runs reuse them until seed.sql or
schema.sql changes.
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
from querywarden.seeding.seed import Seed, ensure_template

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


def example_at(server: Server, scale: float) -> str:
    return ensure_template(server, Seed(("seed.sql",), scale, EXAMPLE, schema=("schema.sql",)))


def test_ten_times_the_data_gives_the_same_plan_shapes_as_the_default_scale(server: Server) -> None:
    default_template, large_template = example_at(server, 1.0), example_at(server, 10.0)
    queries = read_queries()
    assert len(queries) >= 6

    default, large = plan_shapes(server, default_template, queries), plan_shapes(server, large_template, queries)

    differing = {name: (default[name], large[name]) for name in default if default[name] != large[name]}
    assert not differing, differing
    # and the plans are the ones an index-backed application expects
    assert default["running_timer"] == ("Index Scan using time_entries_running_timer_idx on time_entries",)
    assert not any("Seq Scan on time_entries" in node for shape in default.values() for node in shape)

    counts = []
    for template in (default_template, large_template):
        with server.clone(template, prefix="qw_test") as dsn, connect(dsn) as conn:
            row = conn.execute("SELECT count(*) FROM time_entries").fetchone()
        assert row is not None
        counts.append(row[0])
    assert counts[0] >= 1_000_000 and counts[1] >= 10 * 1_000_000
