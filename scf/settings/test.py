"""Test settings: everything from base, with fast password hashing and no eager surprises."""

from .base import *  # noqa: F403
from .base import env

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEBUG = False
# Tests that need a real broker start their own worker; the rest run tasks in-process.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)

# Many tests fire hundreds of finance requests as one agent: limits far above that here; the
# throttling tests lower them themselves.
API_RATE_LIMITS = {"finance": "1000000/min", "quote": "1000000/min"}
