"""Local TCP port helpers for the servers we spawn (Redis, the sandbox, daphne)."""

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS considers free right now (another process may still race us to it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether we could bind `host:port`; checked first so a stale server is never mistaken
    for the one we are about to start. SO_REUSEADDR as the servers themselves set it: connections
    of a server just stopped linger in TIME_WAIT and must not block its restart (on Linux a
    listening socket still does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
