"""The baseline store: one human-diffable JSON file per guarded query.

Files have sorted keys, a format version and no volatile fields (no timestamps, hostnames or raw
timing samples), so `git diff` of a refresh reads as a review of what changed. Timing is rounded and
kept only as a summary; an update that would not change the verdict leaves the file untouched.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import BaselineError
from .observation import Observation, Timing
from .plan import PlanNode

FORMAT_VERSION = 1
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def _round(value: float, digits: int = 3) -> float:
    """Round to `digits` significant figures, so noise below that never churns a file."""
    if value == 0:
        return 0.0
    return float(f"{value:.{digits}g}")


def timing_to_dict(timing: Timing) -> dict[str, Any]:
    return {
        "count": timing.count,
        "median_ms": _round(timing.median_ms),
        "min_ms": _round(timing.min_ms),
        "p90_ms": _round(timing.p90_ms),
        "probe_ms": None if timing.probe_ms is None else _round(timing.probe_ms),
    }


def timing_from_dict(data: Mapping[str, Any]) -> Timing:
    probe = data.get("probe_ms")
    return Timing(
        median_ms=float(data["median_ms"]),
        min_ms=float(data["min_ms"]),
        p90_ms=float(data["p90_ms"]),
        count=int(data["count"]),
        probe_ms=None if probe is None else float(probe),
    )


def observation_to_dict(observation: Observation, *, include_samples: bool = False) -> dict[str, Any]:
    """The JSON form of an observation, shared by baseline files and results files."""
    timing = timing_to_dict(observation.timing)
    if include_samples:
        timing["samples_ms"] = [round(sample, 4) for sample in observation.timing.samples_ms]
    return {
        "budget_ms": observation.budget_ms,
        "calls_per_minute": observation.calls_per_minute,
        "environment": dict(sorted(observation.environment.items())),
        "fingerprint": observation.fingerprint,
        "name": observation.name,
        "normalized_sql": observation.normalized_sql,
        "plan": observation.plan.to_dict(),
        "signature": list(observation.signature),
        "sql": observation.sql,
        "statement_count": observation.statement_count,
        "timing": timing,
    }


def observation_from_dict(data: Mapping[str, Any]) -> Observation:
    """Inverse of `observation_to_dict`; raises KeyError/TypeError/ValueError on malformed input."""
    timing = timing_from_dict(data["timing"])
    samples = data["timing"].get("samples_ms")
    if samples is not None:
        timing = replace(timing, samples_ms=tuple(float(s) for s in samples))
    environment = data["environment"]
    if not isinstance(environment, dict):
        raise TypeError("environment must be an object")
    budget = data.get("budget_ms")
    return _checked(Observation(
        name=str(data["name"]),
        sql=str(data["sql"]),
        normalized_sql=str(data["normalized_sql"]),
        fingerprint=str(data["fingerprint"]),
        calls_per_minute=float(data["calls_per_minute"]),
        plan=PlanNode.from_dict(data["plan"]),
        timing=timing,
        environment={str(k): str(v) for k, v in environment.items()},
        budget_ms=None if budget is None else float(budget),
        statement_count=int(data.get("statement_count", 1)),
    ))


def _measure(value: float, what: str) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{what} must be a finite number >= 0, not {value!r}")


def _checked(observation: Observation) -> Observation:
    """Refuse values no measurement produces (negative or non-finite numbers, non-text plan labels).

    They can only come from a hand edit, and comparing with them would fail later without naming the file.
    """
    timing = observation.timing
    for what, value in (("timing.median_ms", timing.median_ms), ("timing.min_ms", timing.min_ms),
                        ("timing.p90_ms", timing.p90_ms), ("timing.count", timing.count),
                        ("calls_per_minute", observation.calls_per_minute),
                        ("statement_count", observation.statement_count)):
        _measure(value, what)
    for sample in timing.samples_ms:
        _measure(sample, "timing.samples_ms")
    if timing.probe_ms is not None and not (math.isfinite(timing.probe_ms) and timing.probe_ms > 0):
        raise ValueError(f"timing.probe_ms must be a positive number or null, not {timing.probe_ms!r}")
    if observation.budget_ms is not None:
        _measure(observation.budget_ms, "budget_ms")
    for _, node in observation.plan.walk():
        for what in ("total_cost", "plan_rows", "actual_rows", "actual_loops"):
            _measure(getattr(node, what), f"plan {what}")
        for what, blocks in node.buffers.to_dict().items():
            _measure(blocks, f"plan buffers.{what}")
        for what in ("relation", "index", "join_type", "strategy", "parent_relationship", "spill"):
            if not isinstance(getattr(node, what), (str, type(None))):
                raise TypeError(f"plan {what} must be a string or absent, not {getattr(node, what)!r}")
    return observation


def baseline_text(observation: Observation) -> str:
    """The exact text of a baseline file: stable key order, two-space indent, trailing newline."""
    document = {"format": FORMAT_VERSION, "query": observation_to_dict(observation)}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text} is out of range")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a baseline can hold")


def _loads(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and out-of-range numbers, which no measurement produces."""
    return json.loads(text, parse_float=_finite, parse_constant=_no_constant)


