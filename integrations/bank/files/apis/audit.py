"""``GET /api/v1/unapplied-credits/{id}/audit/``: the audit trail of one unapplied credit (who
applied or refunded it, when, with what), for the bank staff of the credit's bank (risk
reviewers, approvers, operations). Another bank's credit is a 404, as a missing one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from lending.models import AuditLog
from orders.models import Role
from orders.permissions import role_permission
from scf.errors import NotFound
from scf.schema import errors

from ..selectors import unapplied_credit_audit

BankStaff = role_permission(Role.RISK_REVIEWER, Role.RISK_APPROVER, Role.OPS_ADMIN)


class AuditRowOutput(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AuditLog
        fields = ["id", "action", "actor", "before", "after", "note", "created_at"]

    def get_actor(self, row: AuditLog) -> str:
        if row.actor is not None:
            return str(row.actor.get_username())
        return row.actor_label


class UnappliedCreditAuditApi(APIView):
    permission_classes = [BankStaff]

    @extend_schema(
        operation_id="unapplied_credits_audit",
        responses={200: AuditRowOutput(many=True), **errors(401, 403, 404)},
    )
    def get(self, request: Request, credit_id: int) -> Response:
        rows: Any = unapplied_credit_audit(user=request.user, credit_id=credit_id)
        if rows is None:
            raise NotFound(f"No unapplied credit {credit_id}.")
        return Response(AuditRowOutput(rows, many=True).data)
