from django.urls import path

from . import apis

urlpatterns = [
    path("loans/<int:loan_id>/releases/", apis.LoanReleasesApi.as_view(), name="loans-releases"),
]
