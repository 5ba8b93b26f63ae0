"""Placeholder: filled in by the programs work."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
