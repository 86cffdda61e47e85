"""Shared fixtures: a real PostgreSQL server (never mocked) and throwaway databases on it.

Tests that need PostgreSQL fail, never skip, when it is unreachable: a skipped guard test asserts
nothing. Point them at another server with QUERYWARDEN_TEST_DSN.
"""

from __future__ import annotations

import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from querywarden.database import Server
from querywarden.seeding.seed import Seed, ensure_template

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "timetracker"
DEFAULT_TEST_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    dsn = os.environ.get("QUERYWARDEN_TEST_DSN", DEFAULT_TEST_DSN)
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"these tests need PostgreSQL at {dsn} ({str(exc).strip()}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect 15 main start` or set QUERYWARDEN_TEST_DSN",
            pytrace=False,
        )
    return dsn


@pytest.fixture(scope="session")
def server(pg_dsn: str) -> Server:
    return Server(pg_dsn)


@contextmanager
def empty_database(server: Server) -> Iterator[str]:
    """A uniquely named empty database for the block; yields its DSN and drops it afterwards."""
    name = f"qw_test_{uuid.uuid4().hex[:10]}"
    server.create(name)
    try:
        yield server.dsn_for(name)
    finally:
        server.drop(name)


@pytest.fixture
def scratch_db(server: Server) -> Iterator[str]:
    """A fresh empty database for one test."""
    with empty_database(server) as dsn:
        yield dsn


@pytest.fixture(scope="session")
def example_seed() -> Seed:
    """The time-tracker example at a tenth of its size: the hot queries still use their indexes, seeded in seconds."""
    return Seed(("seed.sql",), 0.1, EXAMPLE, schema=("schema.sql",))


@pytest.fixture(scope="session")
def example_template(server: Server, example_seed: Seed) -> str:
    return ensure_template(server, example_seed)


@pytest.fixture
def example_db(server: Server, example_template: str) -> Iterator[str]:
    """A private clone of the seeded example that a test may change (drop an index, add rows)."""
    with server.clone(example_template, prefix="qw_test") as dsn:
        yield dsn


@contextmanager
def tmpfs(where: Path, size: str = "64k") -> Iterator[Path]:
    """A tiny tmpfs of our own: real ENOSPC and EROFS (root ignores permission bits, so chmod cannot).

    It fails, never skips, where it cannot be mounted: a skipped full-disk test asserts nothing.
    """
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"these tests mount a tmpfs to fill a real disk and need root (mount said: "
                    f"{mounted.stderr.strip()}); run them as root or in a container that may mount", pytrace=False)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)


def fill(directory: Path) -> None:
    """Write into `directory` until its file system is full."""
    with open(directory / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def git(where: Path, *args: str) -> str:
    """Run git in `where` as a throwaway author; its output."""
    done = subprocess.run(["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout.strip()


def on_a_branch_off_main(root: Path) -> str:
    """`root` committed as `main` in a new repository and checked out on a branch `change`; main's sha."""
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "change")
    return git(root, "rev-parse", "HEAD")
