"""The `querywarden` command: a thin shell over the runner. Exit 0 clean, 1 blocked, 2 could not run."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from . import __version__
from .baseline import BaselineStore
from .catalog import load_catalogs
from .cli_report import report
from .cli_stats import import_stats
from .cli_templates import templates
from .config import Config, load_config
from .database import mask_dsn, resolve_dsn
from .errors import ConfigError, QuerywardenError
from .report import terminal
from .runner import load_baselines, measure_and_check, measure_queries, open_target, update
from .seed import Seed
from .verdict import RunResult

F = TypeVar("F", bound=Callable[..., Any])


def _progress(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def database(dsn_option: str | None) -> Iterator[str]:
    """The DSN to measure on: --dsn, $QUERYWARDEN_DSN, or an embedded throwaway cluster."""
    dsn, origin = resolve_dsn(dsn_option)
    if dsn is not None:
        _progress(f"database: {mask_dsn(dsn)} (from {origin})")
        yield dsn
        return
    from .embedded import EmbeddedCluster

    _progress("database: no --dsn or $QUERYWARDEN_DSN given; starting an embedded PostgreSQL cluster")
    with EmbeddedCluster(progress=_progress) as embedded_dsn:
        yield embedded_dsn


def common_options(command: F) -> F:
    """Options shared by check and update; each falls back to [tool.querywarden]."""
    decorators = [
        click.option("--catalog", "catalogs", multiple=True, type=click.Path(path_type=Path),
                     help="Catalog .sql file or directory (repeatable). Default: `catalog` in [tool.querywarden]."),
        click.option("--baselines", type=click.Path(path_type=Path),
                     help="Directory of baseline files. Default: `baselines` in [tool.querywarden]."),
        click.option("--dsn", help="PostgreSQL DSN. Default: $QUERYWARDEN_DSN, else an embedded throwaway cluster."),
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
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def _resolve(config: Config, catalogs: tuple[Path, ...], baselines: Path | None, schemas: tuple[str, ...],
             seeds: tuple[str, ...], scale: float | None,
             statement_timeout_s: float | None,
             max_run_s: float | None = None) -> tuple[Config, list[Path], Path, Seed | None]:
    catalog_paths = list(catalogs) or [config.path(c) for c in config.catalog]
    if not catalog_paths:
        raise ConfigError("no catalog given; pass --catalog FILE or set `catalog` in [tool.querywarden]")
    baselines_dir = baselines or config.path(config.baselines)
    from_flags = bool(seeds or schemas)
    seed_items, schema_items = (seeds, schemas) if from_flags else (config.seed, config.schema)
    seed = None
    if seed_items or schema_items:
        base = Path.cwd() if from_flags else config.root
        seed = Seed(tuple(seed_items), scale if scale is not None else config.scale, base, tuple(schema_items))
    if statement_timeout_s is not None:
        if statement_timeout_s <= 0:
            raise ConfigError("--statement-timeout must be a positive number of seconds")
        config = replace(config, measure=replace(config.measure, statement_timeout_ms=int(statement_timeout_s * 1000)))
    if max_run_s is not None:
        if not max_run_s > 0:
            raise ConfigError("--max-run-time must be a positive number of seconds")
        config = replace(config, measure=replace(config.measure, max_run_s=max_run_s))
    return config, catalog_paths, baselines_dir, seed


class _Failure(click.ClickException):
    """A run that could not complete: exit 2 with one line, so it is never mistaken for a verdict."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"querywarden: error: {self.message}", err=True)


