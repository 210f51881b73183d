"""EmbeddedRedis runs the real bundled redis-server and cleans up after itself."""

import socket

import pytest
import redis

from clera.embedded_redis import EmbeddedRedis
from clera.local_server import LocalServerError


def _accepts_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_serves_commands_then_releases_its_port():
    with EmbeddedRedis(port=0) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
        client.close()
        port = server.port

    assert not _accepts_connections(port)


def test_refuses_a_port_that_is_taken():
    with EmbeddedRedis(port=0) as server, pytest.raises(LocalServerError, match="in use"):
        EmbeddedRedis(port=server.port).start()
