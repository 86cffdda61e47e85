"""Settings of the helpdesk example: one app, PostgreSQL through Django's psycopg 3 backend.

The database named here is the developer's own; under pytest the querywarden plugin points every
alias the tests use at a clone of the seeded template instead (see tests/conftest.py).
"""

import os

SECRET_KEY = "helpdesk-example-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["helpdesk"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("HELPDESK_DB_NAME", "helpdesk"),
        "HOST": os.environ.get("HELPDESK_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("HELPDESK_DB_PORT", "5432"),
        "USER": os.environ.get("HELPDESK_DB_USER", "postgres"),
        "PASSWORD": os.environ.get("HELPDESK_DB_PASSWORD", ""),
    }
}
