"""Flask-SQLAlchemy as its users set it up: the app configured with `querywarden_db_url`, its
`db.session` captured. A real pytest session (pytester) on the real PostgreSQL."""

from __future__ import annotations

import textwrap

import flask_sqlalchemy  # noqa: F401  (imported once here: pytester's inner sessions drop what they import)
import pytest

from test_plugin import INNER_ADDOPTS
from test_plugin_transactions import DATA, SCHEMA, _rows, _statements, _walk

pytest_plugins = ["pytester"]

APP = """\
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    db = SQLAlchemy()


    class Note(db.Model):
        __tablename__ = "notes"
        id = db.Column(db.Integer, primary_key=True)
        owner = db.Column(db.Integer, nullable=False)
        body = db.Column(db.String, nullable=False)


    def create_app(url):
        app = Flask(__name__)
        app.config["SQLALCHEMY_DATABASE_URI"] = url
        db.init_app(app)
        return app


    def notes_of(owner):
        return db.session.scalars(db.select(Note).where(Note.owner == owner).order_by(Note.id)).all()
    """

CONFTEST = """\
    import pytest

    from app import create_app, db


    @pytest.fixture
    def app(querywarden_db_url):
        app = create_app(querywarden_db_url)
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()
    """

TESTS = """\
    import pytest

    from app import Note, db, notes_of


    @pytest.mark.hot_path(calls_per_minute=3000)
    def test_notes_of_an_owner(querywarden, app):
        db.session.add_all([Note(owner=8888, body=f"flask {n}") for n in range(12)])
        db.session.commit()  # a real commit, on this test's own clone
        with querywarden.capture(db.session):
            notes = notes_of(8888)
        assert len(notes) == 12
    """


def test_a_flask_sqlalchemy_app_on_querywarden_db_url_is_guarded(pytester: pytest.Pytester, pg_dsn: str) -> None:
    (pytester.path / "schema.sql").write_text(SCHEMA)
    (pytester.path / "data.sql").write_text(DATA)
    (pytester.path / "app.py").write_text(textwrap.dedent(APP))
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (pytester.path / "tests" / "test_paths.py").write_text(textwrap.dedent(TESTS))
    (pytester.path / "pytest.ini").write_text(textwrap.dedent(f"""\
        [pytest]
        addopts = {INNER_ADDOPTS}
        pythonpath = .
        querywarden_dsn = {pg_dsn}
        querywarden_schema = schema.sql
        querywarden_seed = data.sql
        querywarden_baselines = baselines
        """))
    result = pytester.runpytest("--querywarden-update")
    result.assert_outcomes(passed=1)
    (notes,) = _statements(pytester.path, "test_notes_of_an_owner")
    scans = [node for node in _walk(notes["plan"]) if node.get("relation") == "notes" or node.get("index")]  # type: ignore[arg-type]
    assert 12.0 in [_rows(node) for node in scans]

    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["querywarden: passed: 1 guarded tests (*)"])
