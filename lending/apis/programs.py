"""Programs, their dashboards, and agents' credit lines (view, freeze, unfreeze).

Agents see the programs they have a line in, with their terms, but not the program-wide figures
or the bank's risk settings (those come back as ``null``): those are the enterprise's and the
bank's business. Rows a user may not see are 404, never 403.
"""

from __future__ import annotations

from typing import Any, cast

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role, User
from orders.permissions import role_permission
from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed
from scf.schema import errors, paginated

from ..models import CreditLine, Program
from ..selectors.credit import credit_line_for_agent
from ..selectors.dashboard import program_dashboard
from ..selectors.programs import program_get, program_list
from ..selectors.repayment_refs import repayment_reference_for
from ..services.lines import credit_line_freeze, credit_line_unfreeze

BankStaff = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN)


def _user(request: Request) -> User:
    """The caller; every view here requires an authenticated platform user."""
    return cast(User, request.user)


def _amount(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=2, **kwargs)


class InternalFieldsMixin:
    """Blank out ``internal_fields`` (as ``null``) unless the context has ``internal=True``."""

    internal_fields: tuple[str, ...] = ()

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)  # type: ignore[misc]
        if not self.context.get("internal", False):  # type: ignore[attr-defined]
            for field in self.internal_fields:
                data[field] = None
        return data


class EnterpriseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


FIGURES = (
    "limit",
    "outstanding",
    "reserved",
    "utilised",
    "available",
    "financed_order_count",
    "financed_order_amount",
    "financed_principal",
    "overdue_count",
    "overdue_outstanding",
    "agent_count",
)
RISK_SETTINGS = (
    "auto_approve_limit",
    "auto_approve_grade",
    "maker_checker_threshold",
    "review_hold_hours",
    "refer_rules",
)


class ProgramOutput(InternalFieldsMixin, serializers.ModelSerializer):
    internal_fields: tuple[str, ...] = FIGURES
    bank_code = serializers.CharField(source="bank.code")
    enterprise = EnterpriseOutput()
    limit = _amount(allow_null=True)
    outstanding = _amount(source="outstanding_principal", allow_null=True)
    reserved = _amount(allow_null=True)
    utilised = _amount(allow_null=True)
    available = _amount(allow_null=True)
    financed_order_count = serializers.IntegerField(allow_null=True)
    financed_order_amount = _amount(allow_null=True)
    financed_principal = _amount(allow_null=True)
    overdue_count = serializers.IntegerField(allow_null=True)
    overdue_outstanding = _amount(allow_null=True)
    agent_count = serializers.IntegerField(allow_null=True)

    class Meta:
        model = Program
        fields = [
            "id",
            "code",
            "name",
            "status",
            "currency",
            "bank_code",
            "enterprise",
            "advance_rate",
            "tenor_days",
            "annual_rate",
            "day_count",
            *FIGURES,
        ]


class ProgramDetailOutput(ProgramOutput):
    internal_fields: tuple[str, ...] = (*FIGURES, *RISK_SETTINGS)

    class Meta(ProgramOutput.Meta):
        fields = [
            *ProgramOutput.Meta.fields,
            "min_principal",
            "max_principal",
            "grace_days",
            "penalty_rate",
            "max_order_age_days",
            "max_dpd_tolerated",
            "time_zone",
            "holiday_country",
            "created_at",
            *RISK_SETTINGS,
        ]
        extra_kwargs = {field: {"allow_null": True} for field in RISK_SETTINGS}


def _sees_program_figures(user: User) -> bool:
    return getattr(user, "role", None) != Role.AGENT


class ProgramListApi(APIView):
    @extend_schema(
        operation_id="programs_list",
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: paginated(ProgramOutput), **errors(401, 404)},
    )
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(program_list(user=_user(request)), request, view=self)
        context = {"internal": _sees_program_figures(_user(request))}
        return paginator.get_paginated_response(
            ProgramOutput(page, many=True, context=context).data
        )


class ProgramDetailApi(APIView):
    @extend_schema(
        operation_id="programs_retrieve",
        responses={200: ProgramDetailOutput, **errors(401, 404)},
    )
    def get(self, request: Request, program_id: int) -> Response:
        program = program_get(user=_user(request), program_id=program_id)
        if program is None:
            raise NotFound("No such program.")
        context = {"internal": _sees_program_figures(_user(request))}
        return Response(ProgramDetailOutput(program, context=context).data)


class FinancedOutput(serializers.Serializer):
    order_count = serializers.IntegerField()
    order_amount = _amount()
    principal = _amount()


class DpdBucketOutput(serializers.Serializer):
    bucket = serializers.CharField()
    count = serializers.IntegerField()
    outstanding = _amount()


class AgentExposureOutput(serializers.Serializer):
    agent_id = serializers.IntegerField()
    agent_code = serializers.CharField(source="agent.code")
    agent_name = serializers.CharField(source="agent.name")
    line_id = serializers.IntegerField(source="id")
    limit = _amount()
    outstanding = _amount(source="outstanding_principal")
    reserved = _amount()
    exposure = _amount()
    available = _amount()
    risk_grade = serializers.CharField()
    frozen = serializers.BooleanField()
    loan_count = serializers.IntegerField()
    max_dpd = serializers.IntegerField()


class DashboardProgramOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    currency = serializers.CharField()
    time_zone = serializers.CharField()


class DashboardOutput(serializers.Serializer):
    program = DashboardProgramOutput()
    as_of = serializers.DateField()
    limit = _amount(source="program.limit")
    utilised = _amount()
    outstanding = _amount(source="program.outstanding_principal")
    reserved = _amount(source="program.reserved")
    available = _amount(source="program.available")
    financed = FinancedOutput()
    financed_today = FinancedOutput()
    financed_month = FinancedOutput()
    overdue = DpdBucketOutput(many=True)
    overdue_total = DpdBucketOutput()
    agents = AgentExposureOutput(many=True)


