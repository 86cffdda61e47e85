"""`querywarden report`: render one report (and one verdict) from one or more results files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import click

from ..errors import QuerywardenError, ResultsError
from ..reports.render import FORMATS, Format, render_report
from ..reports.results import read_results
from ..verdict import RunResult


class ReportInputError(click.ClickException):
    """Bad input to `report`: exit code 2, like every error that prevents a verdict."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"querywarden: error: {self.message}", err=True)


def _write(path: Path, text: str, *, append: bool = False) -> None:
    try:
        if not append:
            path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise ReportInputError(f"{path}: cannot be written ({exc}); choose a writable path") from None


def _measured(sources: tuple[Path, ...]) -> RunResult:
    """The merged run, refused when it holds no query: a guard that measured nothing has no verdict to give.

    One empty shard among others is fine (a CI matrix job whose tests guard no query); all of them empty is not.
    """
    run = RunResult.merge([read_results(source) for source in sources])
    if not run.queries:
        files = ", ".join(str(source) for source in sources)
        raise ResultsError(
            f"{files}: the results hold no queries, so there is no verdict; check that the run that wrote "
            f"{'it' if len(sources) == 1 else 'them'} measured its catalog or guarded tests"
        )
    return run


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
        raise ReportInputError(str(exc)) from None
    text = render_report(run, cast(Format, fmt))
    if output is None:
        click.echo(text, nl=False)
    else:
        _write(output, text)
        state = "merge blocked" if run.blocked else "passed"
        noun = "query" if len(run.queries) == 1 else "queries"
        click.echo(f"querywarden: wrote {output} ({len(run.queries)} {noun}, {state})", err=True)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if fmt == "md" and summary:
        _write(Path(summary), text if text.endswith("\n") else text + "\n", append=True)
    if run.blocked and not no_fail:
        ctx.exit(1)
