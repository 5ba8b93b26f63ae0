"""The review queue for bank risk staff: list and read cases, claim, approve, decline.

Risk reviewers and risk approvers act; operations admins may only look. Each case comes with what
a reviewer needs to decide it: the loan, the engine's inputs, reasons and rule outcomes, the
agent's history and its credit line. The reads are ``lending.selectors.reviews``.
"""

from __future__ import annotations

from typing import Any, cast

from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import Role, User
from orders.permissions import role_permission
from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed

from ..models import Decision, Review, ReviewKind, ReviewStatus
from ..selectors.reviews import review_deadline, review_get, review_queue, with_histories
from ..serializers import LoanOutput
from ..services.review_case import NOTE_MAX_LENGTH
from ..services.reviews import (
    DECLINE_REASONS,
    review_approve,
    review_claim,
    review_close,
    review_decline,
)

StaffOnly = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN)
RiskOnly = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER)

# --- shapes ------------------------------------------------------------------------------------


# The error shape of API.md (a serializer cannot declare a field named "fields" as an attribute).
ReviewErrorOutput = inline_serializer(
    name="ReviewErrorOutput",
    fields={
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
    },
)


class ReviewDecisionOutput(serializers.ModelSerializer):
    class Meta:
        model = Decision
        fields = ["outcome", "reasons", "rules", "inputs", "engine_version", "decided_at"]


class ReviewCreditLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    limit = serializers.DecimalField(max_digits=18, decimal_places=2)
    outstanding = serializers.DecimalField(
        max_digits=18, decimal_places=2, source="outstanding_principal"
    )
    reserved = serializers.DecimalField(max_digits=18, decimal_places=2)
    available = serializers.DecimalField(max_digits=18, decimal_places=2)
    risk_grade = serializers.CharField()
    frozen = serializers.BooleanField()
    frozen_reason = serializers.CharField()


class AgentHistoryOutput(serializers.Serializer):
    currency = serializers.CharField()
    orders_count = serializers.IntegerField()
    orders_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    loans_count = serializers.IntegerField()
    loans_by_status = serializers.DictField(child=serializers.IntegerField())
    principal_by_status = serializers.DictField(
        child=serializers.DecimalField(max_digits=18, decimal_places=2)
    )
    outstanding_principal = serializers.DecimalField(max_digits=18, decimal_places=2)
    repayments_count = serializers.IntegerField()
    repayments_amount = serializers.DecimalField(max_digits=18, decimal_places=2)
    max_days_past_due = serializers.IntegerField()
    current_days_past_due = serializers.IntegerField()


class ReviewNoteOutput(serializers.Serializer):
    by = serializers.CharField()
    at = serializers.DateTimeField()
    action = serializers.CharField()
    note = serializers.CharField(allow_blank=True)


def _username(field: str) -> serializers.CharField:
    return serializers.CharField(source=f"{field}.username", read_only=True, allow_null=True)


class ReviewOutput(serializers.ModelSerializer):
    claimed_by = _username("claimed_by")
    first_approver = _username("first_approver")
    second_approver = _username("second_approver")
    decided_by = _username("decided_by")
    notes = ReviewNoteOutput(many=True, read_only=True)
    loan = LoanOutput(read_only=True)
    decision = ReviewDecisionOutput(source="loan.decision", read_only=True, allow_null=True)
    credit_line = ReviewCreditLineOutput(source="loan.credit_line", read_only=True)
    agent_history = AgentHistoryOutput(read_only=True)
    deadline = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_deadline(self, review: Review) -> str:
        """The case's SLA deadline (``lending.selectors.reviews.review_deadline``)."""
        return str(serializers.DateTimeField().to_representation(review_deadline(review)))

    class Meta:
        model = Review
        fields = [
            "id",
            "kind",
            "status",
            "requires_second_approval",
            "claimed_by",
            "claimed_at",
            "first_approver",
            "first_approved_at",
            "second_approver",
            "second_approved_at",
            "decided_by",
            "decline_reason",
            "notes",
            "created_at",
            "expires_at",
            "deadline",
            "closed_at",
            "loan",
            "decision",
            "credit_line",
            "agent_history",
        ]


class ReviewPageOutput(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ReviewOutput(many=True)


class ReviewNoteInput(serializers.Serializer):
    note = serializers.CharField(
        required=False, allow_blank=True, max_length=NOTE_MAX_LENGTH, default=""
    )


class ReviewCloseInput(serializers.Serializer):
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH)


class ReviewDeclineInput(ReviewNoteInput):
    reason = serializers.ChoiceField(choices=list(DECLINE_REASONS.items()))


# --- views -------------------------------------------------------------------------------------

ERRORS = {code: ReviewErrorOutput for code in (400, 401, 403, 404, 409, 415, 422)}


