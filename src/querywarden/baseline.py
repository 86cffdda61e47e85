"""The baseline store: one human-diffable JSON file per guarded query.

Files have sorted keys, a format version and no volatile fields (no timestamps, hostnames or raw
timing samples), so `git diff` of a refresh reads as a review of what changed. Timing is rounded and
kept only as a summary; an update that would not change the verdict leaves the file untouched.

A baseline comes from a pull request like any other file, and a same-run replay executes its SQL, so
reading one trusts nothing: only regular files of bounded size, a fingerprint that matches the SQL,
and SQL that querywarden would measure itself. Writing one never touches a file another query owns.
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import BaselineError
from .fingerprint import FINGERPRINT_VERSION, fingerprint_version, identify
from .observation import Observation, Timing
from .plan import PlanNode

FORMAT_VERSION = 1
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
# Far above any real baseline (a plan of thousands of nodes is a few hundred KiB), far below what a
# link to /dev/zero or a stray dump would make us hold in memory.
MAX_FILE_BYTES = 4 * 1024 * 1024


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
    document: dict[str, Any] = {
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
    if observation.accepted is not None:  # only where a reviewer accepted a cost: other files do not change
        document["accepted"] = observation.accepted
    if observation.allow_seq_scan is not None:  # likewise a reviewed exception, with its reason
        document["allow_seq_scan"] = observation.allow_seq_scan
    if include_samples:  # results files only: volatile, like the samples
        document["planning_ms"] = observation.planning_ms
        document["execution_ms"] = observation.execution_ms
    return document


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
        accepted=None if data.get("accepted") is None else str(data["accepted"]),
        allow_seq_scan=None if data.get("allow_seq_scan") is None else str(data["allow_seq_scan"]),
        planning_ms=_optional_ms(data.get("planning_ms")),
        execution_ms=_optional_ms(data.get("execution_ms")),
    ))


def _optional_ms(value: Any) -> float | None:
    return None if value is None else float(value)


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


def _trusted_sql(observation: Observation, origin: str, hint: str) -> Observation:
    """The observation, once its SQL and fingerprint can be trusted; a BaselineError naming `origin` if not.

    The SQL must be a statement querywarden would measure itself (a replay runs it), and its stored
    fingerprint and normalised text must be what this version computes from it. A sqlglot-era
    fingerprint (no version) is recomputed here in memory, so older baselines keep working.
    """
    identity = identify(observation.sql)
    if identity.kind == "refused":
        raise BaselineError(
            f"{origin}: its SQL is refused ({identity.refusal}); a baseline holds only statements querywarden "
            f"measures, so it was hand-edited: restore it from git or re-run {hint}"
        )
    version = fingerprint_version(observation.fingerprint)
    if version == 0:
        return replace(observation, fingerprint=identity.fingerprint, normalized_sql=identity.normalized)
    if version is None:
        raise BaselineError(
            f"{origin}: its fingerprint {observation.fingerprint!r} is not one querywarden writes; "
            f"restore it from git or re-run {hint}"
        )
    if version != FINGERPRINT_VERSION:
        raise BaselineError(
            f"{origin}: its fingerprint is of version {version}, and this querywarden computes version "
            f"{FINGERPRINT_VERSION}; use the querywarden that wrote it, or re-run {hint} with this one"
        )
    if observation.fingerprint != identity.fingerprint:
        raise BaselineError(
            f"{origin}: its fingerprint does not match its SQL; restore it from git or re-run {hint}"
        )
    if observation.normalized_sql != identity.normalized:
        raise BaselineError(
            f"{origin}: its normalized_sql does not match its SQL; restore it from git or re-run {hint}"
        )
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
        observation = observation_from_dict(document["query"])
    except _MALFORMED as exc:
        raise BaselineError(
            f"{origin}: malformed baseline ({type(exc).__name__}: {exc}); restore it from git or re-run {_QUERY_HINT}"
        ) from None
    return _trusted_sql(observation, origin, _QUERY_HINT)


def file_name(name: str) -> str:
    """A file name for a query or test id that is safe on every file system.

    It is not one-to-one (`totals`, `_totals` and `totals.` share `totals.json`), so the stores
    refuse a second name for a file rather than let one query be compared with another's baseline.
    """
    safe = _SAFE_NAME.sub("_", name).strip("._") or "query"
    return f"{safe}.json"


def _shared_file(path: Path, owner: str, name: str, what: str) -> BaselineError:
    return BaselineError(
        f"{path}: holds the baseline of {what} {owner!r}, and {what} {name!r} maps to the same file name; "
        f"rename one of the two so their file names differ (or delete the file if {owner!r} is gone)"
    )


def _stored_name(text: str, *keys: str) -> str | None:
    """The query name or test id a baseline's text holds, or None when it holds none (it is corrupt)."""
    try:
        value: Any = _loads(text)
        for key in keys:
            value = value[key]
    except (ValueError, RecursionError, KeyError, TypeError, IndexError):
        return None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class BaselineStore:
    """A directory of baseline files."""

    directory: Path

    def path_for(self, name: str) -> Path:
        return self.directory / file_name(name)

    def load(self, name: str) -> Observation | None:
        """The baseline for `name`, or None when no file exists (a corrupt file raises)."""
        path = self.path_for(name)
        text = _read_if_exists(path, _QUERY_HINT)
        if text is None:
            return None
        observation = parse(text, str(path))
        if observation.name != name:
            if file_name(observation.name) == path.name:
                raise _shared_file(path, observation.name, name, "query")
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
        found: dict[str, Observation] = {}
        for path in _entries(self.directory, strict=True):
            observation = parse(_read(path, _QUERY_HINT), str(path))
            if file_name(observation.name) != path.name:
                raise BaselineError(
                    f"{path}: holds the baseline of {observation.name!r}, whose file is {file_name(observation.name)}; "
                    f"it was renamed or hand-edited, re-run {_QUERY_HINT}"
                )
            found[observation.name] = observation
        return found

    def claim(self, names: Iterable[str], recorded: Mapping[str, Observation]) -> None:
        """Refuse, before anything is measured, two query names for one file: among `names`, or a name
        whose file holds another query's baseline (a new `_totals` must not be judged as `totals`)."""
        owners = {file_name(name): name for name in recorded}
        for name in names:
            owner = owners.setdefault(file_name(name), name)
            if owner != name:
                raise _shared_file(self.path_for(name), owner, name, "query")

    def write(self, observation: Observation) -> bool:
        """Write atomically (temp file, fsync, rename); return False when the text is unchanged.

        A file that holds another query's baseline (a name that maps to the same file) is an error,
        never overwritten.
        """
        return _write_owned(self.directory, self.path_for(observation.name), baseline_text(observation),
                            observation.name, "query", _QUERY_HINT, ("query", "name"))

    def remove(self, names: Iterable[str]) -> list[Path]:
        """Delete the baselines of `names`; a file holding another query's baseline is an error, kept."""
        removed = []
        for name in names:
            path = self.path_for(name)
            text = _read_if_exists(path, _QUERY_HINT)
            if text is None:
                continue
            owner = _stored_name(text, "query", "name")
            if owner is not None and owner != name:
                raise _shared_file(path, owner, name, "query")
            try:
                path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise _unwritable(path, self.directory, exc) from None
            removed.append(path)
        return removed


