"""The Django project every Django-based server of the benchmark serves (bench/apps/)."""
