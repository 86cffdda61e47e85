SECRET_KEY = "querywarden-test-not-secret"
USE_TZ = True
INSTALLED_APPS = ["shop"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Nowhere: querywarden points the migrations at the template it builds.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "never_used",
        "HOST": "127.0.0.1",
        "PORT": "1",
        "USER": "nobody",
        "OPTIONS": {"service": "nowhere"},
    },
    "other": {"ENGINE": "django.db.backends.postgresql", "NAME": "never_used_either", "PORT": "1"},
}
