"""Settings of the benchmark's Django project: `startproject` defaults, DEBUG off.

BENCH_DB=postgres switches the database to the throwaway PostgreSQL cluster the
harness starts (BENCH_PG_PORT); otherwise SQLite in BENCH_WORK.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/meltemi-bench"))

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "benchproj",
]
if os.environ.get("BENCH_SERVER") == "bolt":
    INSTALLED_APPS.append("django_bolt")
    BOLT_API = ["benchproj.bolt_api:api"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "benchproj.urls"
WSGI_APPLICATION = "benchproj.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("BENCH_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "bench",
            "USER": "bench",
            "PASSWORD": "bench",
            "HOST": "127.0.0.1",
            "PORT": os.environ.get("BENCH_PG_PORT", "20432"),
            "CONN_MAX_AGE": 60,
        }
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": WORK / "bench.sqlite3"}}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = WORK / "static"
