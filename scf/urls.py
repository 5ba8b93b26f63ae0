from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import openapi  # noqa: F401  (registers the Api-Key scheme with drf-spectacular)
from .health import healthz
from .metrics import metrics_view

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    # One password-change form for everyone: the counted one (orders.views.PasswordChangeView).
    path(
        "admin/password_change/",
        RedirectView.as_view(pattern_name="password_change"),
        name="admin-password-change",
    ),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script): no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("lending.urls")),
    # Goods releases: the enterprise's system asks with its integration key too.
    path("api/v1/", include("integrations.tripartite.urls")),
    path("api/v1/integrations/", include("integrations.urls")),
    path("api/v1/", include("integrations.bank.files.apis")),
    # The web front ends: accounts, then the portal (/), dashboard (/dashboard/), reviews.
    path("accounts/", include("orders.web_urls")),
    path("", include("integrations.bank.files.web_urls")),
    path("", include("lending.web_urls")),
]

handler403 = "orders.views.permission_denied"
handler404 = "orders.views.page_not_found"
