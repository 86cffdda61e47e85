"""`querywarden templates`: the seeded templates on a server, and pruning the ones no run uses any more.

Registered on the main group by cli.py (`main.add_command(templates)`); errors are
QuerywardenErrors, which the group turns into exit 2 with one line.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import click

from ..config import DSN_ENV, dsn_setting
from ..database import Server, mask_dsn
from ..errors import ConfigError
from ..seeding.templates import Pruned, SeededTemplate, human_age, is_seeded_name, list_templates, prune_templates

# No bare `m`: minutes to one reader, months to another, and the difference is what gets dropped.
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|min|h|d|w)", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DEFAULT_UNUSED_FOR = "7d"


def parse_duration(value: str, option: str) -> timedelta:
    """`90min`, `12h`, `7d`, `2w` (also `s`) as a timedelta; anything else is a ConfigError naming `option`."""
    found = _DURATION.fullmatch(value.strip())
    if not found:
        raise ConfigError(f"{option} {value!r} is not a duration; use a number and a unit: 90min, 12h, 7d or 2w")
    return timedelta(seconds=float(found.group(1)) * _DURATION_UNITS[found.group(2).lower()])


def _size(size_bytes: float) -> str:
    """`7.4 MB`, `2.3 GB`: binary units, as pg_size_pretty counts them."""
    for unit in ("bytes", "kB", "MB", "GB"):
        if size_bytes < 1024:
            return f"{size_bytes:.0f} {unit}" if unit == "bytes" else f"{size_bytes:.1f} {unit}"
        size_bytes /= 1024
    return f"{size_bytes:.1f} TB"


def _when(moment: datetime | None) -> str:
    return "not recorded" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


def _listing(found: list[SeededTemplate]) -> list[str]:
    header = ("seeded database", "size", "scale", "built (UTC)", "last used (UTC)", "")
    rows = [header]
    for item in found:
        if item.building:
            note = item.busy or "left by an interrupted build; --prune drops it"
            rows.append((item.name, _size(item.size_bytes), "", "", "", note))
            continue
        usage = item.usage
        idle = item.idle
        note = item.busy or (f"idle {human_age(idle)}" if idle is not None else "built by an older querywarden")
        scale = f"{usage.scale:g}" if usage is not None and usage.scale is not None else "?"
        rows.append((
            item.name, _size(item.size_bytes), scale,
            _when(usage.built_at if usage else None), _when(usage.last_used_at if usage else None), note,
        ))
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    right = {1, 2}
    return [
        "  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


@click.command()
@click.option("--dsn", help="PostgreSQL DSN of the server that holds the templates. Default: $QUERYWARDEN_DSN.")
@click.option("--prune", is_flag=True,
              help="Drop seeded templates unused for --unused-for, and databases left by interrupted builds.")
@click.option("--unused-for", "unused_for", metavar="DURATION",
              help=f"With --prune: how long since a run last used a template before it is dropped, "
                   f"e.g. 12h, 7d, 2w (default {_DEFAULT_UNUSED_FOR}).")
@click.option("--include-unrecorded", is_flag=True,
              help="With --prune: also drop templates whose last use was never recorded (built by an older "
                   "querywarden).")
@click.option("--dry-run", is_flag=True, help="Say what --prune would drop and free; drop nothing.")
@click.argument("names", nargs=-1, metavar="[NAME]...")
def templates(dsn: str | None, prune: bool, unused_for: str | None, include_unrecorded: bool, dry_run: bool,
              names: tuple[str, ...]) -> None:
    """List the seeded template databases on a server (size, scale, built, last used), or prune old ones.

    NAMEs (qw_seed_<fingerprint>) limit it to those templates; by default it covers every seeded template.
    """
    for name in names:
        if not is_seeded_name(name):
            raise ConfigError(f"{name!r} is not a seeded template's name (qw_seed_ and 12 hex digits, or that and "
                              "_building); `querywarden templates` lists them")
    pruning = prune or dry_run
    if not pruning and (unused_for is not None or include_unrecorded):
        flag = "--unused-for" if unused_for is not None else "--include-unrecorded"
        raise ConfigError(f"{flag} applies to pruning; add --prune (or --dry-run to see what it would drop)")
    age = parse_duration(unused_for if unused_for is not None else _DEFAULT_UNUSED_FOR, "--unused-for")
    given = dsn_setting(dsn)
    resolved, origin = given.value, given.origin
    if resolved is None:
        raise ConfigError(
            "templates needs the server that holds them (an embedded cluster has none); "
            f"pass --dsn postgresql://user@host:port/db or set ${DSN_ENV}"
        )
    click.echo(f"database: {mask_dsn(resolved)} (from {origin})", err=True)
    server = Server(resolved)
    if not pruning:
        found = list_templates(server, names or None)
        if not found:
            click.echo("no such seeded templates on this server" if names else "no seeded templates on this server")
            return
        for line in _listing(found):
            click.echo(line)
        total = sum(item.size_bytes for item in found)
        click.echo(f"{len(found)} seeded database{'s' if len(found) != 1 else ''}, {_size(total)} in all; "
                   f"`querywarden templates --prune --unused-for {_DEFAULT_UNUSED_FOR}` drops those unused for a week")
        return

    def said(result: Pruned) -> None:
        click.echo(f"{result.action:<10}  {result.name:<20}  {_size(result.size_bytes):>9}  {result.reason}")

    results = prune_templates(server, age, include_unrecorded=include_unrecorded, dry_run=dry_run,
                              names=names or None, on_result=said)
    gone = [r for r in results if r.action in ("dropped", "would drop")]
    freed = _size(sum(r.size_bytes for r in gone))
    counts = ", ".join(
        f"{action} {n}" for action in ("kept", "skipped") if (n := sum(r.action == action for r in results))
    )
    if dry_run:
        click.echo(f"would drop {len(gone)} database{'s' if len(gone) != 1 else ''} and free {freed}"
                   + (f"; {counts}" if counts else "") + " (dry run: nothing dropped)")
    else:
        click.echo(f"dropped {len(gone)} database{'s' if len(gone) != 1 else ''}, freed {freed}"
                   + (f"; {counts}" if counts else ""))
