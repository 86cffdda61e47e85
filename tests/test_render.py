"""Report formats: content of each, escaping of a hostile catalog, and the Markdown size bound."""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser

import pytest
from markdown_it import MarkdownIt
from report_samples import HOSTILE_NAME, hostile_result, index_plan, many_run, observation, sample_run, seq_plan

from querywarden.reports.render import (
    COMMENT_MARKER,
    HTML_CSP,
    MAX_MARKDOWN_CHARS,
    format_ratio,
    md_text,
    plan_diff,
    render_report,
    render_markdown,
)
from querywarden.query import SourceLocation
from querywarden.reports.results import run_to_dict
from querywarden.verdict import QueryResult, RunResult, Verdict


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of each <textarea>/<td> in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.textareas: list[str] = []
        self.rows: list[list[str]] = []
        self._stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "textarea":
            self.textareas.append("")
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th") and self.rows:
            self.rows[-1].append("")
        self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if "textarea" in self._stack:
            self.textareas[-1] += data
        if ("td" in self._stack or "th" in self._stack) and self.rows and self.rows[-1]:
            self.rows[-1][-1] += data

    def names(self) -> list[str]:
        return [tag for tag, _ in self.tags]


def parse_html(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser


def github_like(markdown: str) -> str:
    """Markdown to HTML the way GitHub parses it (CommonMark, tables, raw HTML passed through)."""
    return str(MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough").render(markdown))


def hostile_run() -> RunResult:
    return RunResult(sample_run().queries + (hostile_result(),))


# --------------------------------------------------------------------------------------------------
# Markdown


def test_markdown_headline_when_blocked() -> None:
    text = render_report(sample_run(), "md")
    lines = text.splitlines()
    assert lines[0] == COMMENT_MARKER
    assert lines[1] == "## ❌ querywarden: merge blocked: 1 of 6 queries blocks"
    assert lines[3].startswith(
        "Estimated extra database time: +4,562 ms per minute (regressed and new queries at their declared call rates). "
        "Projected load of the guarded queries at their call rates: "
    )
    assert lines[5] == "1 fail · 1 missing · 1 warn · 1 new · 1 improved · 1 pass"


def test_markdown_headline_when_passing() -> None:
    passed = sample_run().queries[0]
    text = render_report(RunResult((passed,)), "md")
    assert text.splitlines()[1] == "## ✅ querywarden: passed: 1 query guarded, none blocks the merge"
    assert "Estimated extra database time: none." in text
    assert "The guarded query matches its baseline." in text
    assert "| Verdict |" not in text


def test_markdown_headline_of_an_empty_run() -> None:
    text = render_report(RunResult(()), "md")
    assert text.splitlines()[1] == "## ⚠️ querywarden: nothing was guarded"


def test_markdown_table_rows_in_urgency_order() -> None:
    text = render_report(sample_run(), "md")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[0] == "| Verdict | Query | Calls/min | Median time | Buffers | Cost | Why |"
    assert rows[1] == (
        "| ❌ **fail** (blocking) | <code>user&#95;total&#95;minutes</code> | 120 | 0.41 ms → 38.2 ms (×93) "
        "| 4 → 16,396 (×4,099) | 8.46 → 18,335 (×2,167) | plan changed: time&#95;entries read by Seq Scan instead "
        "of Index Scan using ix&#95;time&#95;entries&#95;user<br>buffers 4 → 16,396 (×4,099) |"
    )
    assert [row.split(" | ")[0] for row in rows[2:]] == [
        "| ❓ **missing**",
        "| ⚠️ **warn**",
        "| 🆕 **new**",
        "| ✅ **improved**",
    ]
    assert rows[4].startswith("| 🆕 **new** | <code>invoice&#95;lines</code> | 30 | — → 0.30 ms | — → 7 | — → 8.46 |")
    assert "÷4,099" in rows[5]  # improved buffers shown as a division, not ×0.00
    assert "user&#95;by&#95;email" not in text  # the passing query has no row
    assert "1 more query passed unchanged." in text


def test_markdown_details_hold_sql_and_plan_diffs() -> None:
    text = render_report(hostile_run(), "md")
    html = github_like(text)
    assert html.count("<details>") == html.count("</details>") == 6
    assert (
        "```diff\n"
        "  Aggregate (Plain)  (cost 8.46 → 18,335, buffers 4 → 16,396)\n"
        "-   Index Scan using ix_time_entries_user on time_entries  (cost 8.44, 4 buffers)\n"
        "+   Seq Scan on time_entries  (cost 18,334, 16,396 buffers)\n"
        "```"
    ) in text
    assert "! Sort  (cost 2,310 → 2,310, buffers 410 → 1,030, sort spilled to disk (external merge, 1,240 kB))" in text
    assert "SQL (this run):\n\n```sql\nSELECT sum(minutes) FROM time_entries WHERE user_id = $1\n```" in text
    assert "-SELECT 1 /* old */\n+SELECT 1 /* <script>" in text


def test_markdown_sql_diff_is_a_unified_diff_of_normalized_sql() -> None:
    before = observation("q", index_plan(), 1.0, sql="SELECT a\nFROM t\nWHERE id = %s")
    after = observation("q", index_plan(), 1.0, sql="SELECT a, b\nFROM t\nWHERE id = %s")
    result = QueryResult("q", Verdict.WARN, False, ("sql changed",), 5.0, before=before, after=after)
    text = render_report(RunResult((result,)), "md")
    assert "```diff\n--- baseline\n+++ this run\n@@ -1,3 +1,3 @@\n-SELECT a\n+SELECT a, b\n FROM t\n WHERE id = $1\n```" in text


def test_markdown_hostile_catalog_cannot_break_out() -> None:
    text = render_report(hostile_run(), "md")
    html = github_like(text)
    parsed = parse_html(html)
    # No element came from the catalog: no script, no image, no link.
    assert not {"script", "img", "a", "iframe"} & set(parsed.names())
    # Every table row still has exactly seven cells, and the hostile name sits whole in its cell.
    table_rows = [row for row in parsed.rows if row]
    assert table_rows and all(len(row) == 7 for row in table_rows)
    hostile_row = next(row for row in table_rows if "evil" in row[1])
    assert hostile_row[1] == HOSTILE_NAME
    assert hostile_row[6] == "reason with | pipe, `tick`, <b>bold</b>, 100% and a newline, key: value"
    # The SQL's own ``` and </details> stay inside a longer fence.
    assert "````diff\n--- baseline" in text
    assert "<pre><code class=\"language-diff\">--- baseline" in html
    assert "+&lt;/details&gt;\n</code></pre>" in html
    # No @mention, no raw pipe or backtick outside code blocks.
    outside = re.sub(r"(`{3,})[a-z]*\n.*?\n\1(?=\n)", "", text, flags=re.S)
    assert "@team" not in outside and "<script" not in outside and "<img" not in outside
    assert "`" not in outside


def test_md_text_escapes_every_active_character() -> None:
    assert md_text("a|b`c<d>e&f*g_h[i]j~k@l#m$n!o\\p\nq") == (
        "a&#124;b&#96;c&lt;d&gt;e&amp;f&#42;g&#95;h&#91;i&#93;j&#126;k&#64;l&#35;m&#36;n&#33;o&#92;p q"
    )
    assert md_text("x" * 50, limit=10) == "x" * 9 + "…"


def test_markdown_is_bounded_with_500_queries() -> None:
    run = many_run(500)
    text = render_report(run, "md")
    assert len(text) <= MAX_MARKDOWN_CHARS
    assert text.splitlines()[1] == "## ❌ querywarden: merge blocked: 500 of 500 queries block"
    kept_rows = [line for line in text.splitlines() if line.startswith("| ❌")]
    assert 100 < len(kept_rows) < 500
    assert f"_{500 - len(kept_rows)} more non-passing queries were cut from this table to keep it under 65,000 characters" in text
    assert "<details>" not in text  # details are the first thing cut
    # The most urgent (most extra time) are the ones kept.
    assert "query&#95;0499" in kept_rows[0]
    html = github_like(text)
    assert all(len(row) == 7 for row in parse_html(html).rows if row)


def test_markdown_cuts_details_before_rows() -> None:
    run = many_run(100)
    assert len(render_markdown(run, limit=10**9)) > MAX_MARKDOWN_CHARS
    text = render_report(run, "md")
    assert len(text) <= MAX_MARKDOWN_CHARS
    assert len([line for line in text.splitlines() if line.startswith("| ❌")]) == 100
    shown = text.count("<details>")
    assert 0 < shown < 100
    assert f"_SQL and plan details of {100 - shown} of 100 queries were cut to keep this report under 65,000 characters" in text
    html = github_like(text)
    assert html.count("<details>") == html.count("</details>") == shown


def test_markdown_caps_one_enormous_query() -> None:
    huge_sql = "\n".join(f"SELECT {i}" for i in range(5_000))
    before = observation("huge", index_plan(), 1.0, sql="SELECT 0")
    after = observation("huge", seq_plan(), 9.0, sql=huge_sql)
    result = QueryResult("huge", Verdict.FAIL, True, ("slower",), 1.0, before=before, after=after)
    text = render_markdown(RunResult((result,)))
    assert len(text) < 20_000
    assert "more lines of the SQL diff cut" in text


def test_markdown_limit_is_respected_for_any_limit() -> None:
    for limit in (2_000, 10_000, 30_000):
        assert len(render_markdown(many_run(40), limit=limit)) <= limit


# --------------------------------------------------------------------------------------------------
# HTML


def test_html_is_self_contained_with_a_strict_csp() -> None:
    text = render_report(hostile_run(), "html")
    parsed = parse_html(text)
    metas = [attrs for tag, attrs in parsed.tags if tag == "meta"]
    assert {"http-equiv": "Content-Security-Policy", "content": HTML_CSP} in metas
    assert HTML_CSP == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    names = parsed.names()
    assert "script" not in names and "img" not in names and "link" not in names and "iframe" not in names
    assert "<script" not in text.lower()
    for tag, attrs in parsed.tags:
        for key, value in attrs.items():
            if key in ("src", "href", "action", "srcset", "xlink:href", "poster", "data"):
                assert value is not None and not re.match(r"\s*(https?:)?//", value), (tag, key, value)
            assert "url(" not in (value or "")
    assert "url(" not in text
    # The only http:// in the file are inside escaped catalog text.
    for match in re.finditer(r"https?://", text):
        start = text.rfind("<", 0, match.start())
        assert text.rfind(">", 0, match.start()) > start, "a URL inside a tag"


def test_html_escapes_hostile_text() -> None:
    text = render_report(hostile_run(), "html")
    assert "evil|name`&lt;script&gt;alert(1)&lt;/script&gt;@team" in text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in text
    assert "&lt;img src=http://127.0.0.1:9/x.png&gt;" in text
    assert "t&lt;script&gt;alert(2)&lt;/script&gt;|x" in text


def test_html_headline_summary_and_title() -> None:
    text = render_report(sample_run(), "html")
    assert "<title>querywarden report: merge blocked: 1 of 6 queries blocks</title>" in text
    assert "Estimated extra database time: +4,562 ms per minute" in text
    parsed = parse_html(text)
    overview = [row for row in parsed.rows if len(row) == 6]
    assert [row[1] for row in overview[1:]] == [
        "user_total_minutes",
        "legacy_export",
        "project_timeline",
        "invoice_lines",
        "team_report",
        "user_by_email",
    ]
    assert overview[1][3] == "0.41 ms → 38.2 ms"
    assert overview[1][4] == "4 → 16,396"
    assert '<li class="v-fail">1 fail</li>' in text


def _card(text: str, name: str) -> str:
    cards: list[str] = [c for c in re.findall(r"<article .*?</article>", text, re.S) if f'<code class="name">{name}</code>' in c]
    assert len(cards) == 1, name
    return cards[0]


def test_html_plan_trees_side_by_side_with_changes_marked() -> None:
    card = _card(render_report(sample_run(), "html"), "user_total_minutes")
    removed = re.findall(r'<li class="node removed"[^>]*>.*?<span class="label">(.*?)</span>', card, re.S)
    added = re.findall(r'<li class="node added"[^>]*>.*?<span class="label">(.*?)</span>', card, re.S)
    same = re.findall(r'<li class="node same"[^>]*>.*?<span class="label">(.*?)</span>', card, re.S)
    assert removed == ["Index Scan using ix_time_entries_user on time_entries"]
    assert added == ["Seq Scan on time_entries"]
    assert same == ["Aggregate (Plain)", "Aggregate (Plain)"]
    assert "16,396 buffers" in card
    assert "Filter: <code>(user_id = 42)</code>" in card


def test_html_marks_a_new_spill_as_changed() -> None:
    card = _card(render_report(sample_run(), "html"), "project_timeline")
    assert card.count('<li class="node changed"') == 2
    assert '<span class="spill">sort spilled to disk (external merge, 1,240 kB)</span>' in card


def test_html_timing_histogram_marks_the_baseline() -> None:
    text = render_report(sample_run(), "html")
    card = _card(text, "user_total_minutes")
    assert card.count("<svg ") == 1
    assert sum(int(n) for n in re.findall(r"<title>(\d+) samples? between", card)) == 20
    assert 'class="baseline"' in card and "baseline median 0.41 ms" in card
    assert "median of this run 38.2 ms" in card
    new_card = _card(text, "invoice_lines")
    assert "<svg " in new_card and 'class="baseline"' not in new_card
    missing_card = _card(text, "legacy_export")
    assert "<svg " not in missing_card
    assert "not measured in this run" in missing_card


def test_html_plan_json_is_explain_format() -> None:
    card = _card(render_report(sample_run(), "html"), "user_total_minutes")
    parsed = parse_html(card)
    before, after = (json.loads(unescape(area)) for area in parsed.textareas)
    assert before[0]["Plan"]["Plans"][0]["Node Type"] == "Index Scan"
    assert before[0]["Plan"]["Plans"][0]["Index Name"] == "ix_time_entries_user"
    seq = after[0]["Plan"]["Plans"][0]
    assert seq == {
        "Node Type": "Seq Scan",
        "Relation Name": "time_entries",
        "Parent Relationship": "Outer",
        "Total Cost": 18_334.5,
        "Plan Rows": 1,
        "Actual Rows": 3,
        "Actual Loops": 1,
        "Shared Hit Blocks": 16_396,
        "Temp Read Blocks": 0,
        "Temp Written Blocks": 0,
        "Local Hit Blocks": 0,
        "Filter": "(user_id = 42)",
    }
    assert after[0]["Execution Time"] == pytest.approx(38.2, rel=0.01)


def test_html_pass_cards_are_collapsed() -> None:
    text = render_report(sample_run(), "html")
    assert '<details class="passed">\n<summary>1 passing query</summary>' in text


# --------------------------------------------------------------------------------------------------
# JSON and GitHub annotations


def test_json_format_is_the_results_document() -> None:
    run = hostile_run()
    text = render_report(run, "json")
    assert json.loads(text) == json.loads(json.dumps(run_to_dict(run)))
    assert text.endswith("\n")


def test_github_annotations_exact_lines() -> None:
    assert render_report(sample_run(), "github").splitlines() == [
        "::error file=queries/hot.sql,line=12,title=querywarden%3A user_total_minutes fail (blocking)::"
        "plan changed: time_entries read by Seq Scan instead of Index Scan using ix_time_entries_user%0A"
        "buffers 4 → 16,396 (×4,099)%0A"
        "median 0.41 ms → 38.2 ms, buffers 4 → 16,396, cost 8.46 → 18,335%0A"
        "about +4,535 ms of database time per minute at 120 calls/min",
        "::warning file=tests/test_reports.py,line=88,title=querywarden%3A project_timeline warn::"
        "sort spilled to disk%0A"
        "median 21.0 ms → 25.5 ms, buffers 410 → 1,030, cost 2,310 → 2,310%0A"
        "about +27.0 ms of database time per minute at 6 calls/min",
    ]


def test_github_annotations_escape_properties_and_data() -> None:
    text = render_report(RunResult((hostile_result(),)), "github")
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.startswith(
        "::error file=queries/evil%2Cfile%3Aname.sql,line=7,"
        "title=querywarden%3A evil|name`<script>alert(1)</script>@team fail (blocking)::"
        "reason with | pipe, `tick`, <b>bold</b>, 100%25 and a%0Anewline, key: value%0A"
    )


def test_github_annotation_without_source_and_non_blocking_fail() -> None:
    result = QueryResult("q", Verdict.FAIL, False, ("slower\r\n",), 1.0)
    assert render_report(RunResult((result,)), "github") == "::warning title=querywarden%3A q fail::slower%0D%0A\n"


def test_github_annotation_paths_are_made_relative_to_the_workspace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WORKSPACE", "/home/runner/work/app")
    result = QueryResult("q", Verdict.FAIL, True, ("x",), 1.0, source=SourceLocation("/home/runner/work/app/q.sql", 3))
    assert render_report(RunResult((result,)), "github").startswith("::error file=q.sql,line=3,")


def test_github_output_is_empty_when_nothing_to_say() -> None:
    assert render_report(RunResult((sample_run().queries[0],)), "github") == ""


# --------------------------------------------------------------------------------------------------
# Helpers


def test_format_ratio() -> None:
    assert format_ratio(0.41, 38.2) == "×93"
    assert format_ratio(21.0, 25.5) == "×1.21"
    assert format_ratio(16_396, 4) == "÷4,099"
    assert format_ratio(0, 5) == ""


def test_plan_diff_of_identical_plans_marks_nothing() -> None:
    left, right = plan_diff(seq_plan(), seq_plan())
    assert [line.change for line in left + right] == ["same"] * 4


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown report format 'pdf'"):
        render_report(sample_run(), "pdf")  # type: ignore[arg-type]
