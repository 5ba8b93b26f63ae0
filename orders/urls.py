from django.urls import path

from . import apis

urlpatterns = [
    path("orders/", apis.OrderListApi.as_view(), name="orders-list"),
    path("orders/<int:order_id>/", apis.OrderDetailApi.as_view(), name="orders-detail"),
]
