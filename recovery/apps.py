from django.apps import AppConfig


class RecoveryConfig(AppConfig):
    name = "recovery"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Cases hold the customer's data too: their export section and erase step, and their
        # free text goes with the organization's retention.
        from recovery import privacy, retention

        privacy.register()
        retention.register()
