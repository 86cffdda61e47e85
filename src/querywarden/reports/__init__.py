"""Reports of a run: the terminal lines, Markdown, self-contained HTML, JSON results files and GitHub
annotations. They read verdicts and never touch a database."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..verdict import RunResult


def write_text(path: Path, text: str, what: str) -> None:
    """Write a report file whole or not at all (a full disk leaves no half or empty file behind)."""
    from .results import write_atomically

    write_atomically(path, text, what)


def append_summary(text: str) -> None:
    """Append Markdown to $GITHUB_STEP_SUMMARY when that is set; an unwritable summary is one clear error."""
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    try:
        with open(summary, "a", encoding="utf-8") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        raise ConfigError(
            f"$GITHUB_STEP_SUMMARY ({summary}) cannot be written ({exc.strerror or exc}); "
            "point it at a writable file or unset it"
        ) from None


def write_reports(run: RunResult, json_path: Path | None, html_path: Path | None, markdown_path: Path | None) -> None:
    """Write the requested reports of a run; the Markdown also goes to $GITHUB_STEP_SUMMARY when set."""
    from .render import render_report
    from .results import write_results

    if json_path is not None:
        write_results(run, json_path)
    if html_path is not None:
        write_text(html_path, render_report(run, "html"), "the HTML report")
    if markdown_path is not None:
        write_text(markdown_path, render_report(run, "md"), "the Markdown report")
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        append_summary(render_report(run, "md"))
