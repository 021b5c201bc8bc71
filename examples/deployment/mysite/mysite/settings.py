"""Settings of the deployment example (docs/deployment.md): several meltemi instances behind nginx share
one PostgreSQL database and one Redis, so any instance serves any logged-in user.

Everything that differs between machines comes from the environment (the systemd unit's
EnvironmentFile, the container's -e options): nothing here names a host.
"""

import os

SECRET_KEY = os.environ["MYSITE_SECRET_KEY"]  # the same on every instance: it signs the session cookies
DEBUG = False
ALLOWED_HOSTS = os.environ.get("MYSITE_ALLOWED_HOSTS", "localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

# One database for every instance (psycopg 3). CONN_MAX_AGE keeps each handler thread's connection
# open between requests; CONN_HEALTH_CHECKS replaces one the database closed (a PostgreSQL restart).
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("MYSITE_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MYSITE_DB_PORT", "5432"),
        "NAME": os.environ.get("MYSITE_DB_NAME", "mysite"),
        "USER": os.environ.get("MYSITE_DB_USER", "mysite"),
        "PASSWORD": os.environ.get("MYSITE_DB_PASSWORD", ""),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}

# One cache for every instance: Django's own Redis backend (the `redis` package).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ.get("MYSITE_REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
}

# Sessions written through to the database and read from Redis: a Redis restart loses no login.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

# nginx terminates TLS and says so in X-Forwarded-Proto; meltemi believes it only from the peers
# its --forwarded-allow-ips lists (loopback and Unix sockets by default).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
USE_TZ = True
