"""EmbeddedRedis runs the real bundled redis-server and cleans up after itself."""

import socket
import subprocess
import sys
import time

import pytest
import redis
from django.conf import settings

from clera.devstack.embedded_redis import EmbeddedRedis
from clera.devstack.local_server import LocalServerError
from clera.devstack.ports import port_is_free


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


def test_a_parent_killed_outright_takes_its_redis_with_it(tmp_path) -> None:
    """SIGKILL leaves no chance to clean up; the server must still not outlive its parent."""
    script = (
        "import sys, time\n"
        "from clera.devstack.embedded_redis import EmbeddedRedis\n"
        "server = EmbeddedRedis().start()\n"
        "print(server.port, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=settings.BASE_DIR, stdout=subprocess.PIPE, text=True
    )
    port = int(parent.stdout.readline())
    assert not port_is_free("127.0.0.1", port)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while not port_is_free("127.0.0.1", port):
        assert time.monotonic() < deadline, "the embedded Redis outlived its parent"
        time.sleep(0.05)
