"""Create (or reset) the local demo login that `make run` prints."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create or reset a staff login for local use, and print it. Refuses when DJANGO_DEBUG is off."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")
        parser.add_argument(
            "--skip-if-debug-off", action="store_true", help="With debug off, say so and make nothing (make run)."
        )

    def handle(self, *args, username: str, password: str, skip_if_debug_off: bool, **options) -> None:
        if not settings.DEBUG and skip_if_debug_off:
            self.stdout.write("DJANGO_DEBUG is off: no demo login made (create one with manage.py createsuperuser).")
            return
        if not settings.DEBUG:
            raise CommandError("Refusing to create a demo login with a known password while DJANGO_DEBUG is off.")
        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        verb = "Created" if created else "Reset"
        self.stdout.write(f"{verb} demo login: username {username!r}, password {password!r} (staff, can use /admin/)")
