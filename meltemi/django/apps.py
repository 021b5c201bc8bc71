from django.apps import AppConfig


class MeltemiConfig(AppConfig):
    name = "meltemi.django"
    # The default label would be "django", which reads as Django's own.
    label = "meltemi"
    verbose_name = "meltemi"
