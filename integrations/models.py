"""Edge state: sources the platform polls for orders."""

from __future__ import annotations

from django.db import models

from orders.models import CoreEnterprise


class OrderFeedSource(models.Model):
    """A core enterprise's sales-system endpoint that we poll for orders with a cursor.

    The cursor is advanced in the same transaction that applies a page, so a crash between pages
    re-reads at most one page, and re-reading a page is harmless (versions make it idempotent).
    """

    enterprise = models.ForeignKey(
        CoreEnterprise, on_delete=models.CASCADE, related_name="feed_sources"
    )
    url = models.URLField(max_length=500)
    # Encrypted Authorization header value the sales system expects (optional).
    auth_header_encrypted = models.TextField(blank=True)
    cursor = models.CharField(max_length=500, blank=True)
    page_size = models.PositiveIntegerField(default=500)
    enabled = models.BooleanField(default=True)
    poll_interval_seconds = models.PositiveIntegerField(default=60)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.enterprise.code} <- {self.url}"
