"""The labelled corpus of the detection benchmark: realistic changes to the time-tracker example.

Every scenario is a change a pull request could make, on the example's catalog
(`examples/timetracker/queries.sql`) plus the three extra hot queries of `EXTRA_CATALOG` below:

* `catalog`: queries in the catalog's own format (`-- name:` + metadata + SQL) that replace the
  queries of the same name. A missing `-- calls-per-minute:` line keeps the base query's rate.
* `schema`: extra schema items (files in `schema/`) loaded after `schema.sql`, before the seed: a
  migration. It builds another template with the same data fingerprint, so baselines stay valid.
* `migration`: DDL run on the clone after seeding: a change applied to the already-seeded database,
  with no template of its own.
* `settings`: planner settings pinned for the baseline and for the run alike (as production would).
* `statement_count`: how many times the code path now issues the query (N+1 loops, see below).
* `expect`: the right verdict per query: "block" (a hot regression), "warn" (a regression of a rare
  query: must not pass silently, must not block), "flag" (a regression whose extra DB time per
  minute sits near the budget: warn or block are both right, pass is not), "pass" (benign). Queries
  a scenario measures but does not name are expected to pass.

A catalog cannot express a loop, so the N+1 scenario is modelled the way the pytest plugin sees one
(`guard.py`): the same statement, now issued 50 times per request instead of once, i.e. its
`statement_count` rises. The pytest-benchmark side runs the loop for real.

The CPU-only slowdowns (`cpu_*`) keep the plan and the blocks touched and add per-row work to the
SELECT list; their real ratio on this machine is measured by the run (same-run A/B) and printed.
`SWEEP` is a tunable version of the same thing for the detection-threshold sweep: a column whose
cost grows with `{k}` (translate() over k characters per row); at level 1 the column is the constant
0, so the SQL differs from the baseline's at no cost (the null level: any detection there is a false
alarm). The planner's cost does not depend on k, so plan, cost and blocks stay those of the baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE_CHANGES = HERE.parents[1] / "examples" / "timetracker" / "changes"
SCHEMA_DIR = HERE / "schema"

# Hot queries the example catalog lacks but the corpus needs, in the catalog format.
EXTRA_CATALOG = """
-- name: entry_by_id
-- calls-per-minute: 3000
-- params: {"entry_id": 51234}
SELECT id, user_id, project_id, description, started_at, stopped_at, duration_s, billable
FROM time_entries
WHERE id = %(entry_id)s;

-- name: project_by_id
-- calls-per-minute: 2000
-- params: {"project_id": 1}
SELECT id, name, color, billable
FROM projects
WHERE id = %(project_id)s;

-- name: team_month_timesheet
-- calls-per-minute: 1000
-- params: {"workspace_id": 1, "month_start": "2026-05-01T00:00:00+00:00", "month_end": "2026-06-01T00:00:00+00:00"}
SELECT te.id, te.user_id, te.project_id, te.description, te.started_at, te.duration_s
FROM time_entries te
WHERE te.workspace_id = %(workspace_id)s
  AND te.started_at >= %(month_start)s
  AND te.started_at < %(month_end)s;
"""


@dataclass(frozen=True)
class Scenario:
    id: str
    kind: str  # "regression" | "benign"
    what: str  # the class of change, as the issue names it
    expect: Mapping[str, str]
    catalog: str = ""
    schema: tuple[str, ...] = ()
    migration: str = ""
    settings: Mapping[str, str] = field(default_factory=dict)
    scale: float = 0.1
    statement_count: Mapping[str, int] = field(default_factory=dict)
    whole_catalog: bool = False  # a schema change: every catalog query is measured, as CI would
    timing_only: bool = False  # same plan and blocks: only timing can see it
    note: str = ""


def recent_entries(
    where: str | None = "user_id = %(user_id)s", limit: int | None = 50, columns: str = "", source: str = "time_entries"
) -> str:
    """The example's recent_entries (the page of entries first, then their projects), with one part changed."""
    where_line = f"\n    WHERE {where}" if where else ""
    limit_line = f"\n    LIMIT {limit}" if limit else ""
    return f"""SELECT te.id, te.description, te.started_at, te.stopped_at, te.duration_s, te.billable,
       te.project_id, p.name AS project_name, p.color AS project_color{columns}
FROM (
    SELECT id, description, started_at, stopped_at, duration_s, billable, project_id
    FROM {source}{where_line}
    ORDER BY started_at DESC{limit_line}
) AS te
LEFT JOIN projects p ON p.id = te.project_id
ORDER BY te.started_at DESC;"""

