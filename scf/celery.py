"""The Celery app: configuration from Django settings (CELERY_ namespace), tasks autodiscovered."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scf.settings.base")

app = Celery("scf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
