"""ASGI entry point: HTTP goes to Django, WebSockets to the Channels routes."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clera.settings")

# Must run before importing anything that touches models (auth middleware, consumers).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from marketdata import running  # noqa: E402
from portfolio import insights  # noqa: E402
from realtime import serving  # noqa: E402
from realtime.auth import TicketAuth, TrustedOriginValidator  # noqa: E402
from realtime.hub import HandshakeGate  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A bound on handshakes in progress first (realtime.hub), then the Origin
        # (ALLOWED_HOSTS or CSRF_TRUSTED_ORIGINS), then the session, then a ?ticket=
        # (see realtime.auth).
        "websocket": HandshakeGate(
            TrustedOriginValidator(
                AuthMiddlewareStack(TicketAuth(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)

# Under daphne: close codes 1001/1008/1013 with reasons, and SIGTERM closes every socket with
# 1001 before the server stops (see realtime.serving).
serving.install()

# The risk views' libraries load in the background, off the first request's path; then what
# start-up loaded is kept out of the garbage collector's way (see marketdata.running).
insights.preload(then=running.settle)
