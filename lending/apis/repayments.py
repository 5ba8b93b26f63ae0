"""Placeholder: filled in by the repayments work."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
