"""A small Django project exercising meltemi's typed API: models, an API with
every kind of parameter and response, and the project's own URLconf behind
it (the fall-through). Used in-process (meltemi.testing) and by servers."""
