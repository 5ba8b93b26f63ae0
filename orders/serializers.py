"""Output shapes of orders, shared by every API that shows one."""

from typing import Any

from rest_framework import serializers

from .models import SalesOrder, SalesOrderLine


class OrderLineOutput(serializers.ModelSerializer):
    class Meta:
        model = SalesOrderLine
        fields = ["line_no", "sku", "quantity", "unit_price", "amount"]


class OrderOutput(serializers.ModelSerializer):
    enterprise: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    agent_code = serializers.CharField(source="agent.code", read_only=True)

    class Meta:
        model = SalesOrder
        fields = [
            "id",
            "enterprise",
            "agent",
            "agent_code",
            "external_id",
            "amount",
            "currency",
            "status",
            "order_date",
            "version",
            "created_at",
            "updated_at",
        ]


class OrderDetailOutput(OrderOutput):
    lines = OrderLineOutput(many=True, read_only=True)

    class Meta(OrderOutput.Meta):
        fields = [*OrderOutput.Meta.fields, "lines"]
