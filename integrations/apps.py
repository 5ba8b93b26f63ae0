from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # scf.metrics knows no app's models: the file rail reports its own figures.
        from lending.selectors.audit import audit_bank_path_register
        from scf.metrics import business_collector_register

        from .bank_models import UnappliedCredit
        from .metrics import BankFilesCollector

        business_collector_register("integrations-bank-files", BankFilesCollector())
        # A bank's operations staff read the audit trail of their bank's unapplied credits.
        audit_bank_path_register("integrations.unappliedcredit", UnappliedCredit, "bank")
