"""Which bank a member of bank staff works for.

Risk reviewers, risk approvers and operations admins each belong to one bank and see only that
bank's programs, lines, loans, cases and audit rows (``lending.selectors.scope``). The
membership lives here, not on the user row, because banks are lending's and ``orders`` (where
users live) knows nothing of them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .credit import Bank


class BankMembership(models.Model):
    """One staff user's bank. A staff user without one sees no bank's rows at all."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="bank_membership",
    )
    bank = models.ForeignKey(Bank, on_delete=models.PROTECT, related_name="staff")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("bank membership")
        verbose_name_plural = _("bank memberships")

    def __str__(self) -> str:
        return f"user {self.user_id} of bank {self.bank_id}"
