from django.urls import path

from . import apis

urlpatterns = [
    path("orders/<int:order_id>/", apis.OrderDetailApi.as_view(), name="orders-detail"),
]
