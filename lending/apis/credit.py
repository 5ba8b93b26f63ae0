"""Data-driven credit over the API: grades, what would raise a line, score history, grade mix,
the line-proposal queue (maker-checker) and the stored models.

- ``GET agents/<id>/credit/``: the agent (and an enterprise admin) sees the line's grade and what
  would raise the line; bank staff also get the score: probability, points, reasons, features.
- ``GET agents/<id>/credit/history/``: bank staff: scores, proposals and line changes.
- ``GET programs/<id>/grade-mix/``: bank staff and the program's enterprise admin.
- ``GET line-proposals/``, ``GET line-proposals/<id>/``: bank staff; ``POST .../approve/`` and
  ``POST .../reject/``: risk reviewers and approvers (the second approval: a risk approver).
- ``GET credit-models/``: bank staff.

Amounts and probabilities travel as strings. Rows the caller may not see are 404.
"""

from __future__ import annotations

from typing import Any, cast

from django.urls import URLPattern, path
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role, User
from orders.permissions import role_permission
from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed
from scf.schema import errors, paginated

from ..models import LineProposal, ProposalStatus
from ..selectors.credit import (
    agent_credit,
    credit_history,
    credit_model_list,
    line_proposal_get,
    line_proposal_queue,
    program_grade_mix,
)
from ..services.line_proposals import line_proposal_approve, line_proposal_reject
from .programs import PROGRAM_PARAM

BankStaff = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN)
RiskOnly = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER)


def _user(request: Request) -> User:
    return cast(User, request.user)


def _program_param(raw: Any) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        message = "Send a program id."
        raise ValidationFailed(message, fields={"program": [message]}) from None


def _amount(**kwargs: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=18, decimal_places=2, **kwargs)


@extend_schema_serializer(component_name="ScoreReasonOutput")  # not the decision's reason
class ReasonOutput(serializers.Serializer):
    code = serializers.CharField()
    feature = serializers.CharField()
    value = serializers.CharField(allow_null=True)
    detail = serializers.CharField()


class ScoreOutput(serializers.Serializer):
    as_of = serializers.DateField()
    model_version = serializers.IntegerField()
    probability = serializers.DecimalField(max_digits=7, decimal_places=6)
    points = serializers.IntegerField()
    grade = serializers.CharField()
    reasons = ReasonOutput(many=True)
    features = serializers.DictField(child=serializers.CharField(allow_null=True))


