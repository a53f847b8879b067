from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """What other systems send in: Square's notifications and the POS's checks."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "connectors"
