"""Results files: one run's verdicts written down, so reports can be rendered and shards merged later.

`querywarden check --json results.json` writes one; `querywarden report --from results.json` reads any
number of them. Unlike baseline files these are build artefacts, so they keep the raw timing samples of
this run (the HTML report draws their distribution) and carry both sides of every comparison.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..baseline import observation_from_dict, observation_to_dict
from ..errors import ResultsError
from ..observation import Observation
from ..query import SourceLocation
from ..verdict import QueryResult, RunResult, Verdict

FORMAT_VERSION = 1
_REGENERATE = "re-run `querywarden check --json FILE` to write it again"


def _source_to_dict(source: SourceLocation | None) -> dict[str, Any] | None:
    if source is None:
        return None
    return {"line": source.line, "path": source.path}


def _source_from_dict(data: Any) -> SourceLocation | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError("source must be an object or null")
    return SourceLocation(path=str(data["path"]), line=int(data["line"]))


def _observation_from(data: Any) -> Observation | None:
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError("an observation must be an object or null")
    return observation_from_dict(data)


def query_to_dict(result: QueryResult) -> dict[str, Any]:
    """The JSON form of one query's verdict, with the baseline (`before`) and this run (`after`)."""
    return {
        "after": None if result.after is None else observation_to_dict(result.after, include_samples=True),
        "basis": result.basis,
        "before": None if result.before is None else observation_to_dict(result.before),
        "blocking": result.blocking,
        "calls_per_minute": result.calls_per_minute,
        "extra_ms_per_minute": result.extra_ms_per_minute,
        "name": result.name,
        "reasons": list(result.reasons),
        "source": _source_to_dict(result.source),
        "verdict": result.verdict.value,
    }


def query_from_dict(data: Mapping[str, Any]) -> QueryResult:
    """Inverse of `query_to_dict`; raises KeyError/TypeError/ValueError on malformed input."""
    blocking = data["blocking"]
    if not isinstance(blocking, bool):
        raise TypeError("blocking must be true or false")
    reasons = data["reasons"]
    if not isinstance(reasons, list):
        raise TypeError("reasons must be a list")
    extra = data.get("extra_ms_per_minute")
    return QueryResult(
        name=str(data["name"]),
        verdict=Verdict(data["verdict"]),
        blocking=blocking,
        reasons=tuple(str(reason) for reason in reasons),
        calls_per_minute=float(data["calls_per_minute"]),
        before=_observation_from(data.get("before")),
        after=_observation_from(data.get("after")),
        source=_source_from_dict(data.get("source")),
        extra_ms_per_minute=None if extra is None else float(extra),
        basis=str(data.get("basis") or ""),
    )


def run_to_dict(run: RunResult) -> dict[str, Any]:
    """The whole run as a JSON-ready dict: format version, verdict, summary and every query."""
    return {
        "format": FORMAT_VERSION,
        "queries": [query_to_dict(result) for result in run.queries],
        "summary": {
            "blocking": sum(1 for result in run.queries if result.blocking),
            "counts": run.counts(),
            "extra_ms_per_minute": run.extra_ms_per_minute,
            "load_cores": {"after": run.load_cores[1], "before": run.load_cores[0]},  # derived: not read back
            "total": len(run.queries),
        },
        "verdict": run.verdict,
    }


def run_from_dict(data: Any, origin: str = "results") -> RunResult:
    """Rebuild a run from `run_to_dict` output; any defect is a ResultsError naming `origin` and the fix.

    The verdict is recomputed from the queries' `blocking` flags; a stored verdict that disagrees with
    them means the file was edited by hand, and is refused rather than trusted either way.
    """
    if not isinstance(data, Mapping) or "format" not in data:
        raise ResultsError(f"{origin}: not a querywarden results file (no 'format' key); {_REGENERATE}")
    if data["format"] != FORMAT_VERSION:
        raise ResultsError(
            f"{origin}: results format {data['format']!r} is not the supported format {FORMAT_VERSION}; "
            "render it with the querywarden version that wrote it, or re-run `querywarden check --json FILE`"
        )
    queries = data.get("queries")
    if not isinstance(queries, list):
        raise ResultsError(f"{origin}: malformed results ('queries' is not a list); {_REGENERATE}")
    parsed = []
    for index, item in enumerate(queries):
        try:
            if not isinstance(item, Mapping):
                raise TypeError("entry is not an object")
            parsed.append(query_from_dict(item))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ResultsError(
                f"{origin}: malformed query #{index + 1} ({type(exc).__name__}: {exc}); {_REGENERATE}"
            ) from None
    run = RunResult(queries=tuple(parsed))
    stored = data.get("verdict")
    if stored is not None and stored != run.verdict:
        raise ResultsError(
            f"{origin}: says verdict {stored!r} but its queries give {run.verdict!r} (edited by hand?); "
            f"{_REGENERATE}"
        )
    return run


def dumps(run: RunResult) -> str:
    """The exact text of a results file: sorted keys, two-space indent, trailing newline."""
    return json.dumps(run_to_dict(run), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_atomically(path: str | os.PathLike[str], text: str, what: str) -> None:
    """Write a file whole or not at all: a reader never sees half of it, a full disk leaves nothing.

    Parent folders are created; the file gets the mode a plain write would give it (umask applied).
    """
    target = Path(path)
    flag = "--json" if what == "the results" else "it"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise ResultsError(f"{target}: cannot be written ({exc}); choose a writable path for {flag}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.chmod(temp_name, _plain_mode(target))
        os.replace(temp_name, target)
    except OSError as exc:
        Path(temp_name).unlink(missing_ok=True)
        raise ResultsError(f"{target}: {what} cannot be written ({exc}); choose a writable path for {flag}") from None
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def _plain_mode(target: Path) -> int:
    """The mode of the file being replaced, else what open() would create under the current umask."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_results(run: RunResult, path: str | os.PathLike[str]) -> None:
    """Write a results file atomically; parent folders are created."""
    write_atomically(path, dumps(run), "the results")


def read_results(path: str | os.PathLike[str]) -> RunResult:
    """Read a results file; a missing, unreadable or malformed file raises ResultsError saying how to fix it."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError(
            f"{source}: no such results file; run `querywarden check --json {source}` first, or fix the path"
        ) from None
    except IsADirectoryError:
        raise ResultsError(f"{source}: is a directory, not a results file; pass the JSON file itself") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{source}: cannot be read ({exc}); check the path and its permissions") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(
            f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}); the file may be truncated, {_REGENERATE}"
        ) from None
    return run_from_dict(data, str(source))
