"""Back-office pages for the tripartite agreement: terms, agreements, margin, goods, claims.

Everything here is read-only: margin, holds, releases and claims move only through their
services (row locks, ledger postings, audit), and caps and ratios change only through a
maker-checker ``TermsChange``.
"""

from __future__ import annotations

from django.contrib import admin

from .admin import ReadOnlyAdmin
from .models import (
    Agreement,
    GoodsHold,
    GuaranteeClaim,
    MarginAccount,
    MarginMovement,
    MarginWithdrawal,
    Release,
    ReleaseBreach,
    TermsChange,
    TripartiteTerms,
)


@admin.register(TripartiteTerms)
class TripartiteTermsAdmin(ReadOnlyAdmin):
    list_display = [
        "program",
        "enabled",
        "margin_ratio",
        "security_ratio",
        "guarantee_type",
        "trigger_dpd",
        "program_cap",
        "program_cap_used",
        "version",
    ]


@admin.register(Agreement)
class AgreementAdmin(ReadOnlyAdmin):
    list_display = ["program", "agent", "version", "signed_on", "agent_cap", "agent_cap_used"]
    list_filter = ["status"]


@admin.register(TermsChange)
class TermsChangeAdmin(ReadOnlyAdmin):
    list_display = ["id", "program", "agreement", "status", "proposed_by", "decided_by"]
    list_filter = ["status"]


class MovementInline(admin.TabularInline):
    model = MarginMovement
    extra = 0
    can_delete = False
    fields = ("created_at", "kind", "amount", "loan", "reference", "source")
    readonly_fields = fields

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(MarginAccount)
class MarginAccountAdmin(ReadOnlyAdmin):
    list_display = ["reference", "program", "agent", "free", "committed", "security"]
    search_fields = ["reference", "agent__code"]
    inlines = [MovementInline]


@admin.register(MarginWithdrawal)
class MarginWithdrawalAdmin(ReadOnlyAdmin):
    list_display = ["end_to_end_id", "account", "amount", "status", "requested_by", "approved_by"]
    list_filter = ["status"]


@admin.register(GoodsHold)
class GoodsHoldAdmin(ReadOnlyAdmin):
    list_display = ["loan", "agent", "order_value", "margin", "released_value", "status"]
    list_filter = ["status"]


@admin.register(Release)
class ReleaseAdmin(ReadOnlyAdmin):
    list_display = ["id", "hold", "value", "requested_by_kind", "status", "created_at"]
    list_filter = ["status"]


@admin.register(ReleaseBreach)
class ReleaseBreachAdmin(ReadOnlyAdmin):
    list_display = ["id", "order", "agent", "reported_value", "released_value", "status"]
    list_filter = ["status"]


@admin.register(GuaranteeClaim)
class GuaranteeClaimAdmin(ReadOnlyAdmin):
    list_display = ["reference", "loan", "enterprise", "amount", "paid", "status", "raised_on"]
    list_filter = ["status"]