def _choice(request: Request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value and value not in choices:
        raise ValidationFailed(f"Unknown {name}.", fields={name: ["Unknown value."]})
    return value or None


def _valid(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """Validate the body or raise 422 with field errors (nothing has been written yet)."""
    serializer = serializer_class(data=request.data)
    if not serializer.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in serializer.errors.items()}
        raise ValidationFailed("The request has invalid fields.", fields=fields)
    return dict(serializer.validated_data)


def _user(request: Request) -> User:
    # The permission classes let only authenticated staff through.
    return cast(User, request.user)


def _case_or_404(request: Request, review_id: int) -> Review:
    """A case of the caller's bank; another bank's is missing, as a missing one. Checked before
    every action too: a case never changes bank, so the check holds for the action's lock."""
    review = review_get(user=_user(request), review_id=review_id)
    if review is None:
        raise NotFound("No such review.")
    return review


def _case_reply(request: Request, review_id: int) -> Response:
    review = _case_or_404(request, review_id)
    return Response(ReviewOutput(with_histories([review], user=_user(request))[0]).data)


class ReviewListApi(APIView):
    permission_classes = [StaffOnly]

    @extend_schema(
        operation_id="reviews_list",
        parameters=[
            OpenApiParameter("kind", str, enum=ReviewKind.values),
            OpenApiParameter("status", str, enum=ReviewStatus.values),
            OpenApiParameter(
                "q", str, description="agent code or name, order number, loan reference"
            ),
            OpenApiParameter("mine", bool, description="only the cases the caller has claimed"),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: ReviewPageOutput, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        mine = request.query_params.get("mine", "").lower() in ("1", "true")
        reviews = review_queue(
            user=_user(request),
            kind=_choice(request, "kind", ReviewKind.values),
            status=_choice(request, "status", ReviewStatus.values),
            search=request.query_params.get("q", ""),
            claimed_by=_user(request) if mine else None,
        )
        paginator = Pagination()
        page = paginator.paginate_queryset(reviews, request, view=self) or []
        data = ReviewOutput(with_histories(list(page), user=_user(request)), many=True).data
        return paginator.get_paginated_response(data)


class ReviewDetailApi(APIView):
    permission_classes = [StaffOnly]

    @extend_schema(operation_id="reviews_retrieve", responses={200: ReviewOutput, **ERRORS})
    def get(self, request: Request, review_id: int) -> Response:
        return _case_reply(request, review_id)


class ReviewClaimApi(APIView):
    permission_classes = [RiskOnly]

    @extend_schema(
        operation_id="reviews_claim",
        request=ReviewNoteInput,
        responses={200: ReviewOutput, **ERRORS},
    )
    def post(self, request: Request, review_id: int) -> Response:
        data = _valid(ReviewNoteInput, request)
        _case_or_404(request, review_id)
        review_claim(user=_user(request), review_id=review_id, note=data["note"])
        return _case_reply(request, review_id)


class ReviewApproveApi(APIView):
    permission_classes = [RiskOnly]

    @extend_schema(
        operation_id="reviews_approve",
        request=ReviewNoteInput,
        responses={200: ReviewOutput, **ERRORS},
    )
    def post(self, request: Request, review_id: int) -> Response:
        data = _valid(ReviewNoteInput, request)
        _case_or_404(request, review_id)
        review_approve(user=_user(request), review_id=review_id, note=data["note"])
        return _case_reply(request, review_id)


class ReviewDeclineApi(APIView):
    permission_classes = [RiskOnly]

    @extend_schema(
        operation_id="reviews_decline",
        request=ReviewDeclineInput,
        responses={200: ReviewOutput, **ERRORS},
    )
    def post(self, request: Request, review_id: int) -> Response:
        data = _valid(ReviewDeclineInput, request)
        _case_or_404(request, review_id)
        review_decline(
            user=_user(request), review_id=review_id, reason=data["reason"], note=data["note"]
        )
        return _case_reply(request, review_id)


class ReviewCloseApi(APIView):
    """Close a follow-up case (failed disbursement, accelerated loan), saying what was done."""

    permission_classes = [RiskOnly]

    @extend_schema(
        operation_id="reviews_close",
        request=ReviewCloseInput,
        responses={200: ReviewOutput, **ERRORS},
    )
    def post(self, request: Request, review_id: int) -> Response:
        data = _valid(ReviewCloseInput, request)
        _case_or_404(request, review_id)
        review_close(user=_user(request), review_id=review_id, note=data["note"])
        return _case_reply(request, review_id)


urlpatterns = [
    path("reviews/", ReviewListApi.as_view(), name="reviews-list"),
    path("reviews/<int:review_id>/", ReviewDetailApi.as_view(), name="reviews-detail"),
    path("reviews/<int:review_id>/claim/", ReviewClaimApi.as_view(), name="reviews-claim"),
    path("reviews/<int:review_id>/approve/", ReviewApproveApi.as_view(), name="reviews-approve"),
    path("reviews/<int:review_id>/decline/", ReviewDeclineApi.as_view(), name="reviews-decline"),
    path("reviews/<int:review_id>/close/", ReviewCloseApi.as_view(), name="reviews-close"),
]
