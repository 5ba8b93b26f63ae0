"""Loans for the people who may see them; orders with a financeable filter, and an order's
detail (here, not in ``orders``: bank staff see the orders of their bank's enterprises, and banks
are lending's)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.models import OrderStatus
from orders.permissions import api_user
from orders.serializers import OrderDetailOutput, OrderOutput
from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed
from scf.schema import errors, paginated

from ..models import JournalLine, Loan, LoanStatus
from ..selectors.ledger import loan_journal_lines
from ..selectors.loans import loan_get, loan_list, order_get_for_lending, order_list_for_lending
from ..serializers import DecisionOutput, LoanOutput


def _page(request: Request, view: APIView, queryset: Any, serializer: Any) -> Response:
    paginator = Pagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer(page, many=True).data)


def _choice(request: Request, name: str, choices: list[str]) -> str | None:
    value = request.query_params.get(name)
    if value and value not in choices:
        raise ValidationFailed(f"Unknown {name}.", fields={name: ["Unknown value."]})
    return value or None


class OrderListApi(APIView):
    @extend_schema(
        operation_id="orders_list",
        parameters=[
            OpenApiParameter("status", str, enum=OrderStatus.values),
            OpenApiParameter("financeable", bool),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: paginated(OrderOutput), **errors(401, 404, 422)},
    )
    def get(self, request: Request) -> Response:
        status = _choice(request, "status", OrderStatus.values)
        financeable = _choice(request, "financeable", ["true", "false"])
        orders = order_list_for_lending(
            user=api_user(request), status=status, financeable=financeable == "true"
        )
        return _page(request, self, orders, OrderOutput)


class OrderDetailApi(APIView):
    @extend_schema(
        operation_id="orders_retrieve", responses={200: OrderDetailOutput, **errors(401, 404)}
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = order_get_for_lending(user=api_user(request), order_id=order_id)
        if order is None:
            raise NotFound("No such order.")
        return Response(OrderDetailOutput(order).data)


class LoanGoodsOutput(LoanOutput):
    """A loan with its goods under a tripartite agreement (null for other loans): what the
    enterprise has been authorised to release and what the agent has paid for."""

    released_value = serializers.SerializerMethodField()
    releasable_value = serializers.SerializerMethodField()

    class Meta(LoanOutput.Meta):
        fields = [*LoanOutput.Meta.fields, "released_value", "releasable_value"]

    @extend_schema_field(serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True))
    def get_released_value(self, loan: Loan) -> str | None:
        hold = getattr(loan, "goods_hold", None)
        return None if hold is None else f"{hold.released_value:.2f}"

    @extend_schema_field(serializers.DecimalField(max_digits=18, decimal_places=2, allow_null=True))
    def get_releasable_value(self, loan: Loan) -> str | None:
        hold = getattr(loan, "goods_hold", None)
        return None if hold is None else f"{hold.releasable_value:.2f}"


class LoanListApi(APIView):
    @extend_schema(
        operation_id="loans_list",
        parameters=[
            OpenApiParameter("status", str, enum=LoanStatus.values),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: paginated(LoanGoodsOutput), **errors(401, 404, 422)},
    )
    def get(self, request: Request) -> Response:
        loans = loan_list(
            user=api_user(request), status=_choice(request, "status", LoanStatus.values)
        )
        return _page(request, self, loans, LoanGoodsOutput)


class LoanDetailOutput(LoanGoodsOutput):
    # A loan booked outside the decision engine (imported, or made by an operator) has none.
    decision = DecisionOutput(read_only=True, allow_null=True)

    class Meta(LoanGoodsOutput.Meta):
        fields = [*LoanGoodsOutput.Meta.fields, "decision"]


class LoanDetailApi(APIView):
    @extend_schema(
        operation_id="loans_retrieve", responses={200: LoanDetailOutput, **errors(401, 404)}
    )
    def get(self, request: Request, loan_id: int) -> Response:
        loan = loan_get(user=api_user(request), loan_id=loan_id)
        if loan is None:
            raise NotFound("No such loan.")
        return Response(LoanDetailOutput(loan).data)


class JournalLineOutput(serializers.ModelSerializer):
    entry_id = serializers.IntegerField(source="entry.id")
    kind = serializers.CharField(source="entry.kind")
    business_date = serializers.DateField(source="entry.business_date")
    posted_at = serializers.DateTimeField(source="entry.posted_at")

    class Meta:
        model = JournalLine
        fields = [
            "id",
            "entry_id",
            "kind",
            "business_date",
            "posted_at",
            "account",
            "currency",
            "debit",
            "credit",
        ]


class LoanLedgerApi(APIView):
    @extend_schema(
        operation_id="loans_ledger",
        parameters=[OpenApiParameter("page", int)],
        responses={200: paginated(JournalLineOutput), **errors(401, 404)},
    )
    def get(self, request: Request, loan_id: int) -> Response:
        loan = loan_get(user=api_user(request), loan_id=loan_id)
        if loan is None:
            raise NotFound("No such loan.")
        return _page(request, self, loan_journal_lines(loan=loan), JournalLineOutput)