def _entries(directory: Path, *, strict: bool) -> list[Path]:
    """The *.json entries of a baselines directory, sorted; none when it does not exist.

    With `strict`, a path that exists but is no directory (a file where the directory should be) is a
    BaselineError: reading it as "no baselines" would compare every query with nothing.
    """
    try:
        info = os.stat(directory)  # a link to a directory is fine: only the files must be regular
    except FileNotFoundError:
        return []
    except OSError as exc:
        if not strict:
            return []
        raise BaselineError(f"{directory}: cannot be read ({exc.strerror}); check the baselines setting") from None
    if not stat.S_ISDIR(info.st_mode):
        if not strict:
            return []
        raise _not_a_directory(directory)
    return sorted(directory.glob("*.json"))


def _not_a_directory(directory: Path) -> BaselineError:
    return BaselineError(
        f"{directory}: is not a directory; baselines are a directory of .json files: "
        "move the file away or point the baselines setting at a directory"
    )


def _kind_of(mode: int) -> str:
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISLNK, "a symbolic link"),
                       (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a regular file"


def _not_regular(path: Path, mode: int, hint: str) -> BaselineError:
    what = _kind_of(mode)
    if stat.S_ISLNK(mode):
        return BaselineError(
            f"{path}: cannot be read: it is a symbolic link, and baselines are read only from regular files "
            "(a link can point at a device or outside the repository); replace it with the file itself"
        )
    return BaselineError(
        f"{path}: cannot be read: it is {what}, not a regular file; delete it and restore the baseline "
        f"from git or re-run {hint}"
    )


def _too_big(path: Path, hint: str) -> BaselineError:
    return BaselineError(
        f"{path}: cannot be read: it is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB, the most a baseline file "
        f"may hold; restore it from git or re-run {hint}"
    )


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _read_if_exists(path: Path, hint: str) -> str | None:
    """A baseline file's text, or None when there is no file; anything else there is a BaselineError.

    Only a regular file of at most MAX_FILE_BYTES is read. `lstat` refuses a FIFO, a device or a link
    before anything opens it (opening a FIFO blocks, some devices act when opened); the open itself
    neither follows a link nor blocks, and `fstat` checks again what was opened, in case the entry was
    swapped in between.
    """
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode, hint)
        handle = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _not_regular(path, stat.S_IFLNK, hint) from None
        if exc.errno == errno.ENOTDIR:  # a file stands where the baselines directory should be
            raise _not_a_directory(path.parent) from None
        raise BaselineError(f"{path}: cannot be read ({exc.strerror}); check its permissions or restore it") from None
    try:
        info = os.fstat(handle)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode, hint)
        if info.st_size > MAX_FILE_BYTES:
            raise _too_big(path, hint)
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(handle, 1 << 16):
            size += len(chunk)
            if size > MAX_FILE_BYTES:  # it grew after fstat
                raise _too_big(path, hint)
            chunks.append(chunk)
    except OSError as exc:
        raise BaselineError(f"{path}: cannot be read ({exc.strerror}); check its permissions or restore it") from None
    finally:
        os.close(handle)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BaselineError(f"{path}: cannot be read ({exc}); check its permissions or restore it") from None


