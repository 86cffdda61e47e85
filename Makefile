# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv first.
# The venv is made from /usr/bin/python3 when present: the embedded PostgreSQL cluster runs as the
# unprivileged `postgres` user, who cannot execute a venv under root's pyenv (mode 0700).
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test typecheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/querywarden demo

# Our suite, then the example application's own suite guarded by the plugin: a change that slows
# the example down fails here.
test: $(STAMP)
	$(VENV)/bin/pytest
	$(VENV)/bin/pytest examples/timetracker

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV)
