"""Back-office pages for lending.

Programs and credit lines are changed only through ``lending.services.lines``, so every change
made here is validated under a row lock and written to the audit trail like one made through the
API. Their forms run the same validation first for inline field errors; a change that became
invalid in the meantime (say, a limit cut while loans were approved) is refused with a message.
Loans, decisions, reviews, the audit trail and the ledger are read-only here: they change only
through their services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from orders.models import User
from scf.errors import ApplicationError, Conflict

from .models import (
    AuditLog,
    Bank,
    BankMembership,
    CreditLine,
    Decision,
    JournalEntry,
    JournalLine,
    Loan,
    Program,
    Review,
)
from .selectors.audit import NAMERS, object_type_name
from .services.lines import (
    credit_line_create,
    credit_line_freeze,
    credit_line_unfreeze,
    credit_line_update,
    program_create,
    program_update,
)
from .services.program_checks import (
    LINE_CHECKS,
    PROGRAM_CHECKS,
    PROGRAM_CREATE_ONLY,
    credit_line_validate,
    program_validate,
)
from .views.words.audit import AUDIT_ACTIONS, audit_action


def _changes(form: forms.ModelForm, allowed: Iterable[str], *, only_changed: bool) -> dict:
    """The form's cleaned values for ``allowed`` fields (only those the user changed, if asked)."""
    names = form.changed_data if only_changed else list(form.cleaned_data)
    return {name: form.cleaned_data[name] for name in names if name in allowed}


def _form_errors(form: forms.ModelForm, check: Callable[[], Any]) -> None:
    """Run a service validation and show its errors on the form's fields."""
    try:
        check()
    except ApplicationError as exc:
        if not exc.fields:
            raise forms.ValidationError(exc.detail) from None
        for field, errors in exc.fields.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)


class ProgramAdminForm(forms.ModelForm):
    class Meta:
        model = Program
        fields = ["bank", "enterprise", *PROGRAM_CREATE_ONLY, *PROGRAM_CHECKS]

    def clean(self) -> dict[str, Any]:
        super().clean()
        changing = self.instance.pk is not None
        changes = _changes(self, PROGRAM_CHECKS, only_changed=changing)
        _form_errors(self, lambda: program_validate(program=self.instance, changes=changes))
        return self.cleaned_data


class CreditLineAdminForm(forms.ModelForm):
    class Meta:
        model = CreditLine
        fields = ["agent", "program", *LINE_CHECKS]

    def clean(self) -> dict[str, Any]:
        super().clean()
        changing = self.instance.pk is not None
        changes = _changes(self, LINE_CHECKS, only_changed=changing)
        _form_errors(self, lambda: credit_line_validate(line=self.instance, changes=changes))
        return self.cleaned_data


