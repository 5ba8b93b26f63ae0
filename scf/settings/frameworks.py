"""Configuration of the frameworks (Django REST framework, drf-spectacular): fixed values, no
defaults read from the environment (those live in ``base.py``, which imports these)."""

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "scf.tokens.FastTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "scf.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scf.api.exception_handler",
    # JSON with the nesting cap first; forms and multipart as DRF's defaults.
    "DEFAULT_PARSER_CLASSES": [
        "scf.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SCF order-to-loan API",
    "DESCRIPTION": "Supply-chain finance: order feed, quotes, financing, loans, reviews.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from drf-spectacular-sidecar's static files, pinned with the package.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # No online validator badge: it would send the schema's address to a third party.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scf.schema.document_body_limits",
    ],
    "ENUM_NAME_OVERRIDES": {
        "GradeEnum": "lending.models.credit.Grade",
        "ProgramStatusEnum": "lending.models.credit.ProgramStatus",
        "DecisionOutcomeEnum": "lending.models.loans.DecisionOutcome",
        "LoanStatusEnum": "lending.models.loans.LoanStatus",
        "OrderStatusEnum": "orders.models.OrderStatus",
        "RepaymentSourceEnum": "lending.models.movement.RepaymentSource",
        "MarginSourceEnum": "lending.models.margin.MarginSource",
    },
}
