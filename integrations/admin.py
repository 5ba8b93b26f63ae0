from django.contrib import admin

from .models import OrderFeedSource


@admin.register(OrderFeedSource)
class OrderFeedSourceAdmin(admin.ModelAdmin):
    list_display = ["enterprise", "url", "enabled", "cursor", "last_polled_at", "last_error"]
    list_filter = ["enabled"]