# labels formatted per row in SQL: same plan and blocks, ~1.3x the CPU
CPU_1_3X_COLUMNS = """,
       to_char(te.started_at AT TIME ZONE 'Europe/Berlin', 'FMDay, FMDD FMMonth YYYY, HH24:MI') AS started_label,
       to_char(make_interval(secs => coalesce(te.duration_s, 0)), 'HH24:MI') AS duration_label"""

# more per-row formatting and hashing: same plan and blocks, ~2x the CPU
CPU_2X_COLUMNS = CPU_1_3X_COLUMNS + """,
       regexp_replace(initcap(te.description), '\\s+', ' ', 'g') AS title,
       md5(te.id::text || te.started_at::text || te.description) AS etag,
       encode(sha256(convert_to(te.description || te.id::text, 'UTF8')), 'hex') AS signature"""

# the sweep's tunable per-row work, `{column}` filled in at run time
SWEEP_COLUMN = """,
       {column} AS row_code"""

SCENARIOS: tuple[Scenario, ...] = (
    # ------------------------------------------------------------------ regressions of hot queries
    Scenario(
        "drop_running_timer_index", "regression", "index dropped (migration)",
        expect={"running_timer": "block", "stop_timer": "flag"},
        schema=("drop_running_timer_index.sql",), whole_catalog=True,
        note="running_timer falls back to the (user_id, started_at) index and reads every entry of the user",
    ),
    Scenario(
        "drop_user_started_index", "regression", "index dropped (migration)",
        expect={"recent_entries": "block", "week_totals_by_project": "block"},
        migration="DROP INDEX time_entries_user_started_idx", whole_catalog=True,
        note="the timeline and the week totals become scans of time_entries",
    ),
    Scenario(
        "text_compare_running_timer", "regression", "implicit cast + missing predicate (example bad_change.sql)",
        expect={"running_timer": "block"},
        catalog="""
-- name: running_timer
-- params: {"user_id": "1187"}
SELECT id, project_id, description, started_at, stopped_at
FROM time_entries
WHERE user_id::text = %(user_id)s
ORDER BY started_at DESC
LIMIT 1;
""",
    ),
    Scenario(
        "nonsargable_running_timer", "regression", "non-sargable predicate",
        expect={"running_timer": "block"},
        catalog="""
-- name: running_timer
-- params: {"user_id": 1187}
SELECT id, project_id, description, started_at
FROM time_entries
WHERE user_id = %(user_id)s AND coalesce(stopped_at, 'infinity') = 'infinity';
""",
        note="coalesce() hides 'stopped_at IS NULL' from the planner: the partial index no longer applies",
    ),
    Scenario(
        "function_on_column_week_totals", "regression", "function on an indexed column",
        expect={"week_totals_by_project": "block"},
        catalog="""
-- name: week_totals_by_project
-- params: {"user_id": 1187, "week": "2026-05-25T00:00:00+00:00"}
SELECT te.project_id,
       (SELECT p.name FROM projects p WHERE p.id = te.project_id) AS project_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
FROM time_entries te
WHERE te.user_id = %(user_id)s
  AND date_trunc('week', te.started_at, 'UTC') = %(week)s
  AND te.stopped_at IS NOT NULL
GROUP BY te.project_id
ORDER BY seconds DESC;
""",
        note="date_trunc() on started_at: the index narrows by user only, every entry of the user is read",
    ),
    Scenario(
        "implicit_cast_float_param", "regression", "implicit cast (parameter type)",
        expect={"entry_by_id": "block"},
        catalog="""
-- name: entry_by_id
-- params: {"entry_id": 51234.0}
SELECT id, user_id, project_id, description, started_at, stopped_at, duration_s, billable
FROM time_entries
WHERE id = %(entry_id)s;
""",
        note="same SQL; the id now arrives as a float (a JSON number), bound as float8: id::float8 = $1 is a Seq Scan",
    ),
    Scenario(
        "or_defeats_index_recent_entries", "regression", "OR defeating an index",
        expect={"recent_entries": "block"},
        catalog=f"""
-- name: recent_entries
-- params: {{"user_id": 1187, "project_id": 1}}
{recent_entries(where='user_id = %(user_id)s OR project_id = %(project_id)s')}
""",
        note="the timeline now also shows the entries of the user's pinned project: a BitmapOr of every matching entry plus a sort, instead of reading 50 index entries",
    ),
    Scenario(
        "or_running_timer", "regression", "OR defeating an index",
        expect={"running_timer": "block"},
        catalog="""
-- name: running_timer
-- params: {"user_id": 1187, "project_id": 1}
SELECT id, project_id, description, started_at
FROM time_entries
WHERE stopped_at IS NULL AND (user_id = %(user_id)s OR project_id = %(project_id)s);
""",
        note="also shows a timer running on the user's pinned project: reads every running timer (63 at scale 0.1, 630 at scale 1)",
    ),
    Scenario(
        "or_running_timer_scale1", "regression", "OR defeating an index (scale 1)",
        expect={"running_timer": "block"}, scale=1.0,
        catalog="""
-- name: running_timer
-- params: {"user_id": 1187, "project_id": 1}
SELECT id, project_id, description, started_at
FROM time_entries
WHERE stopped_at IS NULL AND (user_id = %(user_id)s OR project_id = %(project_id)s);
""",
        note="the same change at scale 1, where there are ten times as many running timers",
    ),
    Scenario(
        "correlated_subquery_active_projects", "regression", "correlated subquery",
        expect={"active_projects": "block"},
        catalog="""
-- name: active_projects
-- params: {"workspace_id": 2}
SELECT p.id, p.name, p.color, p.billable, c.name AS client_name,
       (SELECT sum(te.duration_s) FROM time_entries te WHERE te.project_id = p.id) AS tracked_seconds
FROM projects p
LEFT JOIN clients c ON c.id = p.client_id AND c.workspace_id = %(workspace_id)s
WHERE p.workspace_id = %(workspace_id)s AND NOT p.archived
ORDER BY p.name;
""",
        note="the project list shows the time tracked on each project: one aggregate over all its entries per row",
    ),
    Scenario(
        "missing_limit_recent_entries", "regression", "missing LIMIT",
        expect={"recent_entries": "block"},
        catalog=f"""
-- name: recent_entries
-- params: {{"user_id": 1187}}
{recent_entries(limit=None)}
""",
        note="pagination moved to the client: every entry of the user is fetched",
    ),
    Scenario(
        "n_plus_one_project_lookup", "regression", "N+1 loop (statement count)",
        expect={"project_by_id": "block"}, statement_count={"project_by_id": 50},
        note="the timeline renders each of its 50 entries' project with its own lookup; modelled as statement_count 1 -> 50",
    ),
    Scenario(
        "sort_spill_timesheet", "regression", "sort spilling to disk (work_mem pinned at 64kB)",
        expect={"team_month_timesheet": "block"}, settings={"work_mem": "64kB"},
        catalog="""
-- name: team_month_timesheet
-- params: {"workspace_id": 1, "month_start": "2026-05-01T00:00:00+00:00", "month_end": "2026-06-01T00:00:00+00:00"}
SELECT te.id, te.user_id, te.project_id, te.description, te.started_at, te.duration_s
FROM time_entries te
WHERE te.workspace_id = %(workspace_id)s
  AND te.started_at >= %(month_start)s
  AND te.started_at < %(month_end)s
ORDER BY te.user_id, te.started_at;
""",
        note="the timesheet is now sorted by member in SQL: the month's ~1,200 entries sort on disk; the blocks read stay the same",
    ),
    Scenario(
        "cpu_1_3x_recent_entries", "regression", "CPU-only slowdown, ~1.3x",
        expect={"recent_entries": "block"}, timing_only=True,
        catalog=f"""
-- name: recent_entries
-- params: {{"user_id": 1187}}
{recent_entries(columns=CPU_1_3X_COLUMNS)}
""",
        note="labels formatted in SQL in the user's time zone: same plan, same blocks, more CPU per row",
    ),
    Scenario(
        "cpu_2x_recent_entries", "regression", "CPU-only slowdown, ~2x",
        expect={"recent_entries": "block"}, timing_only=True,
        catalog=f"""
-- name: recent_entries
-- params: {{"user_id": 1187}}
{recent_entries(columns=CPU_2X_COLUMNS)}
""",
        note="labels, a cleaned-up title, an ETag and a signature computed per row in SQL: same plan, same blocks",
    ),
    Scenario(
        "join_instead_of_subquery_week_totals", "regression", "equivalent rewrite the planner runs worse",
        expect={"week_totals_by_project": "block"},
        catalog="""
-- name: week_totals_by_project
-- params: {"user_id": 1187, "week_start": "2026-05-25T00:00:00+00:00", "week_end": "2026-06-01T00:00:00+00:00"}
SELECT te.project_id,
       p.name AS project_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
FROM time_entries te
LEFT JOIN projects p ON p.id = te.project_id
WHERE te.user_id = %(user_id)s
  AND te.started_at >= %(week_start)s
  AND te.started_at < %(week_end)s
  AND te.stopped_at IS NOT NULL
GROUP BY te.project_id, p.name
ORDER BY seconds DESC;
""",
        note="meant as a harmless cleanup (correlated subquery -> join), but the planner now hashes a Seq Scan of "
        "projects instead of probing its primary key for the two groups: more blocks and about twice the time",
    ),
    # ------------------------------------------------------------------ regressions of rare queries
    Scenario(
        "date_trunc_monthly_report", "regression", "function on an indexed column, rare query (example rare_slower.sql)",
        expect={"monthly_workspace_report": "warn"},
        catalog="""
-- name: monthly_workspace_report
-- budget-ms: 2000
-- params: {"workspace_id": 1, "month": "2026-05-01T00:00:00+00:00"}
SELECT u.id AS user_id, u.full_name, p.id AS project_id, p.name AS project_name,
       c.name AS client_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
FROM time_entries te
JOIN users u ON u.id = te.user_id
LEFT JOIN projects p ON p.id = te.project_id
LEFT JOIN clients c ON c.id = p.client_id
WHERE te.workspace_id = %(workspace_id)s
  AND date_trunc('month', te.started_at, 'UTC') = %(month)s
  AND te.stopped_at IS NOT NULL
GROUP BY u.id, p.id, c.name
ORDER BY u.full_name, seconds DESC;
""",
    ),
    Scenario(
        "lower_email_login", "regression", "function on an indexed column, 300 calls/min",
        expect={"user_by_email": "warn"},
        catalog="""
-- name: user_by_email
-- params: {"email": "Freya.Becker1187@example.net"}
SELECT id, workspace_id, full_name, timezone, deactivated
FROM users
WHERE lower(email) = lower(%(email)s);
""",
        note="case-insensitive login: a Seq Scan of users; below the hot threshold, so it warns",
    ),
    Scenario(
        "drop_email_unique", "regression", "index dropped (migration), 300 calls/min",
        expect={"user_by_email": "warn"}, schema=("drop_email_unique.sql",), whole_catalog=True,
    ),
    # ------------------------------------------------------------------ benign changes
    Scenario(
        "reformat_recent_entries", "benign", "reformatting, alias renames, comment (example benign_rewrite.sql)",
        expect={"recent_entries": "pass"},
        catalog=(EXAMPLE_CHANGES / "benign_rewrite.sql").read_text(encoding="utf-8"),
    ),
    Scenario(
        "alias_rename_active_projects", "benign", "alias renames",
        expect={"active_projects": "pass"},
        catalog="""
-- name: active_projects
-- params: {"workspace_id": 2}
SELECT project.id, project.name, project.color, project.billable, client.name AS client_name
FROM projects AS project
LEFT JOIN clients AS client ON client.id = project.client_id AND client.workspace_id = %(workspace_id)s
WHERE project.workspace_id = %(workspace_id)s AND NOT project.archived
ORDER BY project.name;
""",
    ),
    Scenario(
        "literal_change_tag_autocomplete", "benign", "literal change",
        expect={"tag_autocomplete": "pass"},
        catalog="""
-- name: tag_autocomplete
-- params: {"workspace_id": 1, "prefix": "tr%"}
SELECT id, name
FROM tags
WHERE workspace_id = %(workspace_id)s AND name LIKE %(prefix)s
ORDER BY name
LIMIT 25;
""",
        note="LIMIT 10 -> 25: fewer tags than that match",
    ),
    Scenario(
        "literal_change_week_totals", "benign", "literal change",
        expect={"week_totals_by_project": "pass"},
        catalog="""
-- name: week_totals_by_project
-- params: {"user_id": 1187, "week_start": "2026-05-25T00:00:00+00:00", "week_end": "2026-06-01T00:00:00+00:00"}
SELECT te.project_id,
       (SELECT p.name FROM projects p WHERE p.id = te.project_id) AS project_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0::bigint) AS billable_seconds,
       'v2' AS report_version
FROM time_entries te
WHERE te.user_id = %(user_id)s
  AND te.started_at >= %(week_start)s
  AND te.started_at < %(week_end)s
  AND te.stopped_at IS NOT NULL
GROUP BY te.project_id
ORDER BY seconds DESC;
""",
    ),
    Scenario(
        "comments_user_by_email", "benign", "added comments",
        expect={"user_by_email": "pass"},
        catalog="""
-- name: user_by_email
-- params: {"email": "freya.becker1187@example.net"}
/* login: look the account up by its address (unique) */
SELECT id, workspace_id, full_name, timezone, deactivated  -- no password hash here
FROM users
WHERE email = %(email)s;  -- served by users_email_key
""",
    ),
    Scenario(
        "reordered_predicates_running_timer", "benign", "reordered predicates",
        expect={"running_timer": "pass"},
        catalog="""
-- name: running_timer
-- params: {"user_id": 1187}
SELECT id, project_id, description, started_at
FROM time_entries
WHERE stopped_at IS NULL AND user_id = %(user_id)s;
""",
    ),
    Scenario(
        "reordered_predicates_week_totals", "benign", "reordered predicates",
        expect={"week_totals_by_project": "pass"},
        catalog="""
-- name: week_totals_by_project
-- params: {"user_id": 1187, "week_start": "2026-05-25T00:00:00+00:00", "week_end": "2026-06-01T00:00:00+00:00"}
SELECT te.project_id,
       (SELECT p.name FROM projects p WHERE p.id = te.project_id) AS project_name,
       count(*) AS entries,
       sum(te.duration_s) AS seconds,
       coalesce(sum(te.duration_s) FILTER (WHERE te.billable), 0) AS billable_seconds
FROM time_entries te
WHERE te.stopped_at IS NOT NULL
  AND te.started_at < %(week_end)s
  AND te.started_at >= %(week_start)s
  AND te.user_id = %(user_id)s
GROUP BY te.project_id
ORDER BY seconds DESC;
""",
    ),
    Scenario(
        "in_list_running_timer", "benign", "equivalent rewrite (IN list of one)",
        expect={"running_timer": "pass"},
        catalog="""
-- name: running_timer
-- params: {"user_id": 1187}
SELECT id, project_id, description, started_at
FROM time_entries
WHERE user_id IN (%(user_id)s) AND stopped_at IS NULL;
""",
    ),
    Scenario(
        "ordinal_order_by_active_projects", "benign", "equivalent rewrite (ORDER BY position)",
        expect={"active_projects": "pass"},
        catalog="""
-- name: active_projects
-- params: {"workspace_id": 2}
SELECT p.id, p.name, p.color, p.billable, c.name AS client_name
FROM projects p
LEFT JOIN clients c ON c.id = p.client_id AND c.workspace_id = %(workspace_id)s
WHERE p.workspace_id = %(workspace_id)s AND NOT p.archived
ORDER BY 2;
""",
    ),
    Scenario(
        "cte_recent_entries", "benign", "equivalent rewrite (inlined CTE)",
        expect={"recent_entries": "pass"},
        catalog=f"""
-- name: recent_entries
-- params: {{"user_id": 1187}}
WITH mine AS (
    SELECT * FROM time_entries WHERE user_id = %(user_id)s
)
{recent_entries(where=None, source='mine')}
""",
    ),
    Scenario(
        "param_cast_recent_entries", "benign", "equivalent rewrite (cast on the parameter side)",
        expect={"recent_entries": "pass"},
        catalog=f"""
-- name: recent_entries
-- params: {{"user_id": "1187"}}
{recent_entries(where='user_id = %(user_id)s::integer')}
""",
        note="contrast with text_compare_running_timer: casting the parameter keeps the index",
    ),
    Scenario(
        "boolean_rewrite_active_projects", "benign", "equivalent rewrite (boolean test)",
        expect={"active_projects": "pass"},
        catalog="""
-- name: active_projects
-- params: {"workspace_id": 2}
SELECT p.id, p.name, p.color, p.billable, c.name AS client_name
FROM projects p
LEFT JOIN clients c ON c.id = p.client_id AND c.workspace_id = %(workspace_id)s
WHERE p.workspace_id = %(workspace_id)s AND p.archived IS NOT TRUE
ORDER BY p.name;
""",
    ),
    Scenario(
        "limit_one_user_by_email", "benign", "equivalent rewrite (LIMIT 1 on a unique key)",
        expect={"user_by_email": "pass"},
        catalog="""
-- name: user_by_email
-- params: {"email": "freya.becker1187@example.net"}
SELECT id, workspace_id, full_name, timezone, deactivated
FROM users
WHERE email = %(email)s
LIMIT 1;
""",
    ),
    Scenario(
        "add_invoice_column", "benign", "unrelated migration (new column + partial index)",
        expect={}, schema=("add_invoice_column.sql",), whole_catalog=True,
    ),
)


@dataclass(frozen=True)
class Sweep:
    """CPU-only slowdowns of a hot query at chosen ratios: `{column}` in `catalog` is `knob` with `{k}`
    tuned per level at run time, or `null` at level 1 (SQL changed, cost unchanged)."""

    query: str
    levels: tuple[float, ...]
    catalog: str
    knob: str
    null: str


SWEEP = Sweep(
    query="recent_entries",
    levels=(1.0, 1.1, 1.2, 1.3, 1.5, 2.0),
    catalog=f"""
-- name: recent_entries
-- params: {{"user_id": 1187}}
{recent_entries(columns=SWEEP_COLUMN)}
""",
    knob="length(translate(repeat(left(te.id::text, 1), {k}), '0123456789', 'abcdefghij'))",
    null="0",
)
