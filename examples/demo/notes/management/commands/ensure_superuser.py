"""Creates or updates a superuser non-interactively, so scripts can run it again and again."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Makes sure a superuser exists with the given username and password (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--email", default="admin@example.com")
        parser.add_argument(
            "--password-env",
            default="DEMO_ADMIN_PASSWORD",
            help="environment variable holding the password (default: %(default)s)",
        )
        parser.add_argument("--default-password", default="meltemi-demo")

    def handle(self, *args, username, email, password_env, default_password, **options):
        password = os.environ.get(password_env) or default_password
        User = get_user_model()
        user, created = User.objects.get_or_create(username=username, defaults={"email": email})
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"{'created' if created else 'updated'} superuser {username!r}")
