"""WSGI entry point, kept for tooling that expects one; production serves ASGI via daphne."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")

application = get_wsgi_application()
