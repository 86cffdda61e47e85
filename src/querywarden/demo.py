"""The demo: the outage story in two minutes, on the time-tracker example.

It seeds a million time entries, checks the committed baselines (they pass), then swaps in the kind of
rewrite of the hottest query that takes a service down, and shows the guard blocking it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .baseline import BaselineStore
from .catalog import load_catalogs
from .compare import Policy
from .config import load_config
from .errors import ConfigError
from .report import terminal
from .runner import measure_and_check, open_target
from .seed import Seed

Echo = Callable[[str], None]


def find_example(explicit: Path | None) -> Path:
    """The example directory: given, under the working directory or a parent, or beside the source tree."""
    if explicit is not None:
        candidates = [explicit]
    else:
        here = Path.cwd().resolve()
        candidates = [d / "examples" / "timetracker" for d in (here, *here.parents)]
        candidates.append(Path(__file__).resolve().parents[2] / "examples" / "timetracker")
    for candidate in candidates:
        if (candidate / "queries.sql").is_file():
            return candidate
    raise ConfigError("cannot find examples/timetracker (with queries.sql); run the demo from the querywarden checkout or pass --example DIR")


def run_demo(dsn: str, example_dir: Path | None, echo: Echo, progress: Echo) -> int:
    """Return 0 when the demo shows what it promises (unchanged passes, the bad change blocks)."""
    example = find_example(example_dir)
    baselines = BaselineStore(example.parents[1] / "baselines" / "timetracker")
    settings = load_config(example).measure
    policy = Policy()
    seed = Seed(("seed.sql",), 1.0, example, schema=("schema.sql",))
    queries = load_catalogs([example / "queries.sql"])
    bad = load_catalogs([example / "changes" / "bad_change.sql"])
    bad_names = {q.name for q in bad}
    changed = [next((b for b in bad if b.name == q.name), q) for q in queries]

    echo("== 1. Seeding the time-tracker example into a template database")
    with open_target(dsn, seed, progress) as target:
        echo(f"\n== 2. Checking {len(queries)} hot queries against the committed baselines in {baselines.directory}")
        before = measure_and_check(target, queries, baselines, policy, settings, progress)
        echo(terminal(before))
        echo(f"\n== 3. Applying the bad change to {', '.join(sorted(bad_names))} ({example / 'changes' / 'bad_change.sql'})")
        after = measure_and_check(target, changed, baselines, policy, settings, progress)
        echo(terminal(after))
    if before.blocked:
        echo("\ndemo: the unchanged example did not pass; the baselines or this machine differ (see above)")
        return 1
    if not after.blocked:
        echo("\ndemo: the bad change was NOT blocked; this is a bug in querywarden")
        return 1
    echo("\ndemo: the unchanged code passed and the bad change was blocked before merge, as it should be.")
    return 0