class ProgramDashboardApi(APIView):
    @extend_schema(
        operation_id="programs_dashboard", responses={200: DashboardOutput, **errors(401, 404)}
    )
    def get(self, request: Request, program_id: int) -> Response:
        dashboard = program_dashboard(user=_user(request), program_id=program_id)
        if dashboard is None:
            raise NotFound("No such program.")
        return Response(DashboardOutput(dashboard).data)


class CreditLineOutput(InternalFieldsMixin, serializers.ModelSerializer):
    internal_fields: tuple[str, ...] = ("frozen_reason",)
    agent_code = serializers.CharField(source="agent.code")
    program_code = serializers.CharField(source="program.code")
    currency = serializers.CharField(source="program.currency")
    outstanding = _amount(source="outstanding_principal")
    available = _amount()
    frozen_reason = serializers.CharField(allow_null=True)
    repayment_reference = serializers.SerializerMethodField(
        help_text="What the agent quotes on a repayment to this line (ISO 11649 RF reference)."
    )

    class Meta:
        model = CreditLine
        fields = [
            "id",
            "agent",
            "agent_code",
            "program",
            "program_code",
            "currency",
            "limit",
            "outstanding",
            "reserved",
            "available",
            "risk_grade",
            "frozen",
            "frozen_reason",
            "repayment_reference",
            "updated_at",
        ]

    def get_repayment_reference(self, line: CreditLine) -> str:
        return repayment_reference_for(line.pk)


PROGRAM_PARAM = OpenApiParameter(
    "program", int, description="The program, when the agent has lines in several (default: first)"
)


def _program_param(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        message = "Send a program id."
        raise ValidationFailed(message, fields={"program": [message]}) from None


def _line_or_404(request: Request, agent_id: int, raw_program: Any) -> CreditLine:
    line = credit_line_for_agent(
        user=_user(request), agent_id=agent_id, program_id=_program_param(raw_program)
    )
    if line is None:
        raise NotFound("No such credit line.")
    return line


def _line_reply(request: Request, line: CreditLine) -> Response:
    context = {"internal": _user(request).is_bank_staff}
    return Response(CreditLineOutput(line, context=context).data)


class CreditLineApi(APIView):
    @extend_schema(
        operation_id="agents_credit_line",
        parameters=[PROGRAM_PARAM],
        responses={200: CreditLineOutput, **errors(401, 404, 422)},
    )
    def get(self, request: Request, agent_id: int) -> Response:
        line = _line_or_404(request, agent_id, request.query_params.get("program"))
        return _line_reply(request, line)


class FreezeInput(serializers.Serializer):
    reason = serializers.CharField(max_length=500)
    program = serializers.IntegerField(required=False)


def _freeze_input(request: Request) -> dict[str, Any]:
    """The body, checked; errors are 422 with field messages (a missing reason included)."""
    serializer = FreezeInput(data=request.data)
    if not serializer.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in serializer.errors.items()}
        raise ValidationFailed("The request has invalid fields.", fields=fields)
    return dict(serializer.validated_data)


def _program_choice(request: Request, data: dict[str, Any]) -> Any:
    return data.get("program", request.query_params.get("program"))


def _as_changed(line: CreditLine, changed: CreditLine) -> CreditLine:
    """``line`` (read with its agent and program) with the freeze the service saved on ``changed``
    (its locked copy of the row)."""
    line.frozen, line.frozen_reason = changed.frozen, changed.frozen_reason
    line.updated_at = changed.updated_at
    return line


class CreditLineFreezeApi(APIView):
    permission_classes = [BankStaff]

    @extend_schema(
        operation_id="agents_credit_line_freeze",
        parameters=[PROGRAM_PARAM],
        request=FreezeInput,
        responses={200: CreditLineOutput, **errors(400, 401, 403, 404, 409, 415, 422)},
    )
    def post(self, request: Request, agent_id: int) -> Response:
        data = _freeze_input(request)
        line = _line_or_404(request, agent_id, _program_choice(request, data))
        changed = credit_line_freeze(actor=_user(request), line=line, reason=data["reason"])
        return _line_reply(request, _as_changed(line, changed))


class CreditLineUnfreezeApi(APIView):
    permission_classes = [BankStaff]

    @extend_schema(
        operation_id="agents_credit_line_unfreeze",
        parameters=[PROGRAM_PARAM],
        request=FreezeInput,
        responses={200: CreditLineOutput, **errors(400, 401, 403, 404, 409, 415, 422)},
    )
    def post(self, request: Request, agent_id: int) -> Response:
        data = _freeze_input(request)
        line = _line_or_404(request, agent_id, _program_choice(request, data))
        changed = credit_line_unfreeze(actor=_user(request), line=line, reason=data["reason"])
        return _line_reply(request, _as_changed(line, changed))


urlpatterns: list[URLPattern] = [
    path("programs/", ProgramListApi.as_view(), name="programs-list"),
    path("programs/<int:program_id>/", ProgramDetailApi.as_view(), name="programs-detail"),
    path(
        "programs/<int:program_id>/dashboard/",
        ProgramDashboardApi.as_view(),
        name="programs-dashboard",
    ),
    path("agents/<int:agent_id>/credit-line/", CreditLineApi.as_view(), name="agents-credit-line"),
    path(
        "agents/<int:agent_id>/credit-line/freeze/",
        CreditLineFreezeApi.as_view(),
        name="agents-credit-line-freeze",
    ),
    path(
        "agents/<int:agent_id>/credit-line/unfreeze/",
        CreditLineUnfreezeApi.as_view(),
        name="agents-credit-line-unfreeze",
    ),
]
