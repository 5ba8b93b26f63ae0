"""Tripartite terms, agents' agreements and maker-checker changes to caps and ratios.

- ``GET|POST /api/v1/programs/{id}/tripartite/`` and ``PATCH`` (enabled, guarantee type,
  trigger, claim window): a program's terms (operations write; whoever sees the program reads).
- ``GET|POST /api/v1/programs/{id}/agreements/``, ``GET /api/v1/agreements/{id}/``,
  ``POST /api/v1/agreements/{id}/terminate/``: operations sign and end; enterprise admins and
  agents read their own.
- ``GET|POST /api/v1/terms-changes/``, ``POST /api/v1/terms-changes/{id}/approve/`` and
  ``/reject/``: caps and ratios, proposed by one person and approved by another.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role
from orders.permissions import api_user, role_permission
from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed
from scf.schema import errors, paginated

from ..models import Agreement, TermsChange, TripartiteTerms
from ..selectors.tripartite import (
    agent_for_staff,
    agreement_get,
    agreement_list,
    program_for_staff,
    terms_change_get,
    terms_change_list,
    terms_for_program,
)
from ..services.agreements import agreement_sign, agreement_terminate
from ..services.tripartite_terms import (
    terms_change_approve,
    terms_change_propose,
    terms_change_reject,
    terms_create,
    terms_update,
)

OpsOnly = role_permission(Role.OPS_ADMIN)
Checkers = role_permission(Role.OPS_ADMIN, Role.RISK_APPROVER)
BankStaff = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN)


class WritesNeed(APIView):
    """Reads for any signed-in user (rows filtered by the selectors), writes for ``write_roles``."""

    write_permission: type[BasePermission] = OpsOnly

    def get_permissions(self) -> list[BasePermission]:
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [IsAuthenticated()]
        return [self.write_permission()]


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    if not serializer.is_valid():
        fields = {name: [str(e) for e in errs] for name, errs in serializer.errors.items()}
        raise ValidationFailed("The request has invalid fields.", fields=fields)
    return dict(serializer.validated_data)


class TermsOutput(serializers.ModelSerializer):
    class Meta:
        model = TripartiteTerms
        fields = [
            "program",
            "enabled",
            "margin_ratio",
            "security_ratio",
            "guarantee_type",
            "trigger_dpd",
            "claim_window_days",
            "program_cap",
            "program_cap_used",
            "margin_withdraw_approval_threshold",
            "version",
            "updated_at",
        ]


class TermsApi(WritesNeed):
    def _terms(self, request: Request, program_id: int) -> TripartiteTerms:
        terms = terms_for_program(user=api_user(request), program_id=program_id)
        if terms is None:
            raise NotFound("The program has no tripartite terms.")
        return terms

    @extend_schema(
        operation_id="programs_tripartite", responses={200: TermsOutput, **errors(401, 404)}
    )
    def get(self, request: Request, program_id: int) -> Response:
        return Response(TermsOutput(self._terms(request, program_id)).data)

    @extend_schema(
        operation_id="programs_tripartite_create",
        request={"application/json": {"type": "object"}},
        responses={201: TermsOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, program_id: int) -> Response:
        program = program_for_staff(user=api_user(request), program_id=program_id)
        if program is None:
            raise NotFound("No such program.")
        values = dict(request.data) if isinstance(request.data, dict) else {}
        terms = terms_create(actor=api_user(request), program=program, values=values)
        return Response(TermsOutput(terms).data, status=201)

    @extend_schema(
        operation_id="programs_tripartite_update",
        request={"application/json": {"type": "object"}},
        responses={200: TermsOutput, **errors(400, 401, 403, 404, 422)},
    )
    def patch(self, request: Request, program_id: int) -> Response:
        program = program_for_staff(user=api_user(request), program_id=program_id)
        if program is None:
            raise NotFound("No such program.")
        changes = dict(request.data) if isinstance(request.data, dict) else {}
        terms = terms_update(actor=api_user(request), program=program, changes=changes)
        return Response(TermsOutput(terms).data)


class AgreementOutput(serializers.ModelSerializer):
    agent_code = serializers.CharField(source="agent.code")
    program_code = serializers.CharField(source="program.code")

    class Meta:
        model = Agreement
        fields = [
            "id",
            "program",
            "program_code",
            "agent",
            "agent_code",
            "version",
            "signed_on",
            "document_reference",
            "agent_cap",
            "agent_cap_used",
            "status",
            "created_at",
            "ended_at",
        ]


class AgreementInput(serializers.Serializer):
    agent = serializers.IntegerField()
    signed_on = serializers.DateField()
    agent_cap = serializers.CharField(required=False, help_text='Decimal string, e.g. "500000.00"')
    document_reference = serializers.CharField(required=False, max_length=100, allow_blank=True)


class ProgramAgreementsApi(WritesNeed):
    @extend_schema(
        operation_id="programs_agreements_list",
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: paginated(AgreementOutput), **errors(401, 404)},
    )
    def get(self, request: Request, program_id: int) -> Response:
        rows = agreement_list(user=api_user(request), program_id=program_id)
        if rows is None:
            raise NotFound("No such program.")
        paginator = Pagination()
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(AgreementOutput(page, many=True).data)

    @extend_schema(
        operation_id="programs_agreements_create",
        request=AgreementInput,
        responses={201: AgreementOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, program_id: int) -> Response:
        data = _valid(AgreementInput(data=request.data))
        user = api_user(request)
        program = program_for_staff(user=user, program_id=program_id)
        if program is None:
            raise NotFound("No such program.")
        agent = agent_for_staff(user=user, agent_id=data["agent"])
        if agent is None:
            raise ValidationFailed("No such agent.", fields={"agent": ["No such agent."]})
        agreement = agreement_sign(
            actor=user,
            program=program,
            agent=agent,
            signed_on=data["signed_on"],
            agent_cap=data.get("agent_cap"),
            document_reference=data.get("document_reference", ""),
        )
        return Response(AgreementOutput(agreement).data, status=201)


class AgreementDetailApi(APIView):
    @extend_schema(
        operation_id="agreements_retrieve", responses={200: AgreementOutput, **errors(401, 404)}
    )
    def get(self, request: Request, agreement_id: int) -> Response:
        agreement = agreement_get(user=api_user(request), agreement_id=agreement_id)
        if agreement is None:
            raise NotFound("No such agreement.")
        return Response(AgreementOutput(agreement).data)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class AgreementTerminateApi(APIView):
    permission_classes = [OpsOnly]

    @extend_schema(
        operation_id="agreements_terminate",
        request=ReasonInput,
        responses={200: AgreementOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, agreement_id: int) -> Response:
        data = _valid(ReasonInput(data=request.data))
        if agreement_get(user=api_user(request), agreement_id=agreement_id) is None:
            raise NotFound("No such agreement.")
        agreement = agreement_terminate(
            actor=api_user(request), agreement_id=agreement_id, reason=data["reason"]
        )
        return Response(AgreementOutput(agreement).data)


class TermsChangeOutput(serializers.ModelSerializer):
    proposed_by = serializers.CharField(source="proposed_by.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)

    class Meta:
        model = TermsChange
        fields = [
            "id",
            "program",
            "agreement",
            "changes",
            "before",
            "status",
            "reason",
            "proposed_by",
            "proposed_at",
            "decided_by",
            "decided_at",
            "decision_note",
        ]


class TermsChangeInput(serializers.Serializer):
    program = serializers.IntegerField()
    agreement = serializers.IntegerField(required=False)
    changes = serializers.DictField()
    reason = serializers.CharField(required=False, max_length=500, allow_blank=True)


class TermsChangesApi(WritesNeed):
    @extend_schema(
        operation_id="terms_changes_list",
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: paginated(TermsChangeOutput), **errors(401, 404)},
    )
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        rows = terms_change_list(user=api_user(request))
        page = paginator.paginate_queryset(rows, request, view=self)
        return paginator.get_paginated_response(TermsChangeOutput(page, many=True).data)

    @extend_schema(
        operation_id="terms_changes_create",
        request=TermsChangeInput,
        responses={201: TermsChangeOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request) -> Response:
        data = _valid(TermsChangeInput(data=request.data))
        user = api_user(request)
        program = program_for_staff(user=user, program_id=data["program"])
        if program is None:
            raise NotFound("No such program.")
        agreement = None
        if "agreement" in data:
            agreement = agreement_get(user=user, agreement_id=data["agreement"])
            if agreement is None:
                raise NotFound("No such agreement.")
        change = terms_change_propose(
            actor=user,
            program=program,
            agreement=agreement,
            changes=data["changes"],
            reason=data.get("reason", ""),
        )
        return Response(TermsChangeOutput(change).data, status=201)


class NoteInput(serializers.Serializer):
    note = serializers.CharField(required=False, max_length=500, allow_blank=True)


class TermsChangeApproveApi(APIView):
    permission_classes = [Checkers]

    @extend_schema(
        operation_id="terms_changes_approve",
        request=NoteInput,
        responses={200: TermsChangeOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, change_id: int) -> Response:
        data = _valid(NoteInput(data=request.data))
        user = api_user(request)
        if terms_change_get(user=user, change_id=change_id) is None:
            raise NotFound("No such terms change.")
        terms_change_approve(actor=user, change_id=change_id, note=data.get("note", ""))
        return Response(TermsChangeOutput(terms_change_get(user=user, change_id=change_id)).data)


class TermsChangeRejectApi(APIView):
    permission_classes = [Checkers]

    @extend_schema(
        operation_id="terms_changes_reject",
        request=ReasonInput,
        responses={200: TermsChangeOutput, **errors(400, 401, 403, 404, 409, 422)},
    )
    def post(self, request: Request, change_id: int) -> Response:
        data = _valid(ReasonInput(data=request.data))
        user = api_user(request)
        if terms_change_get(user=user, change_id=change_id) is None:
            raise NotFound("No such terms change.")
        terms_change_reject(actor=user, change_id=change_id, reason=data["reason"])
        return Response(TermsChangeOutput(terms_change_get(user=user, change_id=change_id)).data)


urlpatterns: list[URLPattern] = [
    path("programs/<int:program_id>/tripartite/", TermsApi.as_view(), name="programs-tripartite"),
    path(
        "programs/<int:program_id>/agreements/",
        ProgramAgreementsApi.as_view(),
        name="programs-agreements",
    ),
    path("agreements/<int:agreement_id>/", AgreementDetailApi.as_view(), name="agreements-detail"),
    path(
        "agreements/<int:agreement_id>/terminate/",
        AgreementTerminateApi.as_view(),
        name="agreements-terminate",
    ),
    path("terms-changes/", TermsChangesApi.as_view(), name="terms-changes"),
    path(
        "terms-changes/<int:change_id>/approve/",
        TermsChangeApproveApi.as_view(),
        name="terms-changes-approve",
    ),
    path(
        "terms-changes/<int:change_id>/reject/",
        TermsChangeRejectApi.as_view(),
        name="terms-changes-reject",
    ),
]
