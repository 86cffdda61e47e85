"""DSN passwords never shown, however they are spelled: `/` (every base64 password), spaces, invalid `%zz`
escapes, `&`, quotes and backslashes, in URL and key=value form.

Each spelling runs `querywarden check` twice: against a closed port, and against a real PostgreSQL that
authenticates with scram-sha-256 and so rejects the (wrong) password. Both end in exit 2 with one
`querywarden: error:` line, and no piece of the password in anything written. The server at
127.0.0.1:5432 trusts every connection, so it would accept any password: a throwaway cluster stands in.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from querywarden.cli import main
from querywarden.database import mask_dsn, scrub
from querywarden.embedded import EmbeddedCluster
from querywarden.errors import ConfigError

ROLE = "qw_dsn_role"
RIGHT_PASSWORD = "Right-Pw-Never-Used-In-A-Dsn"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def error_line(result: Result) -> str:
    """The one `querywarden: error:` line a run that could not complete ends with."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("querywarden: error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(autouse=True)
def outside_the_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no pyproject.toml supplies a seed or catalog, and with no DSN or password in the environment."""
    monkeypatch.chdir(tmp_path)
    for variable in ("QUERYWARDEN_DSN", "PGPASSWORD", "PGPASSFILE"):
        monkeypatch.delenv(variable, raising=False)


@dataclass(frozen=True)
class Spelling:
    """A DSN template (`{host}`, `{port}`, `{user}`, `{db}`) and every piece of its password that must not show."""

    id: str
    template: str
    pieces: tuple[str, ...]
    reaches_server: bool  # libpq reads it as meant, so the server gets to reject the password

    def dsn(self, host: str, port: int, user: str, db: str) -> str:
        return self.template.format(host=host, port=port, user=user, db=db)


ENCODED = "Enc/ o'd&Pw7\\"
SPELLINGS = [
    Spelling("url-slash", "postgresql://{user}:Left1/Right1@{host}:{port}/{db}", ("Left1/Right1", "Left1", "Right1"), False),
    Spelling("url-base64", "postgresql://{user}:qZr2+x9K/d2Tw==@{host}:{port}/{db}", ("qZr2+x9K", "d2Tw=="), False),
    Spelling("url-space", "postgresql://{user}:Spa3 ce3@{host}:{port}/{db}", ("Spa3 ce3", "Spa3", "ce3"), False),
    Spelling("url-bad-escape", "postgresql://{user}:Bad4%zzEsc4@{host}:{port}/{db}", ("Bad4%zzEsc4", "Bad4", "zzEsc4"), False),
    Spelling("url-ampersand", "postgresql://{user}:Amp5&Pw5@{host}:{port}/{db}", ("Amp5&Pw5", "Amp5", "Pw5"), True),
    Spelling("url-quotes", "postgresql://{user}:Quo6'te\"Pw6@{host}:{port}/{db}", ("Quo6", "te\"Pw6", "Pw6"), True),
    Spelling("url-encoded", "postgresql://{user}:" + quote(ENCODED, safe="") + "@{host}:{port}/{db}",
             (ENCODED, quote(ENCODED, safe=""), "Enc/", "Pw7"), True),
    Spelling("url-query", "postgresql://{user}@{host}:{port}/{db}?password=Qry8/&Pw8&sslmode=disable", ("Qry8", "Pw8"), False),
    Spelling("url-query-encoded", "postgresql://{user}@{host}:{port}/{db}?sslmode=disable&password=Qry9%2F%26Pw9",
             ("Qry9", "Pw9"), True),
    Spelling("kv-doubled-quote", "host={host} port={port} user={user} dbname={db} password='Kv10''s Sp&c10'",
             ("Kv10", "Sp&c10"), False),
    Spelling("kv-escaped", "host={host} port={port} user={user} dbname={db} password='Kv11\\'s Sp\\\\ce11'",
             ("Kv11", "Sp\\ce11", "Sp\\\\ce11"), True),
    Spelling("kv-unquoted-slash", "host={host} port={port} user={user} dbname={db} password=Kv12/Pw12", ("Kv12", "Pw12"), True),
    Spelling("kv-unterminated", "host={host} port={port} user={user} dbname={db} password='Kv13 Pw13", ("Kv13", "Pw13"), False),
]
BY_ID = [pytest.param(spelling, id=spelling.id) for spelling in SPELLINGS]
ONLY_EXPECTED_LINES = ("settings: ", "database: ", "querywarden: error: ")


def check_with(dsn: str, tmp_path: Path) -> Result:
    catalog = tmp_path / "q.sql"
    catalog.write_text("-- name: one\nSELECT 1;\n")
    return invoke("check", "--catalog", str(catalog), "--baselines", str(tmp_path / "b"), "--dsn", dsn)


def assert_refused_without_the_password(result: Result, spelling: Spelling) -> str:
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert result.stdout == ""
    assert all(text.startswith(ONLY_EXPECTED_LINES) for text in result.stderr.splitlines()), result.stderr
    written = result.stdout + result.stderr
    for piece in spelling.pieces:
        assert piece not in written, (piece, written)
    return line


@pytest.mark.parametrize("spelling", BY_ID)
def test_an_unreachable_server_shows_no_piece_of_the_password(spelling: Spelling, tmp_path: Path) -> None:
    result = check_with(spelling.dsn("127.0.0.1", 1, "app", "db"), tmp_path)
    line = assert_refused_without_the_password(result, spelling)
    if spelling.reaches_server:
        assert "Connection refused" in line
    else:
        assert line.startswith("querywarden: error: invalid DSN"), line
    assert "***" in result.stderr  # the `database:` line says a password was given, without it


@dataclass(frozen=True)
class Guarded:
    """A cluster whose role ROLE must authenticate with RIGHT_PASSWORD over TCP."""

    port: int


@pytest.fixture(scope="module")
def guarded() -> Iterator[Guarded]:
    cluster = EmbeddedCluster()
    with cluster as admin_dsn:
        assert cluster.tempdir is not None and cluster.port is not None
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(RIGHT_PASSWORD)))
            conn.execute(sql.SQL("CREATE DATABASE qw_dsn OWNER {}").format(sql.Identifier(ROLE)))
        hba = Path(cluster.tempdir) / "cluster" / "data" / "pg_hba.conf"
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute("SELECT pg_reload_conf()")
        right = f"postgresql://{ROLE}:{RIGHT_PASSWORD}@127.0.0.1:{cluster.port}/qw_dsn"
        psycopg.connect(right).close()  # the role does log in with its password: a rejection below is the password's
        yield Guarded(cluster.port)


@pytest.mark.parametrize("spelling", BY_ID)
def test_a_wrong_password_shows_no_piece_of_it(spelling: Spelling, guarded: Guarded, tmp_path: Path) -> None:
    result = check_with(spelling.dsn("127.0.0.1", guarded.port, ROLE, "qw_dsn"), tmp_path)
    line = assert_refused_without_the_password(result, spelling)
    assert RIGHT_PASSWORD not in result.output
    if spelling.reaches_server:
        assert f'password authentication failed for user "{ROLE}"' in line
    else:
        assert line.startswith("querywarden: error: invalid DSN"), line


# --- the masking itself -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://app:Left1/Right1@db.internal:5432/app", "postgresql://app:***@db.internal:5432/app"),
        ("postgresql://app:Spa3 ce3@db.internal/app", "postgresql://app:***@db.internal/app"),
        ("postgresql://app:Bad4%zzEsc4@db.internal/app", "postgresql://app:***@db.internal/app"),
        ("postgresql://app:a/b?c@d@db.internal/app", "postgresql://app:***@db.internal/app"),
        ("postgresql://app@db.internal/app?password=Qry8/&Pw8&sslmode=disable",
         "postgresql://app@db.internal/app?password=***&sslmode=disable"),
        ("postgresql://app@db.internal/app?sslpassword=Key9&sslmode=require", "postgresql://app@db.internal/app?sslpassword=***&sslmode=require"),
        ("host=db.internal password='Kv10''s Sp&c10' dbname=app", "host=db.internal password=*** dbname=app"),
        ("host=db.internal password='Kv11\\'s Sp\\\\ce11' dbname=app", "host=db.internal password=*** dbname=app"),
        ("host=db.internal password = 'Kv13 Pw13", "host=db.internal password = ***"),
        # nothing that is not a password is masked
        ("postgresql://db.internal:5432/app?application_name=me@ci", "postgresql://db.internal:5432/app?application_name=me@ci"),
        ("postgresql://app:pw@db.internal/app?application_name=me@ci", "postgresql://app:***@db.internal/app?application_name=me@ci"),
        ("postgresql://app%40corp:pw@db.internal/app", "postgresql://app%40corp:***@db.internal/app"),
        ("host=db.internal user=app dbname=app", "host=db.internal user=app dbname=app"),
    ],
)
def test_a_dsn_is_shown_with_only_its_password_masked(dsn: str, shown: str) -> None:
    assert mask_dsn(dsn) == shown


def test_a_message_keeps_the_punctuation_around_a_masked_dsn() -> None:
    message = "invalid DSN 'host=h password=***': cannot connect to postgresql://u@h/db?password=***: refused"
    assert mask_dsn(message) == message


@pytest.mark.parametrize(
    ("dsn", "message", "cleaned"),
    [
        # libpq quotes the token it could not parse: a piece of the password
        ("host=h password='Kv10''s Sp&c10' dbname=app", 'missing "=" after "\'s" in connection info string',
         'missing "=" after "***" in connection info string'),
        ("postgresql://u:Bad4%zzEsc4@h/db", 'invalid percent-encoded token: "Bad4%zzEsc4"', 'invalid percent-encoded token: "***"'),
        ("postgresql://u:pa/s?s4@h/db", 'missing key/value separator "=" in URI query parameter: "s4@h/db"',
         'missing key/value separator "=" in URI query parameter: "***"'),
        # the password as libpq decoded it
        ("postgresql://u:" + quote(ENCODED, safe="") + "@h/db", f"echo {ENCODED} end", "echo *** end"),
        ("host=h password='Kv11\\'s Sp\\\\ce11'", "echo Kv11's Sp\\ce11 end", "echo *** end"),
        # quoted tokens that are not the password stay
        ("postgresql://u:pw-1@h/db", 'connection to server at "h", port 5432 failed', 'connection to server at "h", port 5432 failed'),
    ],
)
def test_scrub_removes_every_spelling_and_piece_of_the_password(dsn: str, message: str, cleaned: str) -> None:
    assert scrub(message, dsn) == cleaned


def test_a_password_with_a_slash_is_refused_before_libpq_misreads_it() -> None:
    """libpq ends the host at the `/`: the password's halves would show as port and database name."""
    from querywarden.database import dbname_of, with_dbname

    for call in (lambda: dbname_of("postgresql://app:Left1/Right1@h/db"), lambda: with_dbname("postgresql://app:Left1/Right1@h/db", "x")):
        with pytest.raises(ConfigError) as caught:
            call()
        assert "percent-encode it as %2F" in str(caught.value)
        assert "Left1" not in str(caught.value) and "Right1" not in str(caught.value)
    assert dbname_of("postgresql://app:Left1%2FRight1@h/db") == "db"
