"""Helpers for seed callables: production-like volume and skew, generated fast and the same every time.

A seed callable named in `seed` (`module:function` or `file.py:function`) is called with the seeding
connection and, when its signature asks for them by name, `scale`, `progress` and `kit` (a ready
`SeedKit`). A minimal one:

    from querywarden.seeding.kit import SeedKit

    def seed(conn, *, kit: SeedKit) -> None:
        workspaces, users = kit.scaled(2_000), kit.scaled(20_000)
        kit.generate("workspaces", {"name": "'Workspace ' || g"}, workspaces)
        workspace_of = kit.zipf(workspaces, exponent=1.1)   # a few huge workspaces, many small ones
        kit.copy("users", ["workspace_id", "email"],
                 ((workspace_of.sample(), f"user{i}@example.com") for i in range(users)), total=users)

Skew matters more than volume: plans flip when one tenant holds a third of a table, so the helpers
make power-law shapes easy. Everything is deterministic: Python-side draws come from a
`random.Random` with a fixed seed and server-side `random()` is `setseed()`ed, so every re-seed
writes the same rows in the same physical order and the planner sees the same statistics.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from ..errors import DatabaseError

Progress = Callable[[str], None]
DEFAULT_RANDOM_SEED = 42
SCALE_SETTING = "querywarden.scale"


def _quiet(_: str) -> None:
    pass


def current_scale(conn: psycopg.Connection[Any]) -> float:
    """The scale factor of the seed being loaded (`querywarden.scale` on the session; 1 when unset)."""
    row = conn.execute("SELECT current_setting(%s, true)", (SCALE_SETTING,)).fetchone()
    text = (row[0] if row else None) or ""
    try:
        value = float(text) if text.strip() else 1.0
    except ValueError:
        raise DatabaseError(f"{SCALE_SETTING} is {text!r}, not a number; pass --scale as a number such as 0.1") from None
    if not value > 0 or math.isinf(value):
        raise DatabaseError(f"{SCALE_SETTING} must be a positive number, not {text!r}")
    return value


def scaled(count: float, scale: float, minimum: int = 1) -> int:
    """`count` rows at `scale`, rounded, never fewer than `minimum`."""
    return max(minimum, int(round(count * scale)))


def human_count(value: float) -> str:
    return f"{value:,.0f}"


def human_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 3600:
        minutes, rest = divmod(int(round(seconds)), 60)
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(int(round(seconds / 60)), 60)
    return f"{hours} h {minutes:02d} min"


def rate_text(rows: int, elapsed: float, total: int | None = None) -> str:
    """`1,234 rows in 2.0 s (617 rows/s)`; with a known total, the share done and an ETA instead."""
    per_second = rows / elapsed if elapsed > 0 else 0.0
    if total is None or total <= 0:
        return f"{human_count(rows)} rows in {human_seconds(elapsed)} ({human_count(per_second)} rows/s)"
    remaining = max(total - rows, 0)
    eta = f", ETA {human_seconds(remaining / per_second)}" if per_second > 0 and remaining else ""
    return (
        f"{human_count(rows)} / {human_count(total)} rows ({100.0 * rows / total:.0f}%), "
        f"{human_count(per_second)} rows/s{eta}"
    )


@contextmanager
def heartbeat(progress: Progress, label: str, every_s: float = 15.0) -> Iterator[None]:
    """Say every `every_s` seconds that `label` is still running (for statements with no progress of their own)."""
    if progress is _quiet or every_s <= 0:
        yield
        return
    stop = threading.Event()
    started = time.perf_counter()

    def beat() -> None:
        while not stop.wait(every_s):
            progress(f"  {label}: still running after {human_seconds(time.perf_counter() - started)}")

    thread = threading.Thread(target=beat, name="querywarden-seed-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Zipf:
    """Ranks 1..n drawn with probability proportional to 1 / rank**exponent (Zipf's law).

    With exponent 1 and n = 2,000 the top rank gets ~12% of all draws and the top 20 about 40%,
    while the smaller half of the ranks share under 10%: a few huge tenants and a long tail of small ones.
    """

    def __init__(self, n: int, exponent: float = 1.0, rng: random.Random | None = None) -> None:
        if n < 1:
            raise ValueError("Zipf needs at least one rank")
        if exponent < 0:
            raise ValueError("a Zipf exponent must be >= 0")
        self.n = n
        self.exponent = exponent
        self.rng = rng if rng is not None else random.Random(DEFAULT_RANDOM_SEED)
        cumulative: list[float] = []
        running = 0.0
        for rank in range(1, n + 1):
            running += rank ** -exponent
            cumulative.append(running)
        self._cumulative = cumulative
        self._total = running

    def share(self, rank: int) -> float:
        """The expected fraction of draws that give `rank`."""
        if not 1 <= rank <= self.n:
            return 0.0
        return float(rank ** -self.exponent) / self._total

    def sample(self) -> int:
        point = self.rng.random() * self._total
        return min(bisect.bisect_right(self._cumulative, point), self.n - 1) + 1

    def samples(self, k: int) -> list[int]:
        """`k` draws at once (several times faster than calling `sample` k times)."""
        return self.rng.choices(range(1, self.n + 1), cum_weights=self._cumulative, k=k)


def power_law_sizes(total: int, groups: int, exponent: float = 1.0, minimum: int = 1) -> list[int]:
    """Split `total` items over `groups` groups with Zipf-shaped sizes: group 0 biggest, all >= `minimum`.

    Deterministic (no randomness) and exact: the sizes add up to `total`. Use it to say "workspace 1
    has 12% of the users and most workspaces have one or two".
    """
    if groups < 1:
        raise ValueError("power_law_sizes needs at least one group")
    if total < groups * minimum:
        raise ValueError(f"{total} items cannot give {groups} groups at least {minimum} each")
    weights = [(rank + 1) ** -exponent for rank in range(groups)]
    spread = total - groups * minimum
    scale = spread / sum(weights)
    sizes = [minimum + int(w * scale) for w in weights]
    # hand out what rounding down left over, largest fractional parts first, ties to lower ranks
    leftover = total - sum(sizes)
    order = sorted(range(groups), key=lambda i: (-(weights[i] * scale - int(weights[i] * scale)), i))
    for i in order[:leftover]:
        sizes[i] += 1
    return sizes


def scatter(rank: int, n: int, multiplier: int = 104_729) -> int:
    """Map rank 0..n-1 to an id 1..n by a fixed permutation, so the heaviest ranks are not ids 1, 2, 3.

    Real systems do not give their biggest customers the smallest ids; an index range scan over
    "ids 1..20" would otherwise hit every whale at once.
    """
    if n < 1 or not 0 <= rank < n:
        raise ValueError(f"rank {rank} is outside 0..{n - 1}")
    while math.gcd(multiplier, n) != 1:
        multiplier += 1
    return (rank * multiplier) % n + 1


def skewed_sql(n: int | str, skew: float = 3.0) -> str:
    """A server-side SQL expression for a skewed id in 1..n: `1 + floor(random() ^ skew * n)`.

    skew 1 is uniform; 2–3 gives a long tail with a few very frequent low ids (the density falls
    like x^(1/skew - 1)). `n` may be a number or an SQL expression.
    """
    if skew <= 0:
        raise ValueError("skew must be > 0")
    return f"(1 + floor(power(random(), {float(skew)!r}) * ({n}))::bigint)"


class SeedKit:
    """A seeding session: scale, a fixed-seed random generator, progress and row counting.

    `rows` counts what `generate`, `copy` and `execute` wrote, so the seed's summary can report it.
    """

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        *,
        scale: float | None = None,
        random_seed: int = DEFAULT_RANDOM_SEED,
        progress: Progress = _quiet,
        report_every_s: float = 2.0,
    ) -> None:
        self.conn = conn
        self.scale = current_scale(conn) if scale is None else float(scale)
        self.random_seed = random_seed
        self.rng = random.Random(random_seed)
        self.progress = progress
        self.report_every_s = report_every_s
        self.rows = 0

    # sizes and randomness

    def scaled(self, count: float, minimum: int = 1) -> int:
        return scaled(count, self.scale, minimum)

    def zipf(self, n: int, exponent: float = 1.0) -> Zipf:
        """A Zipf picker over 1..n that draws from this kit's generator (so it is deterministic)."""
        return Zipf(n, exponent, self.rng)

    def setseed(self, offset: int = 0) -> None:
        """Fix the server's random() sequence for this session (derived from the kit's seed)."""
        value = ((self.random_seed + offset) % 2_000_003) / 2_000_003 * 2 - 1
        self.conn.execute("SELECT setseed(%s)", (value,))

    # writing rows

    def execute(self, statement: str | sql.Composable, params: Any = None, *, label: str = "statement") -> int:
        """Run one statement, report its rows and speed, and return the rows it wrote."""
        started = time.perf_counter()
        with heartbeat(self.progress, label):
            try:
                cur = self.conn.execute(statement, params)  # type: ignore[arg-type]
            except psycopg.Error as exc:
                raise DatabaseError(f"seed step {label!r} failed: {_first_line(exc)}") from None
        rows = max(cur.rowcount, 0)
        self.rows += rows
        if rows:
            self.progress(f"  {label}: {rate_text(rows, time.perf_counter() - started)}")
        return rows

    def generate(
        self,
        table: str,
        columns: Mapping[str, str],
        count: int,
        *,
        params: Mapping[str, Any] | None = None,
        batch: int = 250_000,
        label: str | None = None,
    ) -> int:
        """Insert `count` rows made on the server from `generate_series` (column `g`, 1..count).

        `columns` maps each column to an SQL expression that may use `g`, `random()` (deterministic
        after `setseed`) and `%(name)s` parameters (so the modulo operator is written `%%`). Rows go
        in `g` order, in batches so progress and an ETA can be shown; the random() sequence simply
        continues across batches.
        """
        if count <= 0:
            return 0
        label = label or table
        names = sql.SQL(", ").join(sql.Identifier(*_split_name(name)) for name in columns)
        expressions = sql.SQL(", ").join(sql.SQL(expression) for expression in columns.values())
        statement = sql.SQL(
            "INSERT INTO {table} ({names}) SELECT {expressions} FROM generate_series(%(qw_lo)s::bigint, %(qw_hi)s::bigint) AS g ORDER BY g"
        ).format(table=sql.Identifier(*_split_name(table)), names=names, expressions=expressions)
        started = time.perf_counter()
        last_report = started
        written = 0
        for lo in range(1, count + 1, max(batch, 1)):
            hi = min(lo + max(batch, 1) - 1, count)
            values = {**(params or {}), "qw_lo": lo, "qw_hi": hi}
            try:
                cur = self.conn.execute(statement, values)
            except psycopg.Error as exc:
                raise DatabaseError(f"seed step {label!r} failed at rows {lo:,}..{hi:,}: {_first_line(exc)}") from None
            written += max(cur.rowcount, 0)
            now = time.perf_counter()
            if hi < count and now - last_report >= self.report_every_s:
                self.progress(f"  {label}: {rate_text(written, now - started, count)}")
                last_report = now
        self.rows += written
        self.progress(f"  {label}: {rate_text(written, time.perf_counter() - started)}")
        return written

    def copy(
        self,
        table: str,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        total: int | None = None,
        label: str | None = None,
    ) -> int:
        """Stream rows from Python into `table` with COPY; with `total` known, progress shows an ETA.

        The fastest way to load data built client-side (values drawn from `kit.rng`, `Zipf`,
        real-looking text): hundreds of thousands of rows a second, no statement per row.
        """
        label = label or table
        statement = sql.SQL("COPY {table} ({columns}) FROM STDIN").format(
            table=sql.Identifier(*_split_name(table)),
            columns=sql.SQL(", ").join(sql.Identifier(*_split_name(c)) for c in columns),
        )
        started = time.perf_counter()
        next_report = started + self.report_every_s
        written = 0
        try:
            with self.conn.cursor() as cur, cur.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
                    if written % 4096 == 0:
                        now = time.perf_counter()
                        if now >= next_report:
                            self.progress(f"  {label}: {rate_text(written, now - started, total)}")
                            next_report = now + self.report_every_s
        except psycopg.Error as exc:
            raise DatabaseError(f"seed step {label!r} (COPY) failed ({written:,} rows sent): {_first_line(exc)}") from None
        self.rows += written
        self.progress(f"  {label}: {rate_text(written, time.perf_counter() - started)}")
        return written


def _split_name(name: str) -> tuple[str, ...]:
    """`schema.table` → ("schema", "table"); a plain name stays one identifier."""
    return tuple(part for part in name.split(".") if part) or (name,)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
