from django.urls import path

from .feed import apis

urlpatterns = [
    path("orders/webhook/", apis.OrderWebhookApi.as_view(), name="orders-webhook"),
    path("orders/bulk/", apis.OrderBulkApi.as_view(), name="orders-bulk"),
    path("orders/csv/", apis.OrderCsvApi.as_view(), name="orders-csv"),
    path("orders/events/", apis.FeedEventListApi.as_view(), name="orders-feed-events"),
    path("orders/health/", apis.FeedHealthApi.as_view(), name="orders-feed-health"),
]
