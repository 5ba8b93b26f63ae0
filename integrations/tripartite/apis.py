"""Goods releases over the API: the core enterprise (its admins' tokens or its sales system's
``Api-Key``) or the agent asks to release goods of a financed order; bank staff read them.

The view lives in integrations because an enterprise's system authenticates with its
integration key (``integrations.feed.auth``); the rule itself is ``lending.services.releases``.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lending.models import Release
from lending.selectors.goods import goods_hold_get, loan_for_goods, release_list
from lending.services.releases import release_request
from orders.models import Role
from orders.permissions import role_permission
from scf.api import Pagination
from scf.errors import NotFound
from scf.schema import AMOUNT_SCHEMA, errors, paginated

from ..feed.auth import ApiKeyAuthentication

MayAsk = role_permission(Role.AGENT, Role.ENTERPRISE_ADMIN, "integration")


class ReleaseOutput(serializers.ModelSerializer):
    class Meta:
        model = Release
        fields = [
            "id",
            "value",
            "lines",
            "requested_by_kind",
            "status",
            "reason",
            "releasable_at_request",
            "created_at",
        ]


ReleaseInput = inline_serializer(
    name="ReleaseInput",
    fields={
        "value": serializers.CharField(required=False, help_text='A value, e.g. "1000.00".'),
        "lines": serializers.ListField(
            child=inline_serializer(
                name="ReleaseLine",
                fields={"sku": serializers.CharField(), "quantity": serializers.CharField()},
            ),
            required=False,
        ),
    },
)
ReleaseCreated = inline_serializer(
    name="ReleaseCreated",
    fields={
        "release": ReleaseOutput(),
        "released_value": serializers.DecimalField(max_digits=18, decimal_places=2),
        "releasable_value": serializers.DecimalField(max_digits=18, decimal_places=2),
    },
)


def _loan(request: Request, loan_id: int) -> Any:
    loan = loan_for_goods(principal=request.user, loan_id=loan_id)
    if loan is None:
        raise NotFound("No such loan.")
    return loan


class LoanReleasesApi(APIView):
    authentication_classes = [ApiKeyAuthentication, *APIView.authentication_classes]

    def get_permissions(self) -> list[Any]:
        # Bank staff read; the enterprise (a person or its system) and the agent ask.
        if self.request.method == "POST":
            return [MayAsk()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="loans_releases_list",
        parameters=[OpenApiParameter("page", int)],
        responses={200: paginated(ReleaseOutput), **errors(401, 404)},
    )
    def get(self, request: Request, loan_id: int) -> Response:
        loan = _loan(request, loan_id)
        paginator = Pagination()
        page = paginator.paginate_queryset(release_list(loan=loan), request, view=self)
        return paginator.get_paginated_response(ReleaseOutput(page, many=True).data)

    @extend_schema(
        operation_id="loans_releases_create",
        request={"application/json": ReleaseInput},
        responses={201: ReleaseCreated, **errors(400, 401, 403, 404, 409, 422)},
        description=(
            'Send {"value": "1000.00"} or {"lines": [{"sku", "quantity"}]}. 201: authorised. '
            "409 release_exceeds_paid (with releasable_value, released_value, available_value): "
            "more than the agent has paid for; the refusal is kept. 409 no_goods_hold: not a "
            f"tripartite loan. Amounts: {AMOUNT_SCHEMA['pattern']}."
        ),
    )
    def post(self, request: Request, loan_id: int) -> Response:
        role = getattr(request.user, "role", None)
        loan = _loan(request, loan_id)
        data = request.data if isinstance(request.data, dict) else {}
        kind = "agent" if role == Role.AGENT else "enterprise"
        release = release_request(loan=loan, data=data, requested_by_kind=kind, actor=request.user)
        hold = goods_hold_get(loan=loan)
        assert hold is not None
        body = {
            "release": ReleaseOutput(release).data,
            "released_value": f"{hold.released_value:.2f}",
            "releasable_value": f"{hold.releasable_value:.2f}",
        }
        return Response(body, status=201)