class _Group(click.Group):
    """Maps our errors (and internal ones) to exit 2 in every command."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except QuerywardenError as exc:
            raise _Failure(mask_dsn(str(exc))) from None
        except (KeyboardInterrupt, click.exceptions.Abort):
            raise _Failure("interrupted; the run did not complete") from None
        except (click.ClickException, click.exceptions.Exit, SystemExit):
            raise
        except Exception:
            click.echo(mask_dsn(traceback.format_exc()), err=True)
            raise _Failure("internal error (traceback above); the run did not complete") from None


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
def check(catalogs: tuple[Path, ...], baselines: Path | None, dsn: str | None, schemas: tuple[str, ...],
          seeds: tuple[str, ...], scale: float | None, statement_timeout_s: float | None, max_run_s: float | None,
          json_path: Path | None, html_path: Path | None, markdown_path: Path | None, strict: bool, no_fail: bool) -> None:
    """Measure the catalog's queries and compare them with the baselines."""
    config, catalog_paths, baselines_dir, seed = _resolve(
        load_config(), catalogs, baselines, schemas, seeds, scale, statement_timeout_s, max_run_s)
    queries = load_catalogs(catalog_paths, default_calls_per_minute=config.default_calls_per_minute)
    store = BaselineStore(baselines_dir)
    load_baselines(queries, store)  # a corrupt baseline stops the run before any measuring
    policy = replace(config.policy, strict=strict or config.policy.strict)
    with database(dsn) as resolved, open_target(resolved, seed, _progress) as target:
        run = measure_and_check(target, queries, store, policy, config.measure, _progress)
    click.echo(terminal(run))
    write_reports(run, json_path, html_path, markdown_path)
    if run.blocked and not no_fail:
        sys.exit(1)


def write_reports(run: RunResult, json_path: Path | None, html_path: Path | None, markdown_path: Path | None) -> None:
    """Write the requested reports of a run; the Markdown also goes to $GITHUB_STEP_SUMMARY when set."""
    from .render import Format, render
    from .results import write_results

    if json_path is not None:
        write_results(run, json_path)
    wanted: tuple[tuple[Path | None, Format], ...] = ((html_path, "html"), (markdown_path, "md"))
    for path, fmt in wanted:
        if path is not None:
            try:
                path.write_text(render(run, fmt), encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"{path}: cannot write the report ({exc}); choose a writable path") from None
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(render(run, "md") + "\n")


@main.command(name="update")
@common_options
@click.option("--prune", is_flag=True, help="Delete baselines whose query is no longer in the catalog.")
def update_command(catalogs: tuple[Path, ...], baselines: Path | None, dsn: str | None, schemas: tuple[str, ...],
                   seeds: tuple[str, ...], scale: float | None, statement_timeout_s: float | None,
                   max_run_s: float | None, prune: bool) -> None:
    """Measure the catalog's queries and (re)write their baselines; unchanged ones are left untouched."""
    config, catalog_paths, baselines_dir, seed = _resolve(
        load_config(), catalogs, baselines, schemas, seeds, scale, statement_timeout_s, max_run_s)
    queries = load_catalogs(catalog_paths, default_calls_per_minute=config.default_calls_per_minute)
    store = BaselineStore(baselines_dir)
    load_baselines(queries, store)
    with database(dsn) as resolved, open_target(resolved, seed, _progress) as target:
        measured = measure_queries(target, queries, config.measure, _progress)
    results = update(queries, measured, store, config.policy, prune=prune)
    for item in results:
        click.echo(f"{item.status:<10} {item.name}" + (f"  ({item.detail})" if item.detail else ""))
    if any(item.status == "failed" for item in results):
        sys.exit(1)


@main.command()
@click.option("--dsn", help="PostgreSQL DSN. Default: $QUERYWARDEN_DSN, else an embedded throwaway cluster.")
@click.option("--example", "example_dir", type=click.Path(path_type=Path, file_okay=False),
              help="The example directory (default: examples/timetracker of this checkout).")
def demo(dsn: str | None, example_dir: Path | None) -> None:
    """Seed the time-tracker example, pass its baselines, then watch a bad change get blocked."""
    from .demo import run_demo

    with database(dsn) as resolved:
        sys.exit(run_demo(resolved, example_dir, click.echo, _progress))


main.add_command(report)
main.add_command(templates)
main.add_command(import_stats)


if __name__ == "__main__":
    main()
