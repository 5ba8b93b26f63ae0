"""Order endpoints for people: list and detail, scoped to what the caller may see."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scf.api import Pagination
from scf.errors import NotFound, ValidationFailed

from .models import OrderStatus
from .selectors import order_get, order_list
from .serializers import OrderDetailOutput, OrderOutput


class OrderListApi(APIView):
    @extend_schema(
        operation_id="orders_list",
        parameters=[
            OpenApiParameter("status", str, enum=OrderStatus.values),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: OrderOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status")
        if status and status not in OrderStatus.values:
            raise ValidationFailed("Unknown status.", fields={"status": ["Unknown status."]})
        orders = order_list(user=request.user, status=status)
        paginator = Pagination()
        page = paginator.paginate_queryset(orders, request, view=self)
        return paginator.get_paginated_response(OrderOutput(page, many=True).data)


class OrderDetailApi(APIView):
    @extend_schema(operation_id="orders_retrieve", responses={200: OrderDetailOutput})
    def get(self, request: Request, order_id: int) -> Response:
        order = order_get(user=request.user, order_id=order_id)
        if order is None:
            raise NotFound("No such order.")
        return Response(OrderDetailOutput(order).data)
