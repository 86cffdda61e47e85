"""Leak nothing: DSN passwords and parameter values never reach output, baselines, results or reports.

The CLI runs as a real subprocess here, so everything it (and libpq under it) writes to stdout and stderr
is scanned, not just what click captures. Authentication really happens: a throwaway cluster gets a role
with a password and a `scram-sha-256` line in pg_hba.conf.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from querywarden.embedded import EmbeddedCluster

QUERYWARDEN = Path(sys.executable).with_name("querywarden")
ROLE = "qw_secret_role"


@dataclass(frozen=True)
class Guarded:
    """A cluster whose application role must authenticate with `password`."""

    port: int
    password: str

    def dsn(self, password: str | None = None, dbname: str = "qw_app") -> str:
        return f"postgresql://{ROLE}:{quote(password or self.password, safe='')}@127.0.0.1:{self.port}/{dbname}"


@pytest.fixture(scope="module")
def guarded() -> Iterator[Guarded]:
    password = f"Pw-{secrets.token_hex(8)}"
    cluster = EmbeddedCluster()
    with cluster as admin_dsn:
        assert cluster.tempdir is not None and cluster.port is not None
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            # CREATEROLE: querywarden measures as a restricted role it creates for the run
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE qw_app OWNER {}").format(sql.Identifier(ROLE)))
        hba = Path(cluster.tempdir) / "cluster" / "data" / "pg_hba.conf"
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        guarded = Guarded(cluster.port, password)
        with psycopg.connect(guarded.dsn(), autocommit=True) as conn:
            conn.execute("CREATE TABLE accounts (id bigint PRIMARY KEY, email text UNIQUE NOT NULL, balance int NOT NULL)")
            conn.execute("INSERT INTO accounts SELECT g, 'user' || g || '@example.com', g % 100 FROM generate_series(1, 3000) g")
            conn.execute("VACUUM ANALYZE accounts")
        yield guarded


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("QUERYWARDEN_DSN", "PGPASSWORD")}
    environment.update(env or {})
    return subprocess.run([str(QUERYWARDEN), *args], cwd=cwd, env=environment, capture_output=True, text=True,
                          timeout=300, check=False)


def everything_written(result: subprocess.CompletedProcess[str], directory: Path) -> str:
    """stdout, stderr and the text of every file under `directory`."""
    texts = [result.stdout, result.stderr]
    texts += [path.read_text(encoding="utf-8", errors="replace") for path in sorted(directory.rglob("*")) if path.is_file()]
    return "\n".join(texts)


CATALOG = """\
-- name: by_email
-- params: {"email": "jane.private@example.org"}
SELECT id, balance FROM accounts WHERE email = %(email)s;

-- name: by_id
-- params: [8675309123]
SELECT email FROM accounts WHERE id = %s;

-- name: rich
-- params: {"floor": 97}
SELECT count(*) FROM accounts WHERE balance > %(floor)s;
"""
PARAM_VALUES = ("jane.private@example.org", "8675309123")


UNREACHABLE = [
    ("postgresql://app:Unreach-Pw-1@127.0.0.1:1/db", ["Unreach-Pw-1"]),
    ("postgresql://app:Enc%40oded%2FPw-2@127.0.0.1:1/db", ["Enc@oded/Pw-2", "Enc%40oded%2FPw-2"]),
    ("host=127.0.0.1 port=1 user=app password='Kv Pw-3' dbname=db", ["Kv Pw-3"]),
    ("postgresql://app@127.0.0.1:1/db?password=Query-Pw-4", ["Query-Pw-4"]),
    ("postgresql://app:Raw7Left@Raw9Right@127.0.0.1:1/db", ["Raw7Left", "Raw9Right"]),
]


def test_unreachable_server_never_shows_the_password(tmp_path: Path) -> None:
    """URL, percent-encoded, key=value, query-parameter and unencoded-`@` passwords; by flag and by environment."""
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: one\nSELECT 1;\n")
    environment = {k: v for k, v in os.environ.items() if k not in ("QUERYWARDEN_DSN", "PGPASSWORD")}
    runs = []
    for dsn, parts in UNREACHABLE:
        for how in ("flag", "environment"):
            args = ["--dsn", dsn] if how == "flag" else []
            env = environment if how == "flag" else {**environment, "QUERYWARDEN_DSN": dsn}
            command = [str(QUERYWARDEN), "check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), *args]
            process = subprocess.Popen(command, cwd=tmp_path, env=env, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            runs.append((dsn, how, parts, process))
    for dsn, how, parts, process in runs:  # in parallel: most of each run is the bounded retry's wait
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 2, (dsn, how, stderr)
        assert "querywarden: error: " in stderr, (dsn, how, stderr)
        for part in parts:
            assert part not in stdout + stderr, (dsn, how, stderr)


def test_failed_authentication_shows_neither_password(guarded: Guarded, tmp_path: Path) -> None:
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: one\nSELECT 1;\n")
    wrong = f"Wrong-{secrets.token_hex(6)}"
    result = run(tmp_path, "check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"),
                 "--dsn", guarded.dsn(password=wrong))
    assert result.returncode == 2
    assert f'password authentication failed for user "{ROLE}"' in result.stderr
    assert f"postgresql://{ROLE}:***@127.0.0.1:{guarded.port}/qw_app" in result.stderr
    written = result.stdout + result.stderr
    assert wrong not in written and guarded.password not in written


def test_a_full_run_writes_neither_the_password_nor_parameter_values(guarded: Guarded, tmp_path: Path) -> None:
    catalog = tmp_path / "q.sql"
    catalog.write_text(CATALOG)
    out = tmp_path / "out"
    out.mkdir()
    recorded = run(tmp_path, "update", "--catalog", str(catalog), "--baselines", str(out / "baselines"),
                   "--dsn", guarded.dsn())
    assert recorded.returncode == 0, recorded.stderr
    checked = run(tmp_path, "check", "--catalog", str(catalog), "--baselines", str(out / "baselines"),
                  "--dsn", guarded.dsn(), "--json", str(out / "results.json"), "--html", str(out / "report.html"),
                  "--markdown", str(out / "report.md"))
    assert checked.returncode in (0, 1), checked.stderr
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == [
        "by_email.json", "by_id.json", "report.html", "report.md", "results.json", "rich.json",
    ]
    for result in (recorded, checked):
        written = everything_written(result, out)
        assert guarded.password not in written
        assert quote(guarded.password, safe="") not in written
        for value in PARAM_VALUES:
            assert value not in written, value
    # The plan keeps the shape and the types of what was compared, not the values.
    baseline = (out / "baselines" / "by_email.json").read_text()
    assert "(email = '?'::text)" in baseline


def test_an_error_of_a_query_does_not_show_the_password(guarded: Guarded, tmp_path: Path) -> None:
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: nocol\nSELECT no_such_column FROM accounts;\n")
    result = run(tmp_path, "check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", guarded.dsn())
    assert result.returncode == 2
    assert 'column "no_such_column" does not exist' in result.stderr
    assert f"postgresql://{ROLE}:***@" in result.stderr
    assert guarded.password not in result.stdout + result.stderr


def test_parameter_values_are_stored_only_when_the_user_opts_in(guarded: Guarded, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.querywarden]\nstore-params = true\n")
    catalog = tmp_path / "q.sql"
    catalog.write_text(CATALOG)
    result = run(tmp_path, "update", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", guarded.dsn())
    assert result.returncode == 0, result.stderr
    assert "(email = 'jane.private@example.org'::text)" in (tmp_path / "b" / "by_email.json").read_text()
    assert guarded.password not in everything_written(result, tmp_path / "b")
