"""The baseline store: one human-diffable JSON file per guarded query.

Files have sorted keys, a format version and no volatile fields (no timestamps, hostnames or raw
timing samples), so `git diff` of a refresh reads as a review of what changed. Timing is rounded and
kept only as a summary; an update that would not change the verdict leaves the file untouched.
"""

from __future__ import annotations

import json
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
    return Observation(
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
    )


def render(observation: Observation) -> str:
    """The exact text of a baseline file: stable key order, two-space indent, trailing newline."""
    document = {"format": FORMAT_VERSION, "query": observation_to_dict(observation)}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def parse(text: str, origin: str) -> Observation:
    """Parse a baseline file's text; any defect is a BaselineError naming `origin` and the fix."""
    if "<<<<<<<" in text or ">>>>>>>" in text:
        raise BaselineError(
            f"{origin}: contains git merge-conflict markers; resolve the conflict or re-run `querywarden update`"
        )
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"{origin}: not valid JSON ({exc.msg} at line {exc.lineno}); "
            "restore it from git or re-run `querywarden update`"
        ) from None
    if not isinstance(document, dict) or "format" not in document:
        raise BaselineError(f"{origin}: not a querywarden baseline (no 'format' key); delete it or re-run update")
    if document["format"] != FORMAT_VERSION:
        raise BaselineError(
            f"{origin}: baseline format {document['format']!r} is not the supported format {FORMAT_VERSION}; "
            "re-run `querywarden update` with this version"
        )
    try:
        return observation_from_dict(document["query"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BaselineError(
            f"{origin}: malformed baseline ({type(exc).__name__}: {exc}); "
            "restore it from git or re-run `querywarden update`"
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
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise BaselineError(f"{path}: cannot be read ({exc}); check its permissions or restore it") from None
        observation = parse(text, str(path))
        if file_name(observation.name) != path.name:
            raise BaselineError(
                f"{path}: holds the baseline of {observation.name!r}, not {name!r}; "
                "it was renamed or hand-edited, re-run `querywarden update`"
            )
        return observation

    def names(self) -> list[str]:
        """Query names of every baseline file in the directory (each file is parsed, so corruption shows)."""
        if not self.directory.is_dir():
            return []
        names = []
        for path in sorted(self.directory.glob("*.json")):
            names.append(parse(_read(path), str(path)).name)
        return names

    def write(self, observation: Observation) -> bool:
        """Write atomically (temp file, fsync, rename); return False when the text is unchanged."""
        path = self.path_for(observation.name)
        text = render(observation)
        try:
            if path.read_text(encoding="utf-8") == text:
                return False
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        self.directory.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.directory)
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

    def remove(self, names: Iterable[str]) -> list[Path]:
        removed = []
        for name in names:
            path = self.path_for(name)
            if path.exists():
                path.unlink()
                removed.append(path)
        return removed


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot be read ({exc}); check its permissions or restore it") from None
