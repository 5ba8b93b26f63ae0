from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LendingConfig(AppConfig):
    name = "lending"
    verbose_name = _("Lending")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # scf.metrics knows no app's models: lending reports its own figures.
        from scf.metrics import business_collector_register

        from .metrics import LendingCollector

        business_collector_register("lending", LendingCollector())
