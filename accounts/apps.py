from typing import Any

from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def create_cache_table(sender: AppConfig, using: str, **kwargs: Any) -> None:
    """`migrate` also makes the database cache's table (CACHE_URL=db://…, the embedded default),
    so a first run needs no extra step; with Redis it does nothing."""
    call_command("createcachetable", database=using, verbosity=0)


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from accounts.sessions import stamp_session

        user_logged_in.connect(stamp_session, dispatch_uid="accounts.stamp_session")
        post_migrate.connect(create_cache_table, sender=self, dispatch_uid="accounts.cache")
