import os

from django.apps import AppConfig


class MeltemiConfig(AppConfig):
    name = "meltemi.django"
    # The default label would be "django", which reads as Django's own.
    label = "meltemi"
    verbose_name = "meltemi"
    # Django finds management commands by listing files under the app's path,
    # which it derives from the package's __path__. An editable install
    # (meson-python) gives packages a virtual __path__ with no files under
    # it, so point at the directory this file is in: the real one either way.
    path = os.path.dirname(os.path.abspath(__file__))
