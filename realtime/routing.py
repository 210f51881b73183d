"""WebSocket URL routes, mounted by clera.asgi."""

websocket_urlpatterns: list = []
