from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # What a partner answered may name the guest: an erasure clears it, and retention
        # clears it once the incident is old enough.
        from partners import privacy, retention

        privacy.register()
        retention.register()
