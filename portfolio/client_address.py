"""The client's address of a request: what every per-client limit keys on (the API's
throttles, the login limits).

Only proxies the deployment counts (settings.NUM_PROXIES) are believed. Each appends the address
it saw to X-Forwarded-For, so the entry the nearest trusted proxy added — the NUM_PROXIES-th from
the right — is the client as far as we can know; whatever a client wrote in front of it is
ignored. With NUM_PROXIES 0 the header is ignored altogether and the peer is the client. The
same rule as DRF's own ``get_ident``, which is handed the same NUM_PROXIES.
"""

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The address of the client that sent ``request`` (a Django or DRF request)."""
    peer = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    proxies = settings.NUM_PROXIES
    if proxies <= 0 or not forwarded.strip():
        return peer
    entries = [entry.strip() for entry in forwarded.split(",")]
    return entries[-min(proxies, len(entries))] or peer
