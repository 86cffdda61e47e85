"""`querywarden report`: render one report (and one verdict) from one or more results files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import click

from ..errors import QuerywardenError, ResultsError
from ..reports import append_summary, write_text
from ..reports.render import FORMATS, Format, render_report
from ..reports.results import read_results
from ..verdict import RunResult


class Failure(click.ClickException):
    """A run that could not complete: exit 2 with one line, so it is never mistaken for a verdict.

    Every command raises it (`report` too, which also runs on its own, outside the `querywarden` group)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"querywarden: error: {self.message}", err=True)


def _measured(sources: tuple[Path, ...]) -> RunResult:
    """The merged run, refused when it holds no query: a guard that measured nothing has no verdict to give.

    One empty shard among others is fine (a CI matrix job whose tests guard no query); all of them empty is not.
    """
    run = RunResult.merge([read_results(source) for source in sources])
    if len(sources) > 1:
        run = _whole_change(run)
    if not run.queries:
        files = ", ".join(str(source) for source in sources)
        raise ResultsError(
            f"{files}: the results hold no queries, so there is no verdict; check that the run that wrote "
            f"{'it' if len(sources) == 1 else 'them'} measured its catalog or guarded tests"
        )
    return run


def _whole_change(run: RunResult) -> RunResult:
    """The merged shards, with the change budget judged on the whole change (each shard saw a part of it;
    `check --shard` leaves it out): at the call rates and budget of the project's [tool.querywarden]."""
    from ..config import load_config
    from ..judge import CHANGE, change_budget

    queries = tuple(result for result in run.queries if result.name != CHANGE)
    whole = change_budget(queries, load_config().policy)
    return RunResult(queries + ((whole,) if whole is not None else ()))


@click.command("report")
@click.option(
    "--from",
    "sources",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=True, path_type=Path),
    help="A results file written by `querywarden check --json`. Repeat to merge shards into one report.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="md",
    show_default=True,
    help="md: PR comment / job summary; html: one self-contained file; json: merged results; "
    "github: workflow-command annotations.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report to this file instead of standard output.",
)
@click.option(
    "--no-fail",
    is_flag=True,
    default=False,
    help="Exit 0 even when a result blocks (rollout mode); bad input still exits 2.",
)
@click.pass_context
def report(ctx: click.Context, sources: tuple[Path, ...], fmt: str, output: Path | None, no_fail: bool) -> None:
    """Render a report from results files and exit with the merged verdict.

    Exit codes: 0 when no result blocks (or with --no-fail), 1 when a result blocks, 2 on bad input.
    With --format md and $GITHUB_STEP_SUMMARY set, the Markdown is also appended to the job summary.
    """
    try:
        run = _measured(sources)
    except QuerywardenError as exc:
        raise Failure(str(exc)) from None
    text = render_report(run, cast(Format, fmt))
    try:
        if output is None:
            click.echo(text, nl=False)
        else:
            write_text(output, text, f"the {fmt} report")
            state = "merge blocked" if run.blocked else "passed"
            noun = "query" if len(run.queries) == 1 else "queries"
            click.echo(f"querywarden: wrote {output} ({len(run.queries)} {noun}, {state})", err=True)
        if fmt == "md":
            append_summary(text)
    except QuerywardenError as exc:
        raise Failure(str(exc)) from None
    if run.blocked and not no_fail:
        ctx.exit(1)