def _read(path: Path, hint: str) -> str:
    text = _read_if_exists(path, hint)
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
    trusted = tuple(_trusted_sql(s, f"{origin}: statement {s.name}", update_hint) for s in baseline.statements)
    return replace(baseline, statements=trusted)


@dataclass(frozen=True)
class PathBaselineStore:
    """A directory of per-test baseline files, one per test node id."""

    directory: Path

    def path_for(self, test: str) -> Path:
        return self.directory / path_file_name(test)

    def load(self, test: str) -> PathBaseline | None:
        """The baseline of `test`, or None when it has no file (a corrupt or mismatched file raises)."""
        path = self.path_for(test)
        text = _read_if_exists(path, _TEST_HINT)
        if text is None:
            return None
        baseline = parse_path(text, str(path))
        if baseline.test != test:
            if path_file_name(baseline.test) == path.name:
                raise _shared_file(path, baseline.test, test, "test")
            raise BaselineError(
                f"{path}: holds the baseline of {baseline.test!r}, not {test!r}; "
                "it was renamed or hand-edited, re-run with --querywarden-update"
            )
        return baseline

    def tests(self) -> dict[Path, str | BaselineError]:
        """Each baseline file with the node id it belongs to (or why it cannot be read)."""
        found: dict[Path, str | BaselineError] = {}
        for path in _entries(self.directory, strict=False):
            try:
                found[path] = parse_path(_read(path, _TEST_HINT), str(path)).test
            except BaselineError as exc:
                found[path] = exc
        return found

    def write(self, baseline: PathBaseline) -> bool:
        """Write atomically (temp file, fsync, rename); return False when the text is unchanged.

        A file that holds another test's baseline (an id that maps to the same file) is an error,
        never overwritten.
        """
        return _write_owned(self.directory, self.path_for(baseline.test), path_baseline_text(baseline),
                            baseline.test, "test", _TEST_HINT, ("test",))

    def remove(self, path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _unwritable(path, self.directory, exc) from None
        return True


def _write_owned(directory: Path, path: Path, text: str, name: str, what: str, hint: str, name_keys: tuple[str, ...]) -> bool:
    """Write `text` for `name` unless unchanged (False); a file that holds another name's baseline is
    an error, never overwritten."""
    existing = _read_if_exists(path, hint)
    if existing == text:
        return False
    owner = None if existing is None else _stored_name(existing, *name_keys)
    if owner is not None and owner != name:
        raise _shared_file(path, owner, name, what)
    _replace_file(directory, path, text)
    return True


def _unwritable(target: Path, directory: Path, exc: OSError) -> BaselineError:
    """One line for a write the file system refused, with the fix for the common causes."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free space on the file system of {directory} (or raise the quota) and re-run"
    elif exc.errno == errno.EROFS:
        fix = f"{directory} is on a read-only file system: point the baselines setting at a writable directory"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        fix = f"make {directory} writable for this user, or point the baselines setting at a writable directory"
    elif exc.errno in (errno.EEXIST, errno.ENOTDIR):
        fix = f"a file stands where the directory {directory} should be: move it away or point the baselines setting elsewhere"
    else:
        fix = f"check {directory} and re-run"
    return BaselineError(f"{target}: cannot be written ({exc.strerror or exc}); {fix}")


_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _replace_file(directory: Path, path: Path, text: str) -> None:
    """Put `text` at `path` whole or not at all: a temp file beside it, fsync, rename, fsync the directory.

    The temp file is created with mode 0o666, which the umask then narrows (0644 under the usual
    022), as any file a user's editor writes: `tempfile` would make it 0600 and a rename would keep
    that. Any OSError is a BaselineError naming the file and the fix, and leaves no temp file.
    """
    data = text.encode("utf-8")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _unwritable(path, directory, exc) from None
    temp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    renamed = False
    try:
        handle = os.open(temp, _WRITE_FLAGS, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
            os.fsync(handle)
        finally:
            os.close(handle)
        os.replace(temp, path)
        renamed = True
        _sync_directory(directory)
    except OSError as exc:
        raise _unwritable(path, directory, exc) from None
    finally:
        if not renamed:  # an error or an interrupt: the old file stays as it was, and no temp file stays
            try:
                temp.unlink()
            except OSError:
                pass  # it was never created; the error that brought us here is the one to tell


def _sync_directory(directory: Path) -> None:
    """Make the rename durable; a file system that cannot sync a directory has nothing more to do."""
    try:
        handle = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)
