"""Back-office pages for the tripartite agreement: terms, agreements, margin, goods, claims.

Terms, agreements and terms changes are written through ``lending.services.tripartite_terms``
(audit, locks): terms are set up here and their plain fields changed; caps and ratios are only
proposed here (a ``TermsChange``) and approved or rejected by another person with the list's
actions. Margin, holds, releases and claims are read-only: they move only through their
services (row locks, ledger postings, audit).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from scf.errors import ApplicationError

from .admin import ReadOnlyAdmin, ServiceAdmin
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
from .services.agreements import agreement_sign
from .services.tripartite_terms import (
    DIRECT,
    MAKER_CHECKED,
    terms_change_approve,
    terms_change_propose,
    terms_change_reject,
    terms_create,
    terms_update,
)


@admin.register(TripartiteTerms)
class TripartiteTermsAdmin(ServiceAdmin):
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
    fields = ["program", *DIRECT, *MAKER_CHECKED]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Caps and ratios change through a terms change, approved by another person.
        return ["program", *MAKER_CHECKED] if obj else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor: Any = request.user
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            terms_update(actor=actor, program=obj.program, changes=changes)
            return
        values = {n: form.cleaned_data[n] for n in (*DIRECT, *MAKER_CHECKED)}
        created = terms_create(actor=actor, program=form.cleaned_data["program"], values=values)
        obj.pk = created.pk


@admin.register(Agreement)
class AgreementAdmin(ServiceAdmin):
    list_display = ["program", "agent", "version", "signed_on", "agent_cap", "agent_cap_used"]
    list_filter = ["status"]
    fields = ["program", "agent", "signed_on", "agent_cap", "document_reference"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None  # signed once; a new version is a new agreement

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        created = agreement_sign(
            actor=request.user,  # type: ignore[arg-type]
            program=data["program"],
            agent=data["agent"],
            signed_on=data["signed_on"],
            agent_cap=data["agent_cap"],
            document_reference=data.get("document_reference") or "",
        )
        obj.pk = created.pk


class TermsChangeForm(forms.ModelForm):
    class Meta:
        model = TermsChange
        fields = ["program", "agreement", "changes", "reason"]
        help_texts = {
            "changes": _('Field names and new values, e.g. {"margin_ratio": "0.25"}'),
        }


@admin.register(TermsChange)
class TermsChangeAdmin(ServiceAdmin):
    form = TermsChangeForm
    list_display = ["id", "program", "agreement", "status", "proposed_by", "decided_by"]
    list_filter = ["status"]
    actions = ["approve", "reject"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        created = terms_change_propose(
            actor=request.user,  # type: ignore[arg-type]
            program=data["program"],
            agreement=data.get("agreement"),
            changes=data["changes"] or {},
            reason=data.get("reason") or "",
        )
        obj.pk = created.pk

    def _each(self, request: HttpRequest, queryset: QuerySet[TermsChange], act: Any) -> None:
        for change in queryset:
            try:
                act(change)
            except ApplicationError as exc:
                self.message_user(request, f"{change}: {exc.detail}", messages.ERROR)

    @admin.action(description=_("Approve the selected changes (another person's)"))
    def approve(self, request: HttpRequest, queryset: QuerySet[TermsChange]) -> None:
        user: Any = request.user
        self._each(request, queryset, lambda c: terms_change_approve(actor=user, change_id=c.pk))

    @admin.action(description=_("Reject the selected changes"))
    def reject(self, request: HttpRequest, queryset: QuerySet[TermsChange]) -> None:
        user: Any = request.user
        reason = f"rejected by {user.get_username()}"
        self._each(
            request,
            queryset,
            lambda c: terms_change_reject(actor=user, change_id=c.pk, reason=reason),
        )


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
