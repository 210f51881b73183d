"""What the sockets need from the server they run under, daphne 4.2 — installed by clera.asgi.

Two gaps, both closed only when daphne's Twisted reactor runs this process (under Channels'
test communicator, uvicorn or a management command :func:`install` does nothing):

**Close codes and reasons.** Daphne hands a ``websocket.close`` to autobahn's ``sendClose``,
which accepts only 1000 and 3000–4999 and raises on anything else, and daphne passes no reason.
The protocol needs 1001 (going away), 1008 (policy) and 1013 (try again later), which RFC 6455
lets a server send. :func:`_close_with_code` sees every reply before daphne does
(:func:`marketdata.compat.intercept_websocket_replies`) and writes a close of an open socket
through autobahn's own ``sendCloseFrame`` — the very frame ``sendClose`` writes after its
check — with the code and the reason (at most 123 bytes). Everything else goes to daphne
unchanged.

**Graceful shutdown.** Daphne speaks no ASGI lifespan, and on SIGTERM Twisted stops the reactor
at once: daphne's "before shutdown" trigger cancels every application and the sockets die
without a close frame (clients see 1006). :func:`_take_over_signals` runs once the reactor is
running — after Twisted installed its own handlers — and replaces the SIGTERM and SIGINT
handlers with one that

1. drains this process's hub (:meth:`realtime.hub.Hub.drain`): new sockets are refused with
   1001; open ones get their pending messages, a ``system`` message and a 1001 close; it waits
   for their clients to finish the close, at most WS_SHUTDOWN_GRACE seconds;
2. flushes the operations counters (:func:`realtime.stats.flush`);
3. stops the reactor, as Twisted's own handler would have.

A second signal during the drain stops the reactor at once.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

from marketdata.compat import intercept_websocket_replies

from . import stats
from .hub import hub

logger = logging.getLogger(__name__)

#: The longest close reason a frame carries (125 bytes of payload, 2 of them the code).
MAX_REASON_BYTES = 123


def install() -> bool:
    """Close the gaps above if daphne's reactor runs this process; True if so."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or "daphne.ws_protocol" not in sys.modules:
        return False
    intercept_websocket_replies(
        sys.modules["daphne.ws_protocol"].WebSocketProtocol, _close_with_code
    )
    reactor.callWhenRunning(_take_over_signals, reactor)
    return True


def _close_with_code(protocol: Any, message: dict) -> bool:
    """Write a close of an open socket with its code and reason; False leaves it to daphne."""
    if message.get("type") != "websocket.close" or protocol.state != protocol.STATE_OPEN:
        return False
    reason = (message.get("reason") or "").encode()[:MAX_REASON_BYTES]
    code = message.get("code") or 1000
    protocol.sendCloseFrame(code=code, reasonUtf8=reason or None, isReply=False)
    return True


def _take_over_signals(reactor: Any) -> None:
    loop = asyncio.get_event_loop()
    draining: list[asyncio.Task] = []

    def on_signal(signum: int, frame: Any) -> None:
        if draining:
            logger.warning("ws.shutdown second signal: stopping now")
            reactor.callFromThread(reactor.stop)
            return
        logger.info("ws.shutdown signal=%s: closing sockets (1001) first", signal.strsignal(signum))
        loop.call_soon_threadsafe(lambda: draining.append(loop.create_task(_drain(reactor))))

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)


async def _drain(reactor: Any) -> None:
    try:
        await hub().drain(settings.WS_SHUTDOWN_GRACE)
        await stats.flush()
    except RedisError as error:
        logger.warning("ws.shutdown could not flush stats: %s", error)
    finally:
        reactor.stop()
