"""Placeholder: filled in by the reviews work."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
