"""The three front ends: the agent portal at ``/``, ``/dashboard/`` and ``/reviews/``."""

from django.urls import path

from .views import audit, dashboard, goods, portal, reviews

app_name = "web"

urlpatterns = [
    path("", portal.home, name="home"),
    path("orders/", portal.order_list, name="orders"),
    path("orders/<int:order_id>/quote/", portal.order_quote, name="order-quote"),
    path("orders/<int:order_id>/finance/", portal.order_finance, name="order-finance"),
    path("loans/", portal.loans, name="loans"),
    path("loans/<int:loan_id>/", portal.loan_detail, name="loan"),
    path("goods/", goods.goods_page, name="goods"),
    path("goods/<int:loan_id>/release/", goods.goods_release, name="goods-release"),
    path(
        "goods/claims/<int:claim_id>/accept/",
        goods.goods_claim,
        {"action": "accept"},
        name="claim-accept",
    ),
    path(
        "goods/claims/<int:claim_id>/dispute/",
        goods.goods_claim,
        {"action": "dispute"},
        name="claim-dispute",
    ),
    path("dashboard/", dashboard.dashboard_home, name="dashboard"),
    path(
        "dashboard/<int:program_id>/",
        dashboard.program_dashboard_page,
        name="program-dashboard",
    ),
    path("dashboard/<int:program_id>/orders.csv", dashboard.export_orders, name="export-orders"),
    path("dashboard/<int:program_id>/loans.csv", dashboard.export_loans, name="export-loans"),
    path("reviews/", reviews.queue, name="reviews"),
    path("reviews/audit/", audit.audit_trail_page, name="audit"),
    path("reviews/audit.csv", audit.audit_trail_csv, name="audit-export"),
    path("reviews/<int:review_id>/", reviews.case, name="review-case"),
    path("reviews/<int:review_id>/claim/", reviews.claim, name="review-claim"),
    path("reviews/<int:review_id>/approve/", reviews.approve, name="review-approve"),
    path("reviews/<int:review_id>/decline/", reviews.decline, name="review-decline"),
    path("reviews/<int:review_id>/close/", reviews.close, name="review-close"),
    path(
        "reviews/<int:review_id>/line/freeze/",
        reviews.case_line_freeze,
        name="review-line-freeze",
    ),
    path(
        "reviews/<int:review_id>/line/unfreeze/",
        reviews.case_line_unfreeze,
        name="review-line-unfreeze",
    ),
    path(
        "reviews/lines/<int:agent_id>/<int:program_id>/freeze/",
        reviews.line_freeze,
        name="line-freeze",
    ),
    path(
        "reviews/lines/<int:agent_id>/<int:program_id>/unfreeze/",
        reviews.line_unfreeze,
        name="line-unfreeze",
    ),
]
