"""Measuring one statement on a live connection: plan, work, cost and timing.

Each statement is warmed up, explained once with `EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON)`
for its plan and blocks touched (deterministic), then timed as the plain statement (EXPLAIN's
per-node timing inflates and hides real slowdowns). Every execution runs in its own transaction
that is rolled back (a savepoint rolled back to, inside a test's open transaction), under a statement
timeout, with server-side preparation off so plans are custom plans for the given parameters every time.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import tuple_row

from .errors import CatalogError, DatabaseError, ReadOnlyViolation
from .fingerprint import SqlIdentity, identify
from .observation import Observation, Timing, Unmeasured
from .plan import PlanNode, parse_explain
from .policy import MeasureSettings
from .query import GuardedQuery
from .sqlscan import split_statements
from .timing_stats import TimingComparison, sample_adaptively

# Settings that change plans or block counts; recorded in every baseline as its environment.
ENVIRONMENT_SETTINGS = (
    "block_size",
    "cpu_index_tuple_cost",
    "cpu_operator_cost",
    "cpu_tuple_cost",
    "effective_cache_size",
    "enable_bitmapscan",
    "enable_hashagg",
    "enable_hashjoin",
    "enable_indexonlyscan",
    "enable_indexscan",
    "enable_mergejoin",
    "enable_nestloop",
    "enable_seqscan",
    "enable_sort",
    "from_collapse_limit",
    "jit",
    "join_collapse_limit",
    "max_parallel_workers_per_gather",
    "random_page_cost",
    "seq_page_cost",
    "work_mem",
)


def prepare_session(conn: psycopg.Connection[Any], settings: MeasureSettings) -> dict[str, str]:
    """Pin the session's settings and return the environment that baselines record."""
    conn.autocommit = True
    conn.prepare_threshold = None
    with conn.cursor() as cur:
        return _pin(cur, settings, local=False)


def _pin(cur: psycopg.Cursor[Any], settings: MeasureSettings, *, local: bool) -> dict[str, str]:
    """Set what measuring pins (for the session, or `local` to the transaction) and read the environment."""
    cur.execute("SELECT set_config('statement_timeout', %s, %s)", (f"{settings.statement_timeout_ms}ms", local))
    cur.execute("SELECT set_config('search_path', %s, %s)", (settings.search_path, local))
    # The same timestamp parameter means the same instant on every runner; backslashes in
    # plain strings are ordinary characters, as sqlscan reads them.
    cur.execute("SELECT set_config('TimeZone', 'UTC', %s)", (local,))
    cur.execute("SELECT set_config('standard_conforming_strings', 'on', %s)", (local,))
    for name, value in sorted(settings.pinned.items()):
        try:
            cur.execute("SELECT set_config(%s, %s, %s)", (name, str(value), local))
        except psycopg.Error as exc:
            raise DatabaseError(
                f"cannot pin setting {name} = {value!r}: {exc.diag.message_primary or exc}; "
                "fix [tool.querywarden.settings]"
            ) from None
    cur.execute(
        "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s) ORDER BY name",
        (list(ENVIRONMENT_SETTINGS),),
    )
    environment = {str(name): str(value) for name, value in cur.fetchall()}
    environment["postgres_major"] = str(cur.connection.info.server_version // 10000)
    return environment


def _where(query: GuardedQuery) -> str:
    return f"query {query.name!r}" + (f" ({query.source})" if query.source else "")


def check_measurable(query: GuardedQuery) -> SqlIdentity:
    """The query's identity, or a CatalogError when it cannot be measured and rolled back safely."""
    statements = split_statements(query.sql)
    if len(statements) > 1:
        raise CatalogError(
            f"{_where(query)}: refused: it holds {len(statements)} statements; guard one statement per query"
        )
    identity = identify(query.sql)
    if identity.kind == "refused":
        raise CatalogError(f"{_where(query)}: refused: {identity.refusal}; guard a SELECT/INSERT/UPDATE/DELETE/MERGE")
    return identity


def check_baseline_sql(name: str, sql: str) -> None:
    """Stored baseline SQL comes from a pull request like catalog SQL, and a replay runs it: same checks."""
    try:
        check_measurable(GuardedQuery(name=name, sql=sql, params=None, calls_per_minute=0.0))
    except CatalogError as exc:
        raise CatalogError(f"the baseline of {exc}") from None


# In a plan's detail text: quoted identifiers (kept), string literals and numbers (masked).
_DETAIL_TOKEN = re.compile(r"""(?P<ident>"(?:[^"]|"")*")|(?P<string>'(?:[^']|'')*'?)|(?<![\w$.])(?<!Plan )(?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.])""")


def redact_literals(text: str) -> str:
    """Mask the values in a plan condition, keeping its shape and types: `(email = '?'::text) AND (n > ?)`.

    Bound parameters reach plans as literals, and parameter values can be personal data.
    """

    def mask(match: re.Match[str]) -> str:
        if match.group("ident") is not None:
            return match.group(0)
        return "'?'" if match.group("string") is not None else "?"

    return _DETAIL_TOKEN.sub(mask, text)


def redact_plan(plan: PlanNode) -> PlanNode:
    """The plan with every literal in its node details masked (see `redact_literals`)."""
    return replace(
        plan,
        detail=tuple((key, redact_literals(value)) for key, value in plan.detail),
        children=tuple(redact_plan(child) for child in plan.children),
    )


_SAMPLE_SAVEPOINT = "querywarden_sample"
_HOST_SAVEPOINT = "querywarden_host"


@contextmanager
def _isolated(cur: psycopg.Cursor[Any], read_only: bool) -> Iterator[None]:
    """One execution that leaves nothing behind: its own transaction, rolled back, on an idle
    connection; inside a test's open transaction, a savepoint rolled back to (READ ONLY for a read,
    which a statement cannot turn back to read-write)."""
    conn = cur.connection
    nested = conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    if nested:
        cur.execute(f"SAVEPOINT {_SAMPLE_SAVEPOINT}")
        if read_only:
            cur.execute("SET TRANSACTION READ ONLY")
    else:
        cur.execute("BEGIN READ ONLY" if read_only else "BEGIN")
    try:
        yield
    finally:
        status = conn.info.transaction_status
        if nested and status in (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR):
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SAMPLE_SAVEPOINT}")
            cur.execute(f"RELEASE SAVEPOINT {_SAMPLE_SAVEPOINT}")
        elif not nested and status != psycopg.pq.TransactionStatus.IDLE:
            cur.execute("ROLLBACK")


