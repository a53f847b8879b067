from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """What other systems send in: Square's notifications and the POS's checks."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "connectors"

    def ready(self) -> None:
        # What Square sent about a person is theirs too: cleared when they are erased.
        from connectors import privacy

        privacy.register()
