"""The bank operations page, under the review queue (``/reviews/bank/``)."""

from django.urls import path

from . import views

app_name = "bankops"

urlpatterns = [
    path("reviews/bank/", views.operations, name="operations"),
    path("reviews/bank/credits/<int:credit_id>/apply/", views.apply, name="apply"),
    path("reviews/bank/credits/<int:credit_id>/refund/", views.refund, name="refund"),
]
