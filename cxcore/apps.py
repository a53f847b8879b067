from django.apps import AppConfig


class CxcoreConfig(AppConfig):
    name = "cxcore"
    verbose_name = "Narrative"
    default_auto_field = "django.db.models.BigAutoField"
