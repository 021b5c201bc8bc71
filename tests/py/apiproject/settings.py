import os

BASE = os.path.dirname(os.path.abspath(__file__))
SECRET_KEY = "apiproject-tests-only"
DEBUG = os.environ.get("APIPROJECT_DEBUG") == "1"
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "apiproject",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "apiproject.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("APIPROJECT_DB", os.path.join(BASE, "..", "..", "..", "build", "apiproject.sqlite3")),
        "CONN_MAX_AGE": int(os.environ.get("APIPROJECT_CONN_MAX_AGE", "0")),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
FILE_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
DATA_UPLOAD_MAX_NUMBER_FIELDS = 50
DATA_UPLOAD_MAX_NUMBER_FILES = 3
MELTEMI = {"API": "apiproject.api:api"}