class ServiceAdmin(admin.ModelAdmin):
    """Saves through services; a service refusal (a race past the form's checks) is a message."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ApplicationError as exc:
            self.message_user(
                request, _("Not saved: %(detail)s") % {"detail": exc.detail}, messages.ERROR
            )
            return HttpResponseRedirect(request.get_full_path())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting would bypass the audit trail; suspend a program or freeze a line instead.
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInlineMixin:
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Bank)
class BankAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "settlement_account_no", "created_at"]
    search_fields = ["code", "name"]


@admin.register(BankMembership)
class BankMembershipAdmin(admin.ModelAdmin):
    """Which bank each member of bank staff works for (``lending.selectors.scope``): without
    one a staff user sees nothing."""

    list_display = ("user", "bank", "created_at")
    list_filter = ("bank",)
    search_fields = ("user__username",)
    raw_id_fields = ("user",)


@admin.register(Program)
class ProgramAdmin(ServiceAdmin):
    form = ProgramAdminForm
    list_display = [
        "code",
        "name",
        "bank",
        "enterprise",
        "status",
        "currency",
        "limit",
        "outstanding_principal",
        "reserved",
        "available",
    ]
    list_filter = ["status", "currency", "bank", "day_count"]
    search_fields = ["code", "name", "enterprise__code", "enterprise__name"]
    list_select_related = ["bank", "enterprise"]
    autocomplete_fields = ["enterprise"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fixed = ["outstanding_principal", "reserved", "created_at"]
        return [*fixed, "bank", "enterprise", *PROGRAM_CREATE_ONLY] if obj else fixed

    def save_model(self, request: HttpRequest, obj: Program, form: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if change:
            program_update(
                actor=actor, program=obj, **_changes(form, PROGRAM_CHECKS, only_changed=True)
            )
            return
        allowed = [*PROGRAM_CHECKS, *PROGRAM_CREATE_ONLY]
        fields = _changes(form, allowed, only_changed=False)
        created = program_create(actor=actor, bank=obj.bank, enterprise=obj.enterprise, **fields)
        obj.pk, obj.created_at = created.pk, created.created_at


class FreezeActionForm(helpers.ActionForm):
    reason = forms.CharField(
        required=False,
        max_length=500,
        label=_("Reason (freeze/unfreeze)"),
        help_text=_("Left blank: a fixed text naming you."),
    )


@admin.register(CreditLine)
class CreditLineAdmin(ServiceAdmin):
    form = CreditLineAdminForm
    action_form = FreezeActionForm
    actions = ["freeze_lines", "unfreeze_lines"]
    list_display = [
        "agent",
        "program",
        "limit",
        "outstanding_principal",
        "reserved",
        "available",
        "risk_grade",
        "frozen",
        "updated_at",
    ]
    list_filter = ["frozen", "risk_grade", "program"]
    search_fields = ["agent__code", "agent__name", "program__code"]
    list_select_related = ["agent", "program"]
    autocomplete_fields = ["agent", "program"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fixed = ["outstanding_principal", "reserved", "frozen", "frozen_reason", "created_at"]
        return [*fixed, "updated_at", "agent", "program"] if obj else fixed

    def save_model(self, request: HttpRequest, obj: CreditLine, form: Any, change: bool) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if change:
            credit_line_update(
                actor=actor, line=obj, **_changes(form, LINE_CHECKS, only_changed=True)
            )
            return
        created = credit_line_create(
            actor=actor,
            agent=obj.agent,
            program=obj.program,
            limit=form.cleaned_data["limit"],
            risk_grade=form.cleaned_data["risk_grade"],
        )
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at

    def _set_frozen(
        self, request: HttpRequest, lines: QuerySet[CreditLine], service: Callable, verb: str
    ) -> None:
        """One service call (own transaction, own row lock) per line; lines already so are skipped."""
        reason = request.POST.get("reason", "").strip()
        reason = reason or f"{verb} in the admin by {request.user.get_username()}"
        done, skipped = 0, 0
        for line in lines:
            try:
                service(actor=request.user, line=line, reason=reason)
                done += 1
            except Conflict:
                skipped += 1
        template = (
            gettext("Frozen: %(done)s line(s); already frozen: %(skipped)s.")
            if verb == "Frozen"
            else gettext("Unfrozen: %(done)s line(s); already unfrozen: %(skipped)s.")
        )
        self.message_user(request, template % {"done": done, "skipped": skipped})

    @admin.action(description=_("Freeze selected lines"))
    def freeze_lines(self, request: HttpRequest, queryset: QuerySet[CreditLine]) -> None:
        self._set_frozen(request, queryset, credit_line_freeze, "Frozen")

    @admin.action(description=_("Unfreeze selected lines"))
    def unfreeze_lines(self, request: HttpRequest, queryset: QuerySet[CreditLine]) -> None:
        self._set_frozen(request, queryset, credit_line_unfreeze, "Unfrozen")


class DecisionInline(ReadOnlyInlineMixin, admin.StackedInline):
    model = Decision


@admin.register(Loan)
class LoanAdmin(ReadOnlyAdmin):
    inlines = [DecisionInline]
    list_display = [
        "reference",
        "agent",
        "program",
        "status",
        "principal",
        "outstanding_principal",
        "days_past_due",
        "due_date",
        "requested_at",
    ]
    list_filter = ["status", "program"]
    search_fields = ["reference", "order__external_id", "agent__code", "agent__name"]
    list_select_related = ["agent", "program", "order"]
    date_hierarchy = "requested_at"


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["loan", "outcome", "engine_version", "decided_at"]
    list_filter = ["outcome", "engine_version"]
    search_fields = ["loan__reference"]
    list_select_related = ["loan"]


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    list_display = ["id", "loan", "kind", "status", "claimed_by", "created_at", "expires_at"]
    list_filter = ["kind", "status"]
    search_fields = ["loan__reference"]
    list_select_related = ["loan", "claimed_by"]


class AuditActionFilter(admin.SimpleListFilter):
    title = _("action")
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return sorted(((code, str(name)) for code, name in AUDIT_ACTIONS.items()), key=_second)

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditLog]) -> QuerySet[AuditLog]:
        return queryset.filter(action=self.value()) if self.value() else queryset


class AuditObjectFilter(admin.SimpleListFilter):
    title = _("object")
    parameter_name = "object_type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return sorted(((code, _type_name(code)) for code in NAMERS), key=_second)

    def queryset(self, request: HttpRequest, queryset: QuerySet[AuditLog]) -> QuerySet[AuditLog]:
        return queryset.filter(object_type=self.value()) if self.value() else queryset


def _second(pair: tuple[str, str]) -> str:
    return pair[1]


def _type_name(object_type: str) -> str:
    return str(capfirst(object_type_name(object_type)))


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["when", "who", "action_name", "object_name"]
    list_filter = [AuditActionFilter, AuditObjectFilter]
    search_fields = ["actor_label", "object_id", "note"]
    date_hierarchy = "created_at"

    @admin.display(description=_("When"), ordering="created_at")
    def when(self, row: AuditLog) -> Any:
        return row.created_at

    @admin.display(description=_("Who"), ordering="actor_label")
    def who(self, row: AuditLog) -> str:
        return row.actor_label

    @admin.display(description=_("Action"), ordering="action")
    def action_name(self, row: AuditLog) -> str:
        return audit_action(row.action)

    @admin.display(description=_("Object"), ordering="object_type")
    def object_name(self, row: AuditLog) -> str:
        return f"{_type_name(row.object_type)} #{row.object_id}"


class JournalLineInline(ReadOnlyInlineMixin, admin.TabularInline):
    model = JournalLine


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    inlines = [JournalLineInline]
    list_display = ["id", "kind", "business_date", "currency", "loan", "program", "posted_at"]
    list_filter = ["kind", "currency"]
    search_fields = ["idempotency_key", "loan__reference"]
    list_select_related = ["loan", "program"]


@admin.register(JournalLine)
class JournalLineAdmin(ReadOnlyAdmin):
    list_display = ["id", "entry", "account", "loan", "currency", "debit", "credit"]
    list_filter = ["account", "currency"]
    search_fields = ["entry__idempotency_key", "loan__reference"]
    list_select_related = ["entry", "loan"]


# The tripartite pages register themselves on import (they build on ReadOnlyAdmin above).
from . import admin_tripartite  # noqa: E402, F401
