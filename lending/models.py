"""Lending: banks, programs, credit lines, loans, decisions, the ledger."""

from __future__ import annotations

from django.db import models


class Bank(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"
