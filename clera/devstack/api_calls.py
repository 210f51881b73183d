"""What the portfolio page asks of our API (:data:`PAGE`), and a recording pass-through in
front of the sandbox that says what Alpaca really answered, and how often.

The gateway is pointed at the :class:`Recorder` (ALPACA_BROKER_URL); every request goes on,
unchanged, to the real sandbox, and the recorder keeps each answer's exact JSON. Tests
recompute expected values from those raw bodies (prices move between any two requests, so a
second read would not do); tests and ``bench.api`` count how many broker calls a page load
makes. Nothing is faked; ``late`` can hold an answer back after the sandbox has acted on the
request, as a slow network would.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

#: What the portfolio page asks for when it loads.
PAGE = (
    "/api/portfolio/summary",
    "/api/portfolio/positions",
    "/api/portfolio/analytics",
    "/api/portfolio/history?period=1M",
    "/api/portfolio/orders",
    "/api/portfolio/activities",
)

#: Headers passed on in each direction.
REQUEST_HEADERS = ("Authorization", "Content-Type", "Accept")
RESPONSE_HEADERS = ("Content-Type", "Retry-After")


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Recorder:
    """Forwards to ``target`` and keeps every call; use as a context manager."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        #: Seconds to hold back the answer to a request of this method (e.g. {"POST": 2}).
        self.late: dict[str, float] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
        self.late = {}

    def find(self, method: str, path: str) -> list[Call]:
        """Calls of ``method`` whose path is ``path``."""
        return [call for call in self.calls if call.method == method and call.path == path]

    def last(self, path: str, method: str = "GET") -> Call:
        found = self.find(method, path)
        assert found, f"no {method} {path} was sent; sent: {[c.path for c in self.calls]}"
        return found[-1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                sent = self.rfile.read(length) if length else None
                headers = {h: self.headers[h] for h in REQUEST_HEADERS if h in self.headers}
                answer = requests.request(
                    self.command,
                    recorder.target + self.path,
                    headers=headers,
                    data=sent,
                    timeout=60,
                )
                parts = urlsplit(self.path)
                with recorder._lock:
                    recorder._calls.append(
                        Call(
                            self.command,
                            parts.path,
                            parse_qs(parts.query),
                            answer.status_code,
                            answer.content,
                        )
                    )
                time.sleep(recorder.late.get(self.command, 0))
                try:
                    self.send_response(answer.status_code)
                    for name in RESPONSE_HEADERS:
                        if name in answer.headers:
                            self.send_header(name, answer.headers[name])
                    self.send_header("Content-Length", str(len(answer.content)))
                    self.end_headers()
                    self.wfile.write(answer.content)
                except OSError:
                    pass  # the client gave up waiting: that was the point of holding it back

            do_GET = do_POST = do_DELETE = do_PATCH = _forward  # noqa: N815 (http.server's names)

            def log_message(self, format: str, *args: object) -> None:
                """Quiet."""

        return Forward
