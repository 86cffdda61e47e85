"""`querywarden templates`: the seeded templates on a server, the clones and measuring roles killed runs
left, and pruning what no run uses any more.

Registered on the main group by cli.py (`main.add_command(templates)`); errors are
QuerywardenErrors, which the group turns into exit 2 with one line.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import click

from ..config import dsn_setting
from ..environment import DSN_ENV
from ..database import Server, mask_dsn
from ..errors import ConfigError
from ..seeding.templates import (
    Pruned,
    RunClone,
    RunRole,
    SeededTemplate,
    human_age,
    is_clone_name,
    is_role_name,
    is_seeded_name,
    list_clones,
    list_roles,
    list_templates,
    prune_clones,
    prune_roles,
    prune_templates,
)

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


def _table(rows: list[tuple[str, ...]], right: set[int]) -> list[str]:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        "  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in rows
    ]


def _listing(found: list[SeededTemplate]) -> list[str]:
    rows: list[tuple[str, ...]] = [("seeded database", "size", "scale", "built (UTC)", "last used (UTC)", "")]
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
    return _table(rows, {1, 2})


def _clone_listing(found: list[RunClone]) -> list[str]:
    rows: list[tuple[str, ...]] = [("clone database", "size", "")]
    for item in found:
        rows.append((item.name, _size(item.size_bytes), item.busy or "orphaned: no session connected to it; --prune drops it"))
    return _table(rows, {1})


def _role_listing(found: list[RunRole]) -> list[str]:
    rows: list[tuple[str, ...]] = [("measuring role", "")]
    for item in found:
        held = f" (holds grants or objects in {', '.join(item.databases)})" if item.databases else ""
        rows.append((item.name, item.busy or f"orphaned: no session logged in as it; --prune drops it{held}"))
    return _table(rows, set())


@click.command()
@click.option("--dsn", help="PostgreSQL DSN of the server that holds the templates. Default: $QUERYWARDEN_DSN.")
@click.option("--prune", is_flag=True,
              help="Drop seeded templates unused for --unused-for, databases left by interrupted builds, and "
                   "the clones and measuring roles of killed runs that no session uses.")
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
    """List the seeded template databases on a server (size, scale, built, last used), and the clones and
    measuring roles runs killed by a signal left; or prune old templates and those orphans.

    NAMEs (qw_seed_<fingerprint>, qw_run_/qw_write_<hex>, qw_measure_<hex>) limit it to those; by default
    it covers everything querywarden made on the server.
    """
    for name in names:
        if not (is_seeded_name(name) or is_clone_name(name) or is_role_name(name)):
            raise ConfigError(f"{name!r} is not a name querywarden gives (a seeded template: qw_seed_ and 12 hex "
                              "digits, or that and _building; a clone: qw_run_ or qw_write_ and 10 hex digits; a "
                              "measuring role: qw_measure_ and 10 hex digits); `querywarden templates` lists them")
    templates_named = [n for n in names if is_seeded_name(n)] if names else None
    clones_named = [n for n in names if is_clone_name(n)] if names else None
    roles_named = [n for n in names if is_role_name(n)] if names else None
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
        _list(server, templates_named, clones_named, roles_named, bool(names))
        return

    def said(result: Pruned) -> None:
        size = _size(result.size_bytes) if result.kind == "database" else ""
        click.echo(f"{result.action:<10}  {result.name:<20}  {size:>9}  {result.reason}")

    # templates, then clones, then roles: a dropped clone takes a role's grants in it along
    results = prune_templates(server, age, include_unrecorded=include_unrecorded, dry_run=dry_run,
                              names=templates_named, on_result=said)
    results += prune_clones(server, dry_run=dry_run, names=clones_named, on_result=said)
    results += prune_roles(server, dry_run=dry_run, names=roles_named, on_result=said)
    gone = [r for r in results if r.action in ("dropped", "would drop")]
    databases = sum(r.kind == "database" for r in gone)
    roles = sum(r.kind == "role" for r in gone)
    what = _plural(databases, "database") + (f" and {_plural(roles, 'role')}" if roles else "")
    freed = _size(sum(r.size_bytes for r in gone))
    counts = ", ".join(
        f"{action} {n}" for action in ("kept", "skipped") if (n := sum(r.action == action for r in results))
    )
    if dry_run:
        click.echo(f"would drop {what} and free {freed}" + (f"; {counts}" if counts else "") + " (dry run: nothing dropped)")
    else:
        click.echo(f"dropped {what}, freed {freed}" + (f"; {counts}" if counts else ""))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _list(server: Server, templates_named: list[str] | None, clones_named: list[str] | None,
          roles_named: list[str] | None, named: bool) -> None:
    """The templates, then the clones and roles of runs; each section only when it has something."""
    found = list_templates(server, templates_named)
    clones = list_clones(server, clones_named)
    roles = list_roles(server, roles_named)
    if not (found or clones or roles):
        click.echo("nothing of those names on this server" if named
                   else "no seeded templates, clones or measuring roles on this server")
        return
    if found:
        for line in _listing(found):
            click.echo(line)
        total = sum(item.size_bytes for item in found)
        click.echo(f"{_plural(len(found), 'seeded database')}, {_size(total)} in all; "
                   f"`querywarden templates --prune --unused-for {_DEFAULT_UNUSED_FOR}` drops those unused for a week")
    if clones:
        for line in _clone_listing(clones):
            click.echo(line)
        orphans = [item for item in clones if not item.busy]
        click.echo(f"{_plural(len(clones), 'clone database')}, {len(orphans)} orphaned "
                   f"({_size(sum(item.size_bytes for item in orphans))}); `querywarden templates --prune` drops those")
    if roles:
        for line in _role_listing(roles):
            click.echo(line)
        orphans_r = sum(not item.busy for item in roles)
        click.echo(f"{_plural(len(roles), 'measuring role')}, {orphans_r} orphaned; `querywarden templates --prune` drops those")
