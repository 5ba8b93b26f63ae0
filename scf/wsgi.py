import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scf.settings.base")

application = get_wsgi_application()

from scf.warmup import web_process_ready  # noqa: E402 - needs the settings configured above

web_process_ready()
