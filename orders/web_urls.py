"""Account pages (sign in, sign out, password change) and the language switcher."""

from django.urls import path
from django.views.i18n import set_language

from . import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("password/", views.PasswordChangeView.as_view(), name="password_change"),
    path("password/done/", views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("language/", set_language, name="set_language"),
]
