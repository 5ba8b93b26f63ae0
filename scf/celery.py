"""The Celery app: configuration from Django settings (CELERY_ namespace), tasks autodiscovered."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

from scf.logging import task_finished, task_started

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scf.settings.base")

app = Celery("scf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Task ids on log records (scf.logging); connected strongly, the handlers are module functions.
task_prerun.connect(task_started, weak=False)
task_postrun.connect(task_finished, weak=False)
