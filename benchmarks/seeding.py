"""Seeding figures for the time-tracker example: seed speed, ANALYZE, clone time, plan stability.

    .venv/bin/python benchmarks/seeding.py [--dsn DSN] [--scale 1] [--clones 5]
        [--rebuilds 5] [--compare-scale 10] [--seedkit-rows 1000000]

- build: the example seeded at --scale into a fresh database: rows, load time and rows/s, VACUUM
  ANALYZE time (at the seed's statistics target, else the server's default), database size.
- clone: --clones clones of it with STRATEGY FILE_COPY (what querywarden uses) and WAL_LOG, and
  their drop, each timed.
- --seedkit-rows N: the seedkit helpers on their own: N rows COPYed from a Python generator
  (Zipf-skewed values) and N rows from server-side generate_series, rows/s each.
- --rebuilds N: N more builds from scratch at --scale, every catalog query measured on each (one
  connection, reads then rolled-back writes); prints each query's cost and blocks per build and
  whether they and the verdict against build 1 (timing taken from build 1) are identical.
- --compare-scale S: the example also built at scale S; each read query's plan signature at
  --scale and at S, and whether they match.

Every database it creates has a unique name and is dropped at the end; nothing touches the
seeded templates other runs share. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from querywarden.catalog import load_catalogs
from querywarden.judge import compare
from querywarden.policy import Policy
from querywarden.config import load_config
from querywarden.database import Server, connect
from querywarden.fingerprint import identify
from querywarden.measure import measure, prepare_session
from querywarden.observation import Observation
from querywarden.plan import parse_explain
from querywarden.query import GuardedQuery
from querywarden.seeding.seed import BuildReport, Seed, build
from querywarden.seeding.kit import SeedKit, skewed_sql

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "timetracker"
DEFAULT_DSN = os.environ.get("QUERYWARDEN_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def say(message: str) -> None:
    print(message, flush=True)


def quiet(_: str) -> None:
    pass


def unique(prefix: str) -> str:
    return f"qw_bench_{prefix}_{uuid.uuid4().hex[:8]}"


def example_seed(scale: float) -> Seed:
    return Seed(("seed.sql",), scale, EXAMPLE, schema=("schema.sql",))


def build_example(server: Server, scale: float, name: str, verbose: bool) -> BuildReport:
    started = time.perf_counter()
    report = build(server, example_seed(scale), name, say if verbose else quiet)
    total = time.perf_counter() - started
    with server.admin() as admin:
        size = admin.execute("SELECT pg_size_pretty(pg_database_size(%s))", (name,)).fetchone()
    say(
        f"build   scale {scale:g}: {report.rows:,} rows loaded in {report.load_s:.1f} s ({report.rows_per_s:,.0f} rows/s), "
        f"VACUUM ANALYZE {report.analyze_s:.1f} s, total {total:.1f} s, size {size[0] if size else '?'}"
    )
    return report


def time_clones(server: Server, template: str, count: int) -> None:
    for strategy in ("FILE_COPY", "WAL_LOG"):
        creates, drops = [], []
        for _ in range(count):
            name = unique("clone")
            started = time.perf_counter()
            with server.admin() as admin:
                admin.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY {}").format(
                        sql.Identifier(name), sql.Identifier(template), sql.SQL(strategy)
                    )
                )
            creates.append(time.perf_counter() - started)
            started = time.perf_counter()
            server.drop(name)
            drops.append(time.perf_counter() - started)
        creates.sort()
        say(
            f"clone   {strategy:<9}: median {creates[len(creates) // 2]:.2f} s (min {creates[0]:.2f}, max {creates[-1]:.2f}) "
            f"over {count}; drop median {sorted(drops)[len(drops) // 2]:.2f} s"
        )


def seedkit_figures(server: Server, rows: int) -> None:
    name = unique("kit")
    server.create(name)
    try:
        with psycopg.connect(server.dsn_for(name), autocommit=True) as conn:
            conn.execute("CREATE TABLE copied (id bigint, workspace_id int, note text, minutes int)")
            conn.execute("CREATE TABLE generated (id bigint, workspace_id bigint, minutes int)")
            kit = SeedKit(conn, scale=1.0, progress=quiet)
            zipf = kit.zipf(2000, 1.0)
            draws = iter(zipf.samples(rows))
            started = time.perf_counter()
            kit.copy("copied", ["id", "workspace_id", "note", "minutes"],
                     ((i, next(draws), "standup", 15 + i % 240) for i in range(1, rows + 1)), total=rows)
            copy_s = time.perf_counter() - started
            kit.setseed()
            started = time.perf_counter()
            kit.generate("generated", {"id": "g", "workspace_id": skewed_sql(2000, 3), "minutes": "15 + g %% 240"}, rows)
            generate_s = time.perf_counter() - started
        say(
            f"seedkit {rows:,} rows: COPY from a Python generator {copy_s:.1f} s ({rows / copy_s:,.0f} rows/s); "
            f"server-side generate_series {generate_s:.1f} s ({rows / generate_s:,.0f} rows/s)"
        )
    finally:
        server.drop(name)


def measure_all(server: Server, name: str, queries: list[GuardedQuery]) -> dict[str, Observation]:
    settings = replace(load_config(REPO).measure, min_samples=3, max_samples=3, time_cap_s=0.5)
    found: dict[str, Observation] = {}
    with connect(server.dsn_for(name)) as conn:
        environment = prepare_session(conn, settings)
        for query in queries:
            outcome = measure(conn, query, settings, environment)
            if not isinstance(outcome, Observation):
                raise SystemExit(f"{query.name}: {outcome.message}")
            found[query.name] = outcome
    return found


def rebuilds(server: Server, scale: float, count: int) -> None:
    queries = sorted(load_catalogs([EXAMPLE / "queries.sql"]), key=lambda q: identify(q.sql).kind != "read")
    runs: list[dict[str, Observation]] = []
    for number in range(1, count + 1):
        name = unique("rebuild")
        try:
            report = build(server, example_seed(scale), name, quiet)
            say(f"rebuild {number}/{count}: load {report.load_s:.1f} s, VACUUM ANALYZE {report.analyze_s:.1f} s")
            runs.append(measure_all(server, name, queries))
        finally:
            server.drop(name)
    first = runs[0]
    width = max(len(q.name) for q in queries)
    say(f"\n{'query':<{width}}  {'cost (every build)':>24}  {'blocks (every build)':>22}  identical  verdicts vs build 1")
    for query in queries:
        costs = [run[query.name].total_cost for run in runs]
        blocks = [run[query.name].buffers.total for run in runs]
        signatures = {run[query.name].signature for run in runs}
        verdicts = [
            compare(query.name, first[query.name], replace(run[query.name], timing=first[query.name].timing), Policy()).verdict.value
            for run in runs[1:]
        ]
        same = len(set(costs)) == 1 and len(set(blocks)) == 1 and len(signatures) == 1
        cost_text = f"{costs[0]:,.2f}" if len(set(costs)) == 1 else " / ".join(f"{c:,.2f}" for c in costs)
        block_text = f"{blocks[0]:,}" if len(set(blocks)) == 1 else " / ".join(f"{b:,}" for b in blocks)
        say(f"{query.name:<{width}}  {cost_text:>24}  {block_text:>22}  {'yes' if same else 'NO':>9}  {', '.join(verdicts)}")


def plan_shapes(server: Server, name: str, queries: list[GuardedQuery]) -> dict[str, tuple[str, ...]]:
    settings = load_config(REPO).measure
    shapes: dict[str, tuple[str, ...]] = {}
    with connect(server.dsn_for(name)) as conn:
        prepare_session(conn, settings)
        for query in queries:
            with conn.transaction(force_rollback=True):
                row = conn.execute("EXPLAIN (FORMAT JSON) " + query.sql, query.params).fetchone()
            assert row is not None
            shapes[query.name] = parse_explain(row[0]).signature()
    return shapes


def compare_scales(server: Server, base_name: str, scale: float, other: float) -> None:
    queries = [q for q in load_catalogs([EXAMPLE / "queries.sql"]) if identify(q.sql).kind == "read"]
    name = unique("scale")
    try:
        build_example(server, other, name, verbose=True)
        base, large = plan_shapes(server, base_name, queries), plan_shapes(server, name, queries)
    finally:
        server.drop(name)
    say(f"\nplan shapes, scale {scale:g} vs {other:g}:")
    for query in queries:
        verdict = "same" if base[query.name] == large[query.name] else "DIFFERENT"
        say(f"  {query.name:<28} {verdict}: {' > '.join(node.strip() for node in large[query.name])}")
        if verdict != "same":
            say(f"  {'':<28} at {scale:g}: {' > '.join(node.strip() for node in base[query.name])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--clones", type=int, default=5)
    parser.add_argument("--rebuilds", type=int, default=0)
    parser.add_argument("--compare-scale", type=float)
    parser.add_argument("--seedkit-rows", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="show the seed's own progress lines")
    args = parser.parse_args()
    server = Server(args.dsn)
    with server.admin() as admin:
        version = admin.execute("SHOW server_version").fetchone()
    say(f"PostgreSQL {version[0] if version else '?'}, {os.cpu_count()} CPUs")
    name = unique("main")
    try:
        build_example(server, args.scale, name, args.verbose)
        if args.clones:
            time_clones(server, name, args.clones)
        if args.compare_scale:
            compare_scales(server, name, args.scale, args.compare_scale)
    finally:
        server.drop(name)
    if args.seedkit_rows:
        seedkit_figures(server, args.seedkit_rows)
    if args.rebuilds:
        rebuilds(server, args.scale, args.rebuilds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