class ActionOutput(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    hint = serializers.CharField()
    value = serializers.CharField(allow_null=True)


class OutlookOutput(serializers.Serializer):
    volume_90 = _amount()
    line_at_grade = _amount()
    next_grade = serializers.CharField(allow_null=True)
    line_at_next_grade = _amount(allow_null=True)
    extra_monthly_volume = _amount()
    line_per_extra_volume = _amount()
    min_line = _amount()
    max_line = _amount()


class PendingOutput(serializers.Serializer):
    id = serializers.IntegerField()
    current_limit = _amount()
    proposed_limit = _amount()
    created_at = serializers.DateTimeField()


class AgentCreditOutput(serializers.Serializer):
    agent_id = serializers.IntegerField(source="line.agent_id")
    program_id = serializers.IntegerField(source="line.program_id")
    currency = serializers.CharField(source="line.program.currency")
    grade = serializers.CharField(source="line.risk_grade")
    limit = _amount(source="line.limit")
    available = _amount(source="line.available")
    frozen = serializers.BooleanField(source="line.frozen")
    scored_on = serializers.DateField(source="score.as_of", allow_null=True)
    outlook = OutlookOutput(allow_null=True)
    actions = ActionOutput(many=True)
    pending_increase = PendingOutput(source="pending", allow_null=True)
    score = serializers.SerializerMethodField()

    def get_score(self, credit: Any) -> dict[str, Any] | None:
        if not self.context.get("internal") or credit.score is None:
            return None
        return dict(ScoreOutput(credit.score).data)


class AgentCreditApi(APIView):
    @extend_schema(
        operation_id="agents_credit",
        parameters=[PROGRAM_PARAM],
        responses={200: AgentCreditOutput, **errors(401, 404, 422)},
    )
    def get(self, request: Request, agent_id: int) -> Response:
        credit = agent_credit(
            user=_user(request),
            agent_id=agent_id,
            program_id=_program_param(request.query_params.get("program")),
        )
        if credit is None:
            raise NotFound("No such credit line.")
        context = {"internal": _user(request).is_bank_staff}
        return Response(AgentCreditOutput(credit, context=context).data)


class ProposalOutput(serializers.Serializer):
    id = serializers.IntegerField()
    line_id = serializers.IntegerField(source="credit_line_id")
    agent_id = serializers.IntegerField()
    agent_code = serializers.CharField(source="agent.code")
    program_id = serializers.IntegerField()
    as_of = serializers.DateField()
    grade = serializers.CharField()
    status = serializers.CharField()
    current_limit = _amount()
    proposed_limit = _amount()
    increase = _amount()
    utilisation = _amount()
    reasons = serializers.ListField(child=serializers.DictField())
    inputs = serializers.DictField()
    first_approver = serializers.CharField(source="first_approver.username", allow_null=True)
    second_approver = serializers.CharField(source="second_approver.username", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    notes = serializers.ListField(child=serializers.DictField())
    created_at = serializers.DateTimeField()


class ChangeOutput(serializers.Serializer):
    at = serializers.DateTimeField(source="created_at")
    actor = serializers.CharField(source="actor_label")
    action = serializers.CharField()
    before = serializers.DictField()
    after = serializers.DictField()
    note = serializers.CharField()


class HistoryOutput(serializers.Serializer):
    agent_id = serializers.IntegerField(source="line.agent_id")
    program_id = serializers.IntegerField(source="line.program_id")
    grade = serializers.CharField(source="line.risk_grade")
    limit = _amount(source="line.limit")
    scores = ScoreOutput(many=True)
    proposals = ProposalOutput(many=True)
    changes = ChangeOutput(many=True)


class AgentCreditHistoryApi(APIView):
    permission_classes = [BankStaff]

    @extend_schema(
        operation_id="agents_credit_history",
        parameters=[PROGRAM_PARAM],
        responses={200: HistoryOutput, **errors(401, 403, 404, 422)},
    )
    def get(self, request: Request, agent_id: int) -> Response:
        history = credit_history(
            user=_user(request),
            agent_id=agent_id,
            program_id=_program_param(request.query_params.get("program")),
        )
        if history is None:
            raise NotFound("No such credit line.")
        return Response(HistoryOutput(history).data)


class GradeRowOutput(serializers.Serializer):
    grade = serializers.CharField()
    lines = serializers.IntegerField()
    limit = _amount()
    outstanding = _amount()
    share = serializers.DecimalField(max_digits=5, decimal_places=4)


class GradeMixOutput(serializers.Serializer):
    program_id = serializers.IntegerField(source="program.id")
    currency = serializers.CharField(source="program.currency")
    as_of = serializers.DateField(allow_null=True)
    model_version = serializers.IntegerField(allow_null=True)
    lines = serializers.IntegerField()
    grades = GradeRowOutput(many=True)


class ProgramGradeMixApi(APIView):
    @extend_schema(
        operation_id="programs_grade_mix", responses={200: GradeMixOutput, **errors(401, 404)}
    )
    def get(self, request: Request, program_id: int) -> Response:
        mix = program_grade_mix(user=_user(request), program_id=program_id)
        if mix is None:
            raise NotFound("No such program.")
        return Response(GradeMixOutput(mix).data)


class ProposalListApi(APIView):
    permission_classes = [BankStaff]

    @extend_schema(
        operation_id="line_proposals_list",
        parameters=[
            OpenApiParameter("status", str, enum=ProposalStatus.values),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: paginated(ProposalOutput), **errors(401, 403, 404, 422)},
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in ProposalStatus.values:
            raise ValidationFailed("Unknown status.", fields={"status": ["Unknown value."]})
        paginator = Pagination()
        page = paginator.paginate_queryset(
            line_proposal_queue(user=_user(request), status=status), request, view=self
        )
        return paginator.get_paginated_response(ProposalOutput(page, many=True).data)


class ProposalDetailApi(APIView):
    permission_classes = [BankStaff]

    @extend_schema(
        operation_id="line_proposals_retrieve",
        responses={200: ProposalOutput, **errors(401, 403, 404)},
    )
    def get(self, request: Request, proposal_id: int) -> Response:
        return Response(ProposalOutput(_proposal_or_404(request, proposal_id)).data)


class ApproveInput(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class RejectInput(serializers.Serializer):
    reason = serializers.CharField()


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    if not serializer.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in serializer.errors.items()}
        raise ValidationFailed("The request has invalid fields.", fields=fields)
    return dict(serializer.validated_data)


def _proposal_or_404(request: Request, proposal_id: int) -> LineProposal:
    """A proposal of the caller's bank; another bank's is missing, as a missing one."""
    proposal = line_proposal_get(user=_user(request), proposal_id=proposal_id)
    if proposal is None:
        raise NotFound("No such line proposal.")
    return proposal


def _proposal_reply(request: Request, proposal_id: int) -> Response:
    return Response(ProposalOutput(_proposal_or_404(request, proposal_id)).data)


class ProposalApproveApi(APIView):
    permission_classes = [RiskOnly]

    @extend_schema(
        operation_id="line_proposals_approve",
        request=ApproveInput,
        responses={200: ProposalOutput, **errors(400, 401, 403, 404, 409, 415, 422)},
    )
    def post(self, request: Request, proposal_id: int) -> Response:
        data = _valid(ApproveInput(data=request.data))
        _proposal_or_404(request, proposal_id)
        line_proposal_approve(user=_user(request), proposal_id=proposal_id, note=data["note"])
        return _proposal_reply(request, proposal_id)


class ProposalRejectApi(APIView):
    permission_classes = [RiskOnly]

    @extend_schema(
        operation_id="line_proposals_reject",
        request=RejectInput,
        responses={200: ProposalOutput, **errors(400, 401, 403, 404, 409, 415, 422)},
    )
    def post(self, request: Request, proposal_id: int) -> Response:
        data = _valid(RejectInput(data=request.data))
        _proposal_or_404(request, proposal_id)
        line_proposal_reject(user=_user(request), proposal_id=proposal_id, reason=data["reason"])
        return _proposal_reply(request, proposal_id)


class ModelOutput(serializers.Serializer):
    version = serializers.IntegerField()
    trained_at = serializers.DateTimeField()
    as_of = serializers.DateField()
    features = serializers.ListField(child=serializers.CharField())
    auc = serializers.DecimalField(max_digits=5, decimal_places=4)
    ks = serializers.DecimalField(max_digits=5, decimal_places=4)
    promoted = serializers.BooleanField()
    promoted_at = serializers.DateTimeField(allow_null=True)
    retired_at = serializers.DateTimeField(allow_null=True)
    refusal_reason = serializers.CharField()
    metrics = serializers.DictField()


class ModelListApi(APIView):
    permission_classes = [BankStaff]

    @extend_schema(
        operation_id="credit_models_list",
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: paginated(ModelOutput), **errors(401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        paginator = Pagination()
        page = paginator.paginate_queryset(credit_model_list(), request, view=self)
        return paginator.get_paginated_response(ModelOutput(page, many=True).data)


urlpatterns: list[URLPattern] = [
    path("agents/<int:agent_id>/credit/", AgentCreditApi.as_view(), name="agents-credit"),
    path(
        "agents/<int:agent_id>/credit/history/",
        AgentCreditHistoryApi.as_view(),
        name="agents-credit-history",
    ),
    path(
        "programs/<int:program_id>/grade-mix/",
        ProgramGradeMixApi.as_view(),
        name="programs-grade-mix",
    ),
    path("line-proposals/", ProposalListApi.as_view(), name="line-proposals-list"),
    path(
        "line-proposals/<int:proposal_id>/",
        ProposalDetailApi.as_view(),
        name="line-proposals-detail",
    ),
    path(
        "line-proposals/<int:proposal_id>/approve/",
        ProposalApproveApi.as_view(),
        name="line-proposals-approve",
    ),
    path(
        "line-proposals/<int:proposal_id>/reject/",
        ProposalRejectApi.as_view(),
        name="line-proposals-reject",
    ),
    path("credit-models/", ModelListApi.as_view(), name="credit-models-list"),
]
