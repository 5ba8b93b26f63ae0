"""People's credentials beside the password Django keeps: the API token."""

from __future__ import annotations

from django.db import transaction
from rest_framework.authtoken.models import Token

from ..models import User


@transaction.atomic
def user_token_rotate(*, user: User) -> str | None:
    """Replace the user's API token with a new one: the old key stops working at once.

    Returns the new key, or None for a user who has no token (none is made for them).
    """
    deleted, _ = Token.objects.filter(user=user).delete()
    if not deleted:
        return None
    return str(Token.objects.create(user=user).key)
