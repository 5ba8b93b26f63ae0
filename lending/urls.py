from django.urls import path

from .apis import (
    claims,
    credit,
    finance,
    loans,
    margin,
    programs,
    repayments,
    reviews,
    tripartite,
)

urlpatterns = [
    path("orders/", loans.OrderListApi.as_view(), name="orders-list"),
    path("orders/<int:order_id>/", loans.OrderDetailApi.as_view(), name="orders-detail"),
    path("orders/<int:order_id>/quote/", finance.OrderQuoteApi.as_view(), name="orders-quote"),
    path(
        "orders/<int:order_id>/finance/", finance.OrderFinanceApi.as_view(), name="orders-finance"
    ),
    path("loans/", loans.LoanListApi.as_view(), name="loans-list"),
    path("loans/<int:loan_id>/", loans.LoanDetailApi.as_view(), name="loans-detail"),
    path("loans/<int:loan_id>/ledger/", loans.LoanLedgerApi.as_view(), name="loans-ledger"),
    *reviews.urlpatterns,
    *programs.urlpatterns,
    *repayments.urlpatterns,
    *credit.urlpatterns,
    *tripartite.urlpatterns,
    *margin.urlpatterns,
    *claims.urlpatterns,
]
