"""Wall time of `querywarden check` for the example catalog next to the plain execution time.

    python benchmarks/check_wall_time.py [--dsn DSN] [--scale 1]

Seeds (or reuses) the example template, then prints, per query, the time of one plain execution
(median of 5 after a warm-up) and the whole check's wall time (measuring + comparing).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from querywarden.baseline import BaselineStore
from querywarden.catalog import load_catalogs
from querywarden.policy import Policy
from querywarden.database import Server, connect
from querywarden.policy import MeasureSettings
from querywarden.engine import evaluate, open_catalog_site, refresh
from querywarden.seeding.seed import Seed, ensure_template

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "timetracker"


def plain_ms(dsn: str, sql: str, params: object) -> float:
    with connect(dsn) as conn:
        times = []
        for attempt in range(6):
            started = time.perf_counter()
            with conn.transaction(force_rollback=True), conn.cursor() as cur:
                cur.execute(sql, params)  # type: ignore[arg-type]
                if cur.description is not None:
                    cur.fetchall()
            if attempt:
                times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    server = Server(args.dsn)
    seed = Seed(("seed.sql",), args.scale, EXAMPLE, schema=("schema.sql",))
    started = time.perf_counter()
    template = ensure_template(server, seed)
    print(f"template {template}: ready in {time.perf_counter() - started:.1f} s (reused when it existed)")
    queries = load_catalogs([EXAMPLE / "queries.sql"])
    with tempfile.TemporaryDirectory() as directory, open_catalog_site(args.dsn, seed) as place:
        store = BaselineStore(Path(directory))
        refresh(evaluate(place.statements(queries, {}), place.site, MeasureSettings(), Policy(), confirm_warns=False), store)
        started = time.perf_counter()
        run = evaluate(place.statements(queries, store.load_all()), place.site, MeasureSettings(), Policy())
        check_s = time.perf_counter() - started
    with server.clone(template, prefix="qw_bench") as dsn:
        plain = {q.name: plain_ms(dsn, q.sql, q.params) for q in queries}
    print(f"{'query':<28} {'plain ms':>10} {'samples':>8} {'verdict':>9}")
    for result in run.results:
        samples = result.after.timing.count if result.after else 0
        print(f"{result.name:<28} {plain[result.name]:>10.3f} {samples:>8} {result.verdict.value:>9}")
    total_plain = sum(plain.values())
    print(f"plain execution, all {len(queries)} queries once: {total_plain:.1f} ms")
    print(f"querywarden check wall time: {check_s:.2f} s ({check_s / len(queries):.2f} s per query)")


if __name__ == "__main__":
    main()
