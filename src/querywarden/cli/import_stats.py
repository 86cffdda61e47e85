"""`querywarden import-stats`: production call rates from a pg_stat_statements export into the catalog,
and (`--planner`) production's planner statistics, checked and made ready for the seed's
`planner-stats:FILE` item (see planner_stats.py and docs/production-stats.md).

Registered on the main group by the cli package (`main.add_command(import_stats)`); errors are
QuerywardenErrors, which the group turns into exit 2 with one line.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..catalog import load_catalogs
from ..config import load_config
from ..errors import ConfigError
from ..call_rates import ImportResult, Matched, match_export, rate_lines, read_export, write_rates
from ..planner_stats import ITEM_PREFIX, canonical_json, describe, is_item, item_path, read_planner_stats


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:,.1f}"
    return f"{value:.3g}"


def _ms(value: float) -> str:
    return f"{value:,.1f}" if value >= 10 else f"{value:.3g}"


def _db_time(ms_per_minute: float) -> str:
    return f"{ms_per_minute / 1000:,.1f} s/min" if ms_per_minute >= 1000 else f"{ms_per_minute:,.0f} ms/min"


def _window(minutes: float) -> str:
    return f"{minutes:,.1f} min" if minutes >= 1 else f"{minutes * 60:.1f} s"


def _short(text: str, width: int = 96) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _current(item: Matched) -> str:
    if not item.has_line:
        return f"(default {item.query.calls_per_minute:g})"
    return f"{item.query.calls_per_minute:g}"


def render(result: ImportResult, *, top: int, write: bool, written: list[Path]) -> str:
    export = result.export
    window = _window(result.window_minutes)
    if export.stats_reset and export.exported_at:
        window += f" ({export.stats_reset:%Y-%m-%d %H:%M} → {export.exported_at:%Y-%m-%d %H:%M} {export.exported_at:%Z})".replace(" )", ")")
    lines = [f"{export.path}: {len(export.statements):,} statements over {window}", ""]
    seen = [m for m in result.matched if m.calls_per_minute is not None]
    unseen = [m for m in result.matched if m.calls_per_minute is None]
    if seen:
        name_width = max(len("query"), *(len(m.query.name) for m in seen))
        header = f"{'query':<{name_width}}  {'calls/min':>10}  {'mean ms':>8}  {'catalog':>15}  {'new':>8}"
        lines += [header, "-" * len(header)]
        for item in sorted(seen, key=lambda m: -(m.calls_per_minute or 0.0)):
            new = item.written_value if item.changes else "same"
            lines.append(
                f"{item.query.name:<{name_width}}  {_number(item.calls_per_minute or 0.0):>10}  {_ms(item.mean_ms or 0.0):>8}  "
                f"{_current(item):>15}  {new:>8}"
            )
            if item.shared_with:
                lines.append(f"  (same statement as {', '.join(item.shared_with)}: each gets the statement's whole rate)")
    else:
        lines.append("no catalog query was found in the export")
    if unseen:
        lines += ["", "guarded but not in the export (calls-per-minute left as is): " + ", ".join(m.query.name for m in unseen)]
    if result.unguarded:
        shown = result.unguarded[:top]
        lines += [
            "",
            f"unguarded statements (no catalog query matches): top {len(shown)} of {len(result.unguarded)} by calls/min",
        ]
        for unguarded in shown:
            lines.append(
                f"  {_number(unguarded.calls_per_minute):>10}/min  {_ms(unguarded.mean_ms):>7} ms  "
                f"{_db_time(unguarded.ms_per_minute):>11}  {_short(unguarded.text)}"
            )
        lines.append("  hot ones among them are paths nothing guards: add them to a catalog")
    for note in result.notes:
        lines += ["", f"note: {note}"]
    changing = [m for m in seen if m.changes]
    lines.append("")
    if write:
        if written:
            lines.append(f"wrote {len(changing)} calls-per-minute line(s) in {', '.join(str(p) for p in written)}")
        else:
            lines.append("the catalog already has these rates; nothing written")
    elif changing:
        lines.append(f"run again with --write to update {len(changing)} calls-per-minute line(s)")
    else:
        lines.append("the catalog already has these rates")
    return "\n".join(lines)


@click.command(name="import-stats")
@click.argument("export_file", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--catalog", "catalogs", multiple=True, type=click.Path(path_type=Path),
              help="Catalog .sql file or directory (repeatable). Default: `catalog` in [tool.querywarden].")
@click.option("--window-minutes", type=float,
              help="Minutes the counters cover. Default: exported_at − stats_reset from the export.")
@click.option("--write", is_flag=True, help="Rewrite the `-- calls-per-minute:` lines of the catalog files in place.")
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many unguarded statements to list.")
@click.option("--planner", is_flag=True,
              help="FILE is production's planner statistics (the JSON export of docs/production-stats.md or "
                   "pg_dump --statistics-only output): check it and say how the seed imports it.")
@click.option("--output", type=click.Path(path_type=Path),
              help="With --planner: write the checked statistics here as sorted JSON, for the seed to reference.")
def import_stats(export_file: Path, catalogs: tuple[Path, ...], window_minutes: float | None, write: bool, top: int,
                 planner: bool, output: Path | None) -> None:
    """Set the catalog's call rates from a pg_stat_statements export (CSV or JSON, see docs/production-stats.md).

    With --planner, check production's planner statistics for the seed's planner-stats:FILE item instead."""
    config = load_config()
    if planner:
        if write or window_minutes is not None or catalogs:
            raise ConfigError("--planner reads planner statistics; --write, --window-minutes and --catalog are for "
                              "pg_stat_statements exports")
        click.echo(import_planner_stats(export_file, output, config.seed, config.root))
        return
    if output is not None:
        raise ConfigError("--output is for --planner; a pg_stat_statements import rewrites the catalog with --write")
    paths = list(catalogs) or [config.path(c) for c in config.catalog]
    if not paths:
        raise ConfigError("no catalog given; pass --catalog FILE or set `catalog` in [tool.querywarden]")
    queries = load_catalogs(paths, default_calls_per_minute=config.default_calls_per_minute)
    export = read_export(export_file)
    lines_by_file: dict[tuple[str, str], bool] = {}
    for source in sorted({q.source.path for q in queries if q.source is not None}):
        path = Path(source)
        for name, has_line in rate_lines(path.read_bytes().decode("utf-8"), path).items():
            lines_by_file[(source, name)] = has_line
    result = match_export(export, queries, export.window_minutes(window_minutes), rate_lines=lines_by_file)
    written = write_rates(result) if write else []
    click.echo(render(result, top=top, write=write, written=written))


def import_planner_stats(path: Path, output: Path | None, seed_items: tuple[str, ...], root: Path) -> str:
    """Check a planner statistics file (and write its sorted JSON form); say how the seed uses it."""
    stats = read_planner_stats(path)
    lines = describe(stats)
    target = path
    if output is not None:
        text = canonical_json(stats)
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write {output} ({exc.strerror or exc})") from None
        lines += ["", f"wrote {output} ({len(text.encode()):,} bytes)"]
        target = output
    used = [item for item in seed_items if is_item(item) and _same(item_path(item, root), target)]
    lines.append("")
    if used:
        lines.append(f"the seed imports it ({used[0]}): the next run builds a template with these statistics "
                     "(PostgreSQL 18 or later)")
    else:
        lines.append(f'add "{ITEM_PREFIX}{target}" to `seed` in [tool.querywarden] (after the data items); the template is '
                     "then built with production's column statistics, on PostgreSQL 18 or later")
    lines.append("note: most_common_vals and histogram_bounds are production values (emails, names, ids); "
                 "read the file before you commit it")
    return "\n".join(lines)


def _same(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False
