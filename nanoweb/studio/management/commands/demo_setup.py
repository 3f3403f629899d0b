"""Make the embedded demo usable: an admin, and one simulator-backed account per provider."""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from nanoweb.providers.models import ProviderAccount
from nanoweb.providers.registry import ADAPTERS
from nanoweb.providers.simulator import base_url_for


class Command(BaseCommand):
    help = "Create the demo admin (printing its password once) and simulator-backed provider accounts."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--simulator-url", default=settings.SIMULATOR_URL)
        parser.add_argument("--simulator-key", default="sim-key")

    def handle(self, *args, username: str, simulator_url: str, simulator_key: str, **options):
        User = get_user_model()
        if not User.objects.filter(username=username).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(self.style.SUCCESS(
                f"\n  Demo admin created. Sign in as  {username}  /  {password}\n"
                "  (shown only now; change it with: .venv/bin/python manage.py changepassword admin)\n"
            ))  # fmt: skip
        else:
            self.stdout.write(f"Admin '{username}' exists (its password was printed when it was created).")
        for kind, adapter in ADAPTERS.items():
            base_url = base_url_for(simulator_url, kind, adapter.default_base_url)
            account, created = ProviderAccount.objects.get_or_create(
                name=f"{adapter.label} (simulator)",
                defaults={"kind": kind, "base_url": base_url, "api_key": simulator_key},
            )
            if created:
                self.stdout.write(f"Provider account '{account.name}' → {account.base_url}")
