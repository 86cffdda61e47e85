"""The pytest plugin (hooks and fixtures); kept import-light so pytest start-up stays fast."""
