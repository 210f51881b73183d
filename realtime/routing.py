"""WebSocket URL routes, mounted by clera.asgi (the protocol: realtime.protocol)."""

from django.urls import re_path

from .consumers import NotFoundConsumer, PortfolioConsumer, StreamConsumer

websocket_urlpatterns = [
    re_path(r"^ws/portfolio/(?P<account_id>[^/]{1,64})/?$", PortfolioConsumer.as_asgi()),
    re_path(r"^ws/stream/?$", StreamConsumer.as_asgi()),
    re_path(r"", NotFoundConsumer.as_asgi()),
]
