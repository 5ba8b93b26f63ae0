"""Guarantee claims and release breaches over the API.

Claims: ``GET /claims/`` and ``GET /claims/{id}/`` for bank staff (all), enterprise admins (their
enterprise's) and agents (their loans'); ``POST /claims/{id}/accept/`` and
``POST /claims/{id}/dispute/`` ``{"reason"}`` for the enterprise's admins. Breaches:
``GET /breaches/`` for the same parties, ``POST /breaches/{id}/resolve/`` ``{"note"}`` for risk
staff. The rules are ``lending.services.claim_actions`` and ``lending.services.breaches``.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role
from orders.permissions import api_user, role_permission
from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed
from scf.schema import errors, paginated

from ..models import BreachStatus, ClaimStatus, GuaranteeClaim, ReleaseBreach
from ..selectors.goods import breach_list, breach_visible, claim_get, claim_list
from ..services.breaches import release_breach_resolve
from ..services.claim_actions import claim_accept, claim_dispute

EnterpriseAdmin = role_permission(Role.ENTERPRISE_ADMIN)
RiskOnly = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER)


class ClaimOutput(serializers.ModelSerializer):
    loan_reference = serializers.CharField(source="loan.reference", read_only=True)
    agent_code = serializers.CharField(source="agent.code", read_only=True)

    class Meta:
        model = GuaranteeClaim
        fields = [
            "id",
            "reference",
            "loan",
            "loan_reference",
            "program",
            "agent",
            "agent_code",
            "enterprise",
            "guarantee_type",
            "currency",
            "owed",
            "security_applied",
            "unreleased_value",
            "amount",
            "paid",
            "status",
            "raised_on",
            "window_ends_on",
            "dispute_reason",
            "accepted_at",
            "disputed_at",
            "paid_at",
            "escalated_at",
        ]


class BreachOutput(serializers.ModelSerializer):
    order_external_id = serializers.CharField(source="order.external_id", read_only=True)
    agent_code = serializers.CharField(source="agent.code", read_only=True)

    class Meta:
        model = ReleaseBreach
        fields = [
            "id",
            "loan",
            "order",
            "order_external_id",
            "agent",
            "agent_code",
            "enterprise",
            "order_status",
            "reported_value",
            "released_value",
            "excess_value",
            "lines",
            "detected_at",
            "status",
            "resolved_at",
            "note",
        ]


def _page(request: Request, view: APIView, rows: Any, serializer: Any) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(rows, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def _text(request: Request, name: str) -> str:
    data = request.data if isinstance(request.data, dict) else {}
    value = data.get(name, "")
    if not isinstance(value, str):
        raise ValidationFailed(f"Invalid {name}.", fields={name: ["Must be text."]})
    return value


def _status(request: Request, choices: list[str]) -> str | None:
    value = request.query_params.get("status")
    if value and value not in choices:
        raise ValidationFailed("Unknown status.", fields={"status": ["Unknown value."]})
    return value or None


class ClaimListApi(APIView):
    @extend_schema(
        operation_id="claims_list",
        parameters=[
            OpenApiParameter("status", str, enum=ClaimStatus.values),
            OpenApiParameter("page", int),
        ],
        responses={200: paginated(ClaimOutput), **errors(401, 404, 422)},
    )
    def get(self, request: Request) -> Response:
        status = _status(request, ClaimStatus.values)
        claims = claim_list(principal=api_user(request), status=status)
        return _page(request, self, claims, ClaimOutput)


def _claim(request: Request, claim_id: int) -> GuaranteeClaim:
    claim = claim_get(principal=api_user(request), claim_id=claim_id)
    if claim is None:
        raise NotFound("No such claim.")
    return claim


class ClaimDetailApi(APIView):
    @extend_schema(operation_id="claims_retrieve", responses={200: ClaimOutput, **errors(401, 404)})
    def get(self, request: Request, claim_id: int) -> Response:
        return Response(ClaimOutput(_claim(request, claim_id)).data)


class ClaimAcceptApi(APIView):
    permission_classes = [EnterpriseAdmin]

    @extend_schema(
        operation_id="claims_accept",
        request=None,
        responses={200: ClaimOutput, **errors(401, 403, 404, 409)},
    )
    def post(self, request: Request, claim_id: int) -> Response:
        claim = _claim(request, claim_id)
        return Response(ClaimOutput(claim_accept(claim_id=claim.pk, actor=api_user(request))).data)


class ClaimDisputeApi(APIView):
    permission_classes = [EnterpriseAdmin]

    @extend_schema(
        operation_id="claims_dispute",
        request={
            "application/json": inline_serializer(
                "ClaimDisputeInput", {"reason": serializers.CharField()}
            )
        },
        responses={200: ClaimOutput, **errors(401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, claim_id: int) -> Response:
        claim = _claim(request, claim_id)
        disputed = claim_dispute(
            claim_id=claim.pk, actor=api_user(request), reason=_text(request, "reason")
        )
        return Response(ClaimOutput(disputed).data)


class BreachListApi(APIView):
    @extend_schema(
        operation_id="breaches_list",
        parameters=[
            OpenApiParameter("status", str, enum=BreachStatus.values),
            OpenApiParameter("page", int),
        ],
        responses={200: paginated(BreachOutput), **errors(401, 404, 422)},
    )
    def get(self, request: Request) -> Response:
        status = _status(request, BreachStatus.values)
        breaches = breach_list(principal=api_user(request), status=status)
        return _page(request, self, breaches, BreachOutput)


class BreachResolveApi(APIView):
    permission_classes = [RiskOnly]

    @extend_schema(
        operation_id="breaches_resolve",
        request={
            "application/json": inline_serializer(
                "BreachResolveInput", {"note": serializers.CharField()}
            )
        },
        responses={200: BreachOutput, **errors(401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, breach_id: int) -> Response:
        if not breach_visible(principal=api_user(request), breach_id=breach_id):
            raise NotFound("No such breach.")
        breach = release_breach_resolve(
            breach_id=breach_id, actor=api_user(request), note=_text(request, "note")
        )
        return Response(BreachOutput(breach).data)


urlpatterns = [
    path("claims/", ClaimListApi.as_view(), name="claims-list"),
    path("claims/<int:claim_id>/", ClaimDetailApi.as_view(), name="claims-detail"),
    path("claims/<int:claim_id>/accept/", ClaimAcceptApi.as_view(), name="claims-accept"),
    path("claims/<int:claim_id>/dispute/", ClaimDisputeApi.as_view(), name="claims-dispute"),
    path("breaches/", BreachListApi.as_view(), name="breaches-list"),
    path("breaches/<int:breach_id>/resolve/", BreachResolveApi.as_view(), name="breaches-resolve"),
]
