"""`querywarden fidelity`: does CI plan the hot queries the way production does?

Exit codes: 0 every compared query has production's plan shape; 3 a fidelity gap (CI measures a plan
production does not run), apart from 1 (a regression blocks, `check`); 2 could not run (unreadable
plans, none matching the catalog, no database). `--no-fail` reports gaps and exits 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import psycopg

from ..database import connect
from ..errors import CatalogError, DatabaseError
from ..fidelity import FidelityError, compare, read_plans, render, to_json
from ..measure import check_measurable, prepare_session
from ..plan import PlanNode, parse_explain
from ..query import GuardedQuery

GAP_EXIT = 3


def _explain(conn: psycopg.Connection[Any], query: GuardedQuery) -> PlanNode:
    """CI's plan of one query now: EXPLAIN (FORMAT JSON), nothing executed, in a READ ONLY transaction
    rolled back, over the extended protocol (one statement only)."""
    check_measurable(query)
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN READ ONLY")
            try:
                cur.execute("EXPLAIN (FORMAT JSON)\n" + query.sql, query.params, binary=True)
                row = cur.fetchone()
            finally:
                cur.execute("ROLLBACK")
    except psycopg.Error as exc:
        raise CatalogError(f"query {query.name!r}: EXPLAIN failed: {str(exc).strip().splitlines()[0]}") from None
    if row is None:
        raise DatabaseError(f"query {query.name!r}: EXPLAIN returned nothing")
    return parse_explain(row[0])


@click.command(name="fidelity")
@click.option("--plans", "plan_paths", multiple=True, required=True, type=click.Path(path_type=Path),
              help="Production's plans: a directory or file of EXPLAIN (FORMAT JSON) exports named after catalog "
                   "queries (NAME.json), or auto_explain JSON plans in a server log (repeatable).")
@click.option("--catalog", "catalogs", multiple=True, type=click.Path(path_type=Path),
              help="Catalog .sql file or directory (repeatable). Default: `catalog` in [tool.querywarden].")
@click.option("--baselines", type=click.Path(path_type=Path),
              help="CI's plans from these baselines (default: `baselines` in [tool.querywarden]).")
@click.option("--measure", is_flag=True,
              help="CI's plans measured now (EXPLAIN on a clone of the seeded template, or of the DSN's database) "
                   "instead of the committed baselines.")
@click.option("--dsn", help="With --measure: PostgreSQL DSN. Default: $QUERYWARDEN_DSN, else an embedded cluster.")
@click.option("--schema", "schemas", multiple=True, help="With --measure: schema item (repeatable).")
@click.option("--seed", "seeds", multiple=True, help="With --measure: seed data item (repeatable).")
@click.option("--scale", type=float, help="With --measure: seed scale factor.")
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the comparison as JSON.")
@click.option("--no-fail", is_flag=True, help="Report fidelity gaps but exit 0.")
def fidelity(plan_paths: tuple[Path, ...], catalogs: tuple[Path, ...], baselines: Path | None, measure: bool,
             dsn: str | None, schemas: tuple[str, ...], seeds: tuple[str, ...], scale: float | None,
             json_path: Path | None, no_fail: bool) -> None:
    """Compare CI's plans of the hot queries with production's: the same shape, or the node that differs.

    Exit 0: production's shapes; 3: a fidelity gap; 2: could not run."""
    from . import _catalog, _measuring_site, _progress, _resolve

    if not measure and (dsn or schemas or seeds or scale is not None):
        raise click.UsageError("--dsn, --schema, --seed and --scale are for --measure")
    resolved = _resolve(catalogs, baselines, schemas, seeds, scale, None, None, None)
    queries = _catalog(resolved)
    plans, files = read_plans(list(plan_paths), [q.name for q in queries])
    _progress(f"production: {len(plans)} plan(s) in {len(files)} file(s)")
    ci_plans: dict[str, PlanNode] = {}
    if measure:
        with _measuring_site(dsn, resolved) as place:
            with connect(place.site.login(place.database)) as conn:
                prepare_session(conn, resolved.measure)
                for query in queries:
                    ci_plans[query.name] = _explain(conn, query)
        source = "measured now"
    else:
        from ..baseline import BaselineStore

        store = BaselineStore(resolved.path("baselines"))
        ci_plans = {name: observation.plan for name, observation in store.load_all().items()}
        source = f"baseline in {resolved.path('baselines')}"
    report = compare(queries, ci_plans, source, plans, files)
    if not any(r.status in ("same", "gap") for r in report.results):
        unmatched = len(report.unmatched)
        raise FidelityError(
            f"no production plan could be compared: {len(plans)} plan(s) read, {unmatched} matching no catalog query"
            + (", the others with no CI plan" if unmatched < len(plans) else "")
            + "; name EXPLAIN files after catalog queries (NAME.json) or give auto_explain plans of their statements"
        )
    click.echo(render(report))
    if json_path is not None:
        json_path.write_text(json.dumps(to_json(report), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if report.gaps and not no_fail:
        sys.exit(GAP_EXIT)