def _execute(cur: psycopg.Cursor[Any], sql: str, params: Any, read_only: bool) -> list[Any]:
    with _isolated(cur, read_only):
        cur.execute(sql, params)
        return cur.fetchall() if cur.description is not None else []


def _alone(cur: psycopg.Cursor[Any], sql: str, params: Any, read_only: bool) -> None:
    """Run the text once over the extended protocol, where the server refuses a second statement.

    Without parameters psycopg sends text over the simple protocol, which runs every statement in it:
    a `COMMIT` hidden there would end the READ ONLY transaction and let what follows write. Once the
    server has parsed this text as one statement, later runs of the same text are that statement.
    A client-side cursor cannot use the extended protocol, so its merged text is checked on a plain one.
    """
    conn = cur.connection
    text: Any = sql
    if isinstance(cur, psycopg.ClientCursor):
        text, params = cur.mogrify(sql, params), None
    with (psycopg.RawCursor(conn) if isinstance(cur, psycopg.RawCursor) else psycopg.Cursor(conn)) as plain:
        with _isolated(plain, read_only):
            plain.execute(text, params, binary=True)


def _timed(cur: psycopg.Cursor[Any], sql: str, params: Any, read_only: bool) -> float:
    with _isolated(cur, read_only):
        started = time.perf_counter()
        cur.execute(sql, params)
        if cur.description is not None:
            cur.fetchall()
        return (time.perf_counter() - started) * 1000.0


@contextmanager
def hosted_session(
    conn: psycopg.Connection[Any], settings: MeasureSettings, cursor: type[psycopg.Cursor[Any]]
) -> Iterator[dict[str, str]]:
    """Measure inside a test's own open transaction, which holds rows no other connection sees.

    Everything happens under a savepoint that is rolled back to at the end: the pinned settings
    (local to it), every execution (a savepoint of its own), so the test's transaction is left as
    the test left it. The connection's cursor and row factories are the measurer's meanwhile.
    """
    kept = (conn.cursor_factory, conn.row_factory, conn.prepare_threshold)
    conn.cursor_factory, conn.row_factory, conn.prepare_threshold = cursor, tuple_row, None
    try:
        with psycopg.Cursor(conn) as cur:
            cur.execute(f"SAVEPOINT {_HOST_SAVEPOINT}")
            try:
                yield _pin(cur, settings, local=True)
            finally:
                if conn.info.transaction_status in (psycopg.pq.TransactionStatus.INTRANS, psycopg.pq.TransactionStatus.INERROR):
                    cur.execute(f"ROLLBACK TO SAVEPOINT {_HOST_SAVEPOINT}")
                    cur.execute(f"RELEASE SAVEPOINT {_HOST_SAVEPOINT}")
    finally:
        conn.cursor_factory, conn.row_factory, conn.prepare_threshold = kept


