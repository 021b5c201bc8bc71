from django.apps import AppConfig


class NotesConfig(AppConfig):
    name = "notes"

    def ready(self):
        from .sample import ensure_sample_file

        # The file behind /download/ is generated (deterministically) at
        # startup rather than committed, so the repository stays small.
        ensure_sample_file()
