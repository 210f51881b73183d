"""Test helpers that run the pipeline's long-lived parts on threads, and a cuttable TCP proxy."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

from marketdata.events import EventStream


@contextlib.contextmanager
def running(*streams: EventStream) -> Iterator[None]:
    """Run event streams on a loop of their own for the block; cancelled on the way out."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    tasks: list[asyncio.Task] = []

    def main() -> None:
        asyncio.set_event_loop(loop)

        async def run_all() -> None:
            tasks.extend(asyncio.create_task(stream.run()) for stream in streams)
            started.set()
            await asyncio.gather(*tasks, return_exceptions=True)

        loop.run_until_complete(run_all())
        loop.close()

    thread = threading.Thread(target=main, name="event-streams", daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield
    finally:
        for task in tasks:
            loop.call_soon_threadsafe(task.cancel)
        thread.join(10)


class Proxy:
    """A loopback TCP proxy: :meth:`cut` resets every connection through it (as a network
    failure would) and, while :meth:`refuse` is on, new ones are reset at once."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._refusing = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self._refusing:
                _reset(client)
                continue
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _reset(sock)

    def refuse(self, refusing: bool) -> None:
        self._refusing = refusing

    def close(self) -> None:
        self.cut()
        self._server.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass


def _reset(sock: Any) -> None:
    """Close with RST, not FIN: the peer sees a dropped connection (SHUT_RD first wakes our
    own pump blocked reading it)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    with contextlib.suppress(OSError):
        sock.close()