PROBE_SQL = "SELECT count(*) FROM generate_series(1, 200000) AS g WHERE g % 7 = 3"


def calibration_probe(conn: psycopg.Connection[Any], rounds: int = 7) -> float:
    """Median time of a fixed CPU-bound query on this connection: the machine's speed right now.

    Comparing a stored timing with a new one divides out the ratio of the two runs' probes, so a
    slower CI machine does not read as a slower query.
    """
    with conn.cursor() as cur:
        _timed(cur, PROBE_SQL, None, True)
        samples = sorted(_timed(cur, PROBE_SQL, None, True) for _ in range(rounds))
    return samples[len(samples) // 2]


def collect_samples(run_once: Callable[[], float], settings: MeasureSettings) -> list[float]:
    """Time the statement until its median is precise (2% standard error) or a cap is reached."""
    result = sample_adaptively(
        run_once,
        min_samples=settings.min_samples,
        max_samples=settings.max_samples,
        time_cap_s=settings.time_cap_s,
    )
    return list(result.samples_a)


# The budget of a same-run A/B, as multiples of `max_samples` and `time_cap_s` (defaults: 600 pairs,
# 4.5 s). A clear answer stops it within a few dozen pairs; a close call keeps sampling while it is
# inconclusive. Pairs of sub-millisecond queries are cheap, and telling a x1.2 slowdown from the
# x1.1 minimum effect at 98% confidence in 95% of runs takes a fixed-size test ~150 pairs at a CV
# of 15% and ~600 at 30% (a loaded runner); stopping early on clear answers, the sampler needs
# fewer on average but as many in its close calls. The sample cap allows that many, the time cap
# bounds what a slow query can cost.
REPLAY_SAMPLE_FACTOR = 15
REPLAY_TIME_FACTOR = 3


def replay_against(
    conn: psycopg.Connection[Any],
    baseline_sql: str,
    query: GuardedQuery,
    settings: MeasureSettings,
    read_only: bool = True,
) -> TimingComparison | None:
    """Same-run A/B: time the baseline's SQL and the new SQL interleaved on one connection.

    Machine speed then cancels out of the comparison. It samples until `compare_timings` decides,
    or up to REPLAY_SAMPLE_FACTOR * max_samples pairs or REPLAY_TIME_FACTOR * time_cap_s seconds
    (after the warm-ups). Returns None when the baseline SQL cannot run with today's parameters (a
    renamed placeholder, a dropped column): the stored timing is used then.
    """
    try:
        with conn.cursor() as cur:
            _alone(cur, baseline_sql, query.params, read_only)
            for _ in range(settings.warmup):
                _timed(cur, baseline_sql, query.params, read_only)
            result = sample_adaptively(
                lambda: _timed(cur, baseline_sql, query.params, read_only),
                lambda: _timed(cur, query.sql, query.params, read_only),
                min_samples=settings.min_samples,
                max_samples=REPLAY_SAMPLE_FACTOR * settings.max_samples,
                time_cap_s=REPLAY_TIME_FACTOR * settings.time_cap_s,
            )
    except pg_errors.QueryCanceled:
        return None
    except pg_errors.InsufficientPrivilege as exc:
        raise CatalogError(
            f"the baseline of {_where(query)} holds SQL the measuring role may not run ({_first_line(exc)}); "
            "a baseline's SQL must be the query it was recorded from: restore the file from git or re-record it"
        ) from None
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise DatabaseError(
            f"lost the database connection while replaying the baseline of {_where(query)}: {_first_line(exc)}"
        ) from None
    except psycopg.Error:
        return None
    return result.comparison


class _TimedOut(Exception):
    """A statement ran past the statement timeout: a verdict (`Unmeasured(timed_out=True)`), not an error."""


class _BaseTimedOut(Exception):
    """The base revision's side of an A/B ran past the statement timeout: no comparison, not a verdict."""


@contextmanager
def _named_errors(conn: psycopg.Connection[Any], query: GuardedQuery, settings: MeasureSettings) -> Iterator[None]:
    """Turn what PostgreSQL says about one query into errors naming it (a timeout into `_TimedOut`)."""
    try:
        yield
    except pg_errors.QueryCanceled:
        raise _TimedOut(f"exceeded the statement timeout of {settings.statement_timeout_ms / 1000:g} s") from None
    except pg_errors.ReadOnlySqlTransaction:
        raise ReadOnlyViolation(query.name) from None
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        if conn.closed or not exc.sqlstate:
            raise DatabaseError(
                f"lost the database connection while measuring {_where(query)}: {_first_line(exc)}; "
                "check that the server is up and re-run"
            ) from None
        raise CatalogError(f"{_where(query)}: PostgreSQL rejected it: {_first_line(exc)}; check its SQL and -- params") from None
    except psycopg.Error as exc:
        said = "PostgreSQL rejected it" if exc.sqlstate else "cannot be run"
        raise CatalogError(f"{_where(query)}: {said}: {_first_line(exc)}; check its SQL and -- params") from None


@dataclass(frozen=True)
class _Explained:
    """A query warmed up and explained on a connection, ready to be timed there."""

    identity: SqlIdentity
    plan: PlanNode
    planning_ms: float | None
    execution_ms: float | None
    run_once: Callable[[], float]


@contextmanager
def _explained(
    conn: psycopg.Connection[Any], query: GuardedQuery, settings: MeasureSettings, read_only: bool | None
) -> Iterator[_Explained]:
    """Warm the query up and explain it once; its `run_once` times one plain execution, errors named."""
    identity = check_measurable(query)
    if read_only is None:
        read_only = identity.kind == "read"
    params = query.params
    explain_sql = "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON)\n" + query.sql
    with _named_errors(conn, query, settings), conn.cursor() as cur:
        _alone(cur, query.sql, params, read_only)
        for _ in range(max(settings.warmup - 1, 0)):  # the check above warmed it up once
            _execute(cur, query.sql, params, read_only)
        rows = _execute(cur, explain_sql, params, read_only)
        plan = parse_explain(rows[0][0])
        planning_ms, execution_ms = _explain_times(rows[0][0])
        if not settings.store_params:
            plan = redact_plan(plan)

        def run_once() -> float:
            with _named_errors(conn, query, settings):
                return _timed(cur, query.sql, params, read_only)

        yield _Explained(identity, plan, planning_ms, execution_ms, run_once)


def _observation(
    query: GuardedQuery, explained: _Explained, samples: Sequence[float], environment: Mapping[str, str], probe_ms: float | None
) -> Observation:
    return Observation(
        name=query.name,
        sql=query.sql,
        normalized_sql=explained.identity.normalized,
        fingerprint=explained.identity.fingerprint,
        calls_per_minute=query.calls_per_minute,
        plan=explained.plan,
        timing=Timing.from_samples(samples, probe_ms),
        environment=dict(environment),
        budget_ms=query.budget_ms,
        allow_seq_scan=query.allow_seq_scan,
        planning_ms=explained.planning_ms,
        execution_ms=explained.execution_ms,
    )


def _timed_out(query: GuardedQuery, message: str) -> Unmeasured:
    return Unmeasured(name=query.name, message=message, sql=query.sql, calls_per_minute=query.calls_per_minute, timed_out=True)


def measure(
    conn: psycopg.Connection[Any],
    query: GuardedQuery,
    settings: MeasureSettings,
    environment: Mapping[str, str],
    *,
    read_only: bool | None = None,
    probe_ms: float | None = None,
) -> Observation | Unmeasured:
    """Measure one query on a prepared connection.

    Reads run in READ ONLY transactions; a read that turns out to write raises ReadOnlyViolation so the
    caller can measure it on a throwaway clone instead. SQL errors are CatalogErrors naming the
    query; a lost connection is a DatabaseError naming it.
    """
    try:
        with _explained(conn, query, settings, read_only) as explained:
            samples = collect_samples(explained.run_once, settings)
    except _TimedOut as exc:
        return _timed_out(query, str(exc))
    return _observation(query, explained, samples, environment, probe_ms)


@dataclass(frozen=True)
class Side:
    """One side of a same-run A/B: the query as that revision has it, on that revision's database."""

    conn: psycopg.Connection[Any]
    query: GuardedQuery
    environment: Mapping[str, str]
    read_only: bool | None = None
    probe_ms: float | None = None


@dataclass(frozen=True)
class Paired:
    """Both sides of a same-run A/B, and the comparison of their timings (None: the base could not run it)."""

    base: Observation | Unmeasured | None
    head: Observation | Unmeasured
    comparison: TimingComparison | None
    base_error: str | None = None
    timed_alike: bool = True  # False: two backends on cores of their own, which load can set apart


def _local_backend(conn: psycopg.Connection[Any]) -> int | None:
    """The pid of the connection's server process when it runs on this machine and we may schedule
    it (PostgreSQL names the database in its process title), else None (another host, a container)."""
    pid = conn.info.backend_pid
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None
    return pid if title.startswith("postgres:") and f" {conn.info.dbname} " in f" {title} " else None


@contextmanager
def one_core(*conns: psycopg.Connection[Any]) -> Iterator[bool]:
    """Run this process and the connections' server processes on one CPU for the block, where the
    system lets us (True), so two databases' backends are timed alike.

    Two backends answer the same statement at different speeds, each on its own core: the wake-up
    latency differs by core, and a CPU-bound neighbour slows whichever core it shares. Measured here
    (2 cores, two busy-looping processes, the same 0.2 ms read on two identical databases, 20 runs):
    5 false "slower" and 2 false "faster" verdicts with the backends left where they were, none with
    client and backends pinned to one core; 0 of 20 either way on one connection to one database.
    """
    pids = [_local_backend(conn) for conn in conns]
    if not hasattr(os, "sched_setaffinity") or any(pid is None for pid in pids):
        yield False
        return
    kept = {pid: os.sched_getaffinity(pid) for pid in (0, *pids) if pid is not None}
    cpu = min(kept[0])
    try:
        for pid in kept:
            os.sched_setaffinity(pid, {cpu})
    except OSError:
        _restore(kept)
        yield False
        return
    try:
        yield True
    finally:
        _restore(kept)


def _restore(affinities: Mapping[int, set[int]]) -> None:
    for pid, cpus in affinities.items():
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError:
            pass  # the backend has gone: nothing to restore


def measure_pair(base: Side, head: Side, settings: MeasureSettings) -> Paired:
    """Measure the base revision's query on its database and the head's on its own, timed interleaved.

    Both are explained (plan and blocks touched, each on its own data), then timed in alternating
    rounds until `compare_timings` decides, with the budget of a replay (REPLAY_SAMPLE_FACTOR,
    REPLAY_TIME_FACTOR): machine speed then cancels out of the comparison whatever the change is,
    SQL, schema, function body, trigger or setting. The head's errors are raised as `measure`
    raises them; the base's make the head measured alone, with `base_error` saying why (a query
    the base cannot run has nothing to be compared with there).
    """
    with ExitStack() as stack:
        try:
            before = stack.enter_context(_explained(base.conn, base.query, settings, base.read_only))
        except (_TimedOut, CatalogError, ReadOnlyViolation) as exc:
            alone = measure(head.conn, head.query, settings, head.environment, read_only=head.read_only, probe_ms=head.probe_ms)
            return Paired(None, alone, None, str(exc))
        try:
            after = stack.enter_context(_explained(head.conn, head.query, settings, head.read_only))
        except _TimedOut as exc:
            return Paired(None, _timed_out(head.query, str(exc)), None)

        def base_once() -> float:
            try:
                return before.run_once()
            except _TimedOut as exc:
                raise _BaseTimedOut(str(exc)) from None

        base_error: str | None = None
        pinned = base.conn is head.conn or stack.enter_context(one_core(base.conn, head.conn))
        try:
            result = sample_adaptively(
                base_once,
                after.run_once,
                min_samples=settings.min_samples,
                max_samples=REPLAY_SAMPLE_FACTOR * settings.max_samples,
                time_cap_s=REPLAY_TIME_FACTOR * settings.time_cap_s,
            )
        except _BaseTimedOut as exc:
            base_error = f"the base revision's query {exc}"
        except _TimedOut as exc:
            return Paired(None, _timed_out(head.query, str(exc)), None)
    if base_error is not None:
        alone = measure(head.conn, head.query, settings, head.environment, read_only=head.read_only, probe_ms=head.probe_ms)
        return Paired(None, alone, None, base_error)
    return Paired(
        _observation(base.query, before, result.samples_a, base.environment, base.probe_ms),
        _observation(head.query, after, result.samples_b, head.environment, head.probe_ms),
        result.comparison,
        timed_alike=pinned,
    )


def _explain_times(document: Any) -> tuple[float | None, float | None]:
    """EXPLAIN ANALYZE's planning and execution time: a plan that costs more to make than to run is
    a production cost the total hides."""
    top = document[0] if isinstance(document, list) and document else document
    if not isinstance(top, dict):
        return None, None
    planning, execution = top.get("Planning Time"), top.get("Execution Time")
    return (float(planning) if isinstance(planning, (int, float)) else None,
            float(execution) if isinstance(execution, (int, float)) else None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
