from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import (
    Agent,
    AgentRelationship,
    CoreEnterprise,
    FeedEvent,
    SalesOrder,
    SalesOrderLine,
    User,
)
from .services.parties import (
    IntegrationCredentials,
    _issue_credentials,
    enterprise_credentials_rotate,
)


def _show_once(
    request: HttpRequest, enterprise: CoreEnterprise, creds: IntegrationCredentials
) -> None:
    messages.warning(
        request,
        f"{enterprise.code}: webhook secret {creds.webhook_secret} / API key {creds.api_key} "
        "(shown once: store them now).",
    )


@admin.register(CoreEnterprise)
class CoreEnterpriseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "uscc", "status", "credentials_rotated_at"]
    search_fields = ["code", "name", "uscc"]
    list_filter = ["status"]
    readonly_fields = ["credentials_rotated_at", "api_key_prefix", "created_at"]
    actions = ["rotate_credentials"]

    def save_model(
        self, request: HttpRequest, obj: CoreEnterprise, form: Any, change: bool
    ) -> None:
        creds = None if change else _issue_credentials(obj)
        super().save_model(request, obj, form, change)
        if creds:
            _show_once(request, obj, creds)

    @admin.action(description="Rotate webhook secret and API key")
    def rotate_credentials(self, request: HttpRequest, queryset: QuerySet[CoreEnterprise]) -> None:
        for enterprise in queryset:
            _show_once(request, enterprise, enterprise_credentials_rotate(enterprise=enterprise))


class RelationshipInline(admin.TabularInline):
    model = AgentRelationship
    extra = 0


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "uscc", "status", "email"]
    search_fields = ["code", "name", "uscc"]
    list_filter = ["status"]
    inlines = [RelationshipInline]


class LineInline(admin.TabularInline):
    model = SalesOrderLine
    extra = 0
    readonly_fields = ["line_no", "sku", "quantity", "unit_price", "amount"]
    can_delete = False


@admin.register(SalesOrder)
class SalesOrderAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "enterprise",
        "agent",
        "amount",
        "currency",
        "status",
        "order_date",
        "version",
    ]
    list_filter = ["status", "enterprise"]
    search_fields = ["external_id", "agent__code"]
    list_select_related = ["enterprise", "agent"]
    readonly_fields = ["raw_payload", "created_at", "updated_at"]
    inlines = [LineInline]


@admin.register(FeedEvent)
class FeedEventAdmin(admin.ModelAdmin):
    list_display = [
        "received_at",
        "enterprise",
        "channel",
        "event_id",
        "outcome",
        "error_code",
        "external_id",
        "row_count",
    ]
    list_filter = ["outcome", "channel", "enterprise"]
    search_fields = ["event_id", "external_id"]
    list_select_related = ["enterprise"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "role", "agent", "enterprise", "is_active"]
    list_filter = ["role", "is_active"]
    fieldsets = (
        *(BaseUserAdmin.fieldsets or ()),
        ("Role", {"fields": ("role", "agent", "enterprise")}),
    )
    add_fieldsets = (
        *BaseUserAdmin.add_fieldsets,
        ("Role", {"fields": ("role", "agent", "enterprise")}),
    )
