"""A web process loaded completely before it serves its first request, its heap then frozen.

Django imports the URLconf (and with it every view, serializer and service module) on the first
request, so left alone each fresh gunicorn worker would answer its first click only after that
import, which grows its heap several times over and sets off full garbage collections on the way,
while that click and the ones queued behind it wait (figures: docs/performance.md).

``web_process_ready`` (called by ``scf.wsgi``) imports all of it at start, then moves everything
alive to the collector's permanent generation (``gc.freeze``): module-level objects are never
garbage, and full collections afterwards walk only what requests left behind. With gunicorn's
``--preload`` this runs once in the master before it forks, and the workers share the frozen
pages (no copy-on-write from the collector's bookkeeping).
"""

from __future__ import annotations

import gc

from django.conf import settings
from django.urls import get_resolver


def web_process_ready() -> None:
    """Import every module a request can reach, then freeze the heap for the collector."""
    get_resolver().url_patterns  # noqa: B018 - the import is the point
    if settings.GC_FREEZE_AT_START:
        gc.collect()
        gc.freeze()
