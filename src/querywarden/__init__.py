"""querywarden: stop slow queries before they merge."""

__version__ = "0.1.0"
