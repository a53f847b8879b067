from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # What a partner answered may name the guest: an erasure clears it.
        from partners import privacy

        privacy.register()
