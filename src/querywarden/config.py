"""Project settings from `[tool.querywarden]` in pyproject.toml, shared by the CLI and the pytest plugin."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .compare import Policy
from .errors import ConfigError
from .measure import DEFAULT_PINNED_SETTINGS, MeasureSettings

# pyproject key -> (dataclass, field) it sets
_POLICY_KEYS = {f.name.replace("_", "-"): f.name for f in fields(Policy) if f.name != "strict"}
_MEASURE_KEYS = {
    "statement-timeout-ms": "statement_timeout_ms",
    "warmup": "warmup",
    "min-samples": "min_samples",
    "max-samples": "max_samples",
    "time-cap-s": "time_cap_s",
    "search-path": "search_path",
    "max-run-seconds": "max_run_s",
    "store-params": "store_params",
}
_PLAIN_KEYS = ("catalog", "baselines", "schema", "seed", "scale", "default-calls-per-minute", "settings")


@dataclass(frozen=True)
class Config:
    """Resolved settings; `root` is the directory relative paths are taken from."""

    root: Path
    catalog: tuple[str, ...] = ()
    baselines: str = "baselines"
    schema: tuple[str, ...] = ()
    seed: tuple[str, ...] = ()
    scale: float = 1.0
    default_calls_per_minute: float = 60.0
    policy: Policy = field(default_factory=Policy)
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    source: str = "defaults"

    def path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _strings(value: Any, key: str, origin: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{origin}: `{key}` must be a string or a list of strings")


def _coerce(value: Any, like: Any, key: str, origin: str) -> Any:
    try:
        if isinstance(like, bool):
            if not isinstance(value, bool):
                raise TypeError
            return value
        if isinstance(like, int):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError
            return value
        if isinstance(like, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError
            return float(value)
        if isinstance(like, str):
            if not isinstance(value, str):
                raise TypeError
            return value
    except TypeError:
        raise ConfigError(f"{origin}: `{key}` must be a {type(like).__name__}, not {value!r}") from None
    return value


def config_from_table(table: Mapping[str, Any], root: Path, origin: str) -> Config:
    """Build a Config from a `[tool.querywarden]` table; unknown keys are errors, not ignored."""
    known = set(_PLAIN_KEYS) | set(_POLICY_KEYS) | set(_MEASURE_KEYS)
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{origin}: unknown key(s) {', '.join(unknown)} in [tool.querywarden]; known: {', '.join(sorted(known))}")
    policy, measure = Policy(), MeasureSettings()
    policy = replace(policy, **{
        attr: _coerce(table[key], getattr(policy, attr), key, origin) for key, attr in _POLICY_KEYS.items() if key in table
    })
    changes = {attr: _coerce(table[key], getattr(measure, attr), key, origin) for key, attr in _MEASURE_KEYS.items() if key in table}
    if "settings" in table:
        settings = table["settings"]
        if not isinstance(settings, dict):
            raise ConfigError(f"{origin}: `settings` must be a table of PostgreSQL settings")
        changes["pinned"] = {**DEFAULT_PINNED_SETTINGS, **{str(k): str(v) for k, v in settings.items()}}
    measure = replace(measure, **changes)
    if measure.max_run_s < 0 or measure.max_run_s != measure.max_run_s:
        raise ConfigError(f"{origin}: `max-run-seconds` must be a number of seconds >= 0 (0: no cap)")
    config = Config(root=root, policy=policy, measure=measure, source=origin)
    if "catalog" in table:
        config = replace(config, catalog=_strings(table["catalog"], "catalog", origin))
    if "seed" in table:
        config = replace(config, seed=_strings(table["seed"], "seed", origin))
    if "schema" in table:
        config = replace(config, schema=_strings(table["schema"], "schema", origin))
    if "baselines" in table:
        config = replace(config, baselines=_coerce(table["baselines"], "", "baselines", origin))
    if "scale" in table:
        config = replace(config, scale=_coerce(table["scale"], 1.0, "scale", origin))
    if "default-calls-per-minute" in table:
        config = replace(
            config,
            default_calls_per_minute=_coerce(table["default-calls-per-minute"], 1.0, "default-calls-per-minute", origin),
        )
    return config


def load_config(start: Path | None = None) -> Config:
    """Read `[tool.querywarden]` from the nearest pyproject.toml at or above `start` (defaults if none)."""
    start = (start or Path.cwd()).resolve()
    pyproject = find_pyproject(start)
    if pyproject is None:
        return Config(root=start)
    try:
        document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: cannot be read as TOML ({exc})") from None
    table = document.get("tool", {}).get("querywarden")
    if table is None:
        return Config(root=pyproject.parent)
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.querywarden] must be a table")
    return config_from_table(table, pyproject.parent, str(pyproject))
