"""Where querywarden looks for its settings, the environment variables and the nearest
pyproject.toml, in a module that imports next to nothing: the pytest plugin looks on every run,
used or not, and must not load the configuration layer to do so."""

from __future__ import annotations

from pathlib import Path

DSN_ENV = "QUERYWARDEN_DSN"
EMBEDDED_ENV = "QUERYWARDEN_EMBEDDED"
OFF_ENV = "QUERYWARDEN_OFF"


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start`."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None
