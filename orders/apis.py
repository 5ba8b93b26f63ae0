"""Order detail for people, scoped to what the caller may see.

The order list lives in lending.apis.loans (it filters on financeability, which is lending's).
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from scf.errors import NotFound
from scf.schema import errors

from .permissions import api_user
from .selectors import order_get
from .serializers import OrderDetailOutput


class OrderDetailApi(APIView):
    @extend_schema(
        operation_id="orders_retrieve", responses={200: OrderDetailOutput, **errors(401, 404)}
    )
    def get(self, request: Request, order_id: int) -> Response:
        order = order_get(user=api_user(request), order_id=order_id)
        if order is None:
            raise NotFound("No such order.")
        return Response(OrderDetailOutput(order).data)