# What reading a malformed (hand-edited, truncated, fuzzed) document can raise; all become BaselineErrors.
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, OverflowError, RecursionError)


_QUERY_HINT = "`querywarden update`"
_TEST_HINT = "with --querywarden-update"


def _document(text: str, origin: str, what: str, hint: str) -> Any:
    """The JSON document of a baseline file of either kind; any defect is a BaselineError naming `origin`."""
    if "<<<<<<<" in text or ">>>>>>>" in text:
        raise BaselineError(f"{origin}: contains git merge-conflict markers; resolve the conflict or re-run {hint}")
    try:
        return _loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno}); restore it from git or re-run {hint}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise BaselineError(
            f"{origin}: not a usable {what} ({type(exc).__name__}: {exc}); restore it from git or re-run {hint}"
        ) from None


def _check_format(document: dict[str, Any], origin: str, what: str, supported: int, hint: str) -> None:
    if isinstance(document["format"], bool) or document["format"] != supported:
        raise BaselineError(
            f"{origin}: {what} format {document['format']!r} is not the supported format {supported}; "
            f"re-run {hint} with this version"
        )


def parse(text: str, origin: str) -> Observation:
    """Parse a baseline file's text; any defect is a BaselineError naming `origin` and the fix."""
    document = _document(text, origin, "baseline", _QUERY_HINT)
    if not isinstance(document, dict) or "format" not in document:
        raise BaselineError(f"{origin}: not a querywarden baseline (no 'format' key); delete it or re-run update")
    _check_format(document, origin, "baseline", FORMAT_VERSION, _QUERY_HINT)
    try:
        return observation_from_dict(document["query"])
    except _MALFORMED as exc:
        raise BaselineError(
            f"{origin}: malformed baseline ({type(exc).__name__}: {exc}); restore it from git or re-run {_QUERY_HINT}"
        ) from None


def file_name(name: str) -> str:
    """A file name for a query or test id that is safe on every file system."""
    safe = _SAFE_NAME.sub("_", name).strip("._") or "query"
    return f"{safe}.json"


@dataclass(frozen=True)
class BaselineStore:
    """A directory of baseline files."""

    directory: Path

    def path_for(self, name: str) -> Path:
        return self.directory / file_name(name)

    def load(self, name: str) -> Observation | None:
        """The baseline for `name`, or None when no file exists (a corrupt file raises)."""
        path = self.path_for(name)
        text = _read_if_exists(path)
        if text is None:
            return None
        observation = parse(text, str(path))
        if file_name(observation.name) != path.name:
            raise BaselineError(
                f"{path}: holds the baseline of {observation.name!r}, not {name!r}; "
                "it was renamed or hand-edited, re-run `querywarden update`"
            )
        return observation

    def names(self) -> list[str]:
        """Query names of every baseline file in the directory (each file is parsed, so corruption shows)."""
        return list(self.load_all())

    def load_all(self) -> dict[str, Observation]:
        """Every baseline in the directory by query name, each file read and parsed once per run."""
        if not self.directory.is_dir():
            return {}
        found: dict[str, Observation] = {}
        for path in sorted(self.directory.glob("*.json")):
            observation = parse(_read(path), str(path))
            if file_name(observation.name) != path.name:
                raise BaselineError(
                    f"{path}: holds the baseline of {observation.name!r}, whose file is {file_name(observation.name)}; "
                    f"it was renamed or hand-edited, re-run {_QUERY_HINT}"
                )
            found[observation.name] = observation
        return found

    def write(self, observation: Observation) -> bool:
        """Write atomically (temp file, fsync, rename); return False when the text is unchanged."""
        return _write_atomically(self.directory, self.path_for(observation.name), baseline_text(observation))

    def remove(self, names: Iterable[str]) -> list[Path]:
        removed = []
        for name in names:
            path = self.path_for(name)
            if path.exists():
                path.unlink()
                removed.append(path)
        return removed


def _read_if_exists(path: Path) -> str | None:
    """A baseline file's text, or None when there is no file; an unreadable file is an error."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot be read ({exc}); check its permissions or restore it") from None


def _read(path: Path) -> str:
    text = _read_if_exists(path)
    if text is None:
        raise BaselineError(f"{path}: disappeared while being read; re-run")
    return text


# --- Per-test baselines (the pytest plugin) ------------------------------------------------------
#
# A guarded test's baseline is one file holding every distinct statement its code path issued, in
# the order they first ran, each with how many times it ran. The environment is the same for every
# statement of a test (one server, one set of pinned settings), so it is written once at the top.

PATH_FORMAT_VERSION = 1
_MAX_FILE_STEM = 150


@dataclass(frozen=True)
class PathBaseline:
    """The recorded statements of one test's code path, and the call rate it was weighted with."""

    test: str
    calls_per_minute: float
    statements: tuple[Observation, ...]

    @property
    def statement_count(self) -> int:
        return sum(statement.statement_count for statement in self.statements)


