"""OpenAPI description of the integration key (``Authorization: Api-Key <key>``).

Imported by ``scf.urls`` so drf-spectacular knows it before any schema is generated; the target
is named by path so the project package does not import the integrations app.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.feed.auth.ApiKeyAuthentication"
    name = "integrationApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "The enterprise's integration key: `Api-Key <key>`.",
        }
