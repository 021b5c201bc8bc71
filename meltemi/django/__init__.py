"""meltemi's Django integration: add "meltemi.django" to INSTALLED_APPS.

It provides `python manage.py runmeltemi`, which serves the project's
WSGI_APPLICATION with the options of the `meltemi` command, also read from
the `MELTEMI` setting.
"""