def path_file_name(test: str) -> str:
    """File name for a test's node id; very long ids are cut and made unique with a hash."""
    name = file_name(test)
    stem = name[: -len(".json")]
    if len(stem) > _MAX_FILE_STEM:
        digest = hashlib.sha256(test.encode("utf-8")).hexdigest()[:12]
        name = f"{stem[:_MAX_FILE_STEM]}-{digest}.json"
    return name


def path_baseline_text(baseline: PathBaseline) -> str:
    """The exact text of a test's baseline file: sorted keys, two-space indent, trailing newline."""
    statements = [observation_to_dict(statement) for statement in baseline.statements]
    environments = [statement.pop("environment") for statement in statements]
    shared = environments[0] if environments else {}
    for statement, environment in zip(statements, environments):
        if environment != shared:
            statement["environment"] = environment
    document = {
        "calls_per_minute": baseline.calls_per_minute,
        "environment": shared,
        "format": PATH_FORMAT_VERSION,
        "statement_count": baseline.statement_count,
        "statements": statements,
        "test": baseline.test,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _path_document(text: str, origin: str, update_hint: str) -> dict[str, Any]:
    document = _document(text, origin, "test baseline", update_hint)
    if isinstance(document, dict) and "query" in document and "test" not in document:
        raise BaselineError(
            f"{origin}: is a per-query baseline of `querywarden check`, not a test baseline; "
            "give the pytest plugin its own baselines directory (querywarden_baselines)"
        )
    if not isinstance(document, dict) or "format" not in document or "test" not in document:
        raise BaselineError(f"{origin}: not a querywarden test baseline (no 'format'/'test' keys); delete it or re-run {update_hint}")
    _check_format(document, origin, "test baseline", PATH_FORMAT_VERSION, update_hint)
    return document


def parse_path(text: str, origin: str, update_hint: str = _TEST_HINT) -> PathBaseline:
    """Parse a test's baseline file; any defect is a BaselineError naming `origin` and the fix."""
    document = _path_document(text, origin, update_hint)
    try:
        shared = document["environment"]
        if not isinstance(shared, dict):
            raise TypeError("environment must be an object")
        statements = []
        for entry in document["statements"]:
            if not isinstance(entry, dict):
                raise TypeError("each statement must be an object")
            statements.append(observation_from_dict({"environment": shared, **entry}))
        baseline = PathBaseline(
            test=str(document["test"]),
            calls_per_minute=float(document["calls_per_minute"]),
            statements=tuple(statements),
        )
    except _MALFORMED as exc:
        raise BaselineError(
            f"{origin}: malformed test baseline ({type(exc).__name__}: {exc}); restore it from git or re-run {update_hint}"
        ) from None
    if document.get("statement_count", baseline.statement_count) != baseline.statement_count:
        raise BaselineError(
            f"{origin}: statement_count {document['statement_count']} does not match its statements "
            f"({baseline.statement_count}); it was hand-edited, restore it from git or re-run {update_hint}"
        )
    return baseline


@dataclass(frozen=True)
class PathBaselineStore:
    """A directory of per-test baseline files, one per test node id."""

    directory: Path

    def path_for(self, test: str) -> Path:
        return self.directory / path_file_name(test)

    def load(self, test: str) -> PathBaseline | None:
        """The baseline of `test`, or None when it has no file (a corrupt or mismatched file raises)."""
        path = self.path_for(test)
        text = _read_if_exists(path)
        if text is None:
            return None
        baseline = parse_path(text, str(path))
        if baseline.test != test:
            raise BaselineError(
                f"{path}: holds the baseline of {baseline.test!r}, not {test!r}; "
                "it was renamed or hand-edited, re-run with --querywarden-update"
            )
        return baseline

    def tests(self) -> dict[Path, str | BaselineError]:
        """Each baseline file with the node id it belongs to (or why it cannot be read)."""
        found: dict[Path, str | BaselineError] = {}
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob("*.json")):
            try:
                found[path] = parse_path(_read(path), str(path)).test
            except BaselineError as exc:
                found[path] = exc
        return found

    def write(self, baseline: PathBaseline) -> bool:
        """Write atomically (temp file, fsync, rename); return False when the text is unchanged."""
        return _write_atomically(self.directory, self.path_for(baseline.test), path_baseline_text(baseline))

    def remove(self, path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True


def _write_atomically(directory: Path, path: Path, text: str) -> bool:
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    directory.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temp:
            temp.write(text)
            temp.flush()
            os.fsync(temp.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return True
