from django.apps import AppConfig


class ImportsConfig(AppConfig):
    """Bringing a cafe's customers and history in from its POS's exports."""

    name = "imports"
    default_auto_field = "django.db.models.BigAutoField"
