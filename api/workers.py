"""Several worker processes on one port, each with a listening socket of its own
(docs/architecture.md, "Worker processes").

uvicorn's workers share one listening socket that the parent binds, and whichever worker
wakes first accepts a burst of new connections: under wrk, 29 of 32 connections (and in
one run all 64) went to one of two workers, leaving the other idle. Here each worker
binds the port itself with SO_REUSEPORT, so the kernel spreads new connections evenly
over the workers' sockets (by a hash of each connection's addresses). uvicorn's own
supervisor still runs the workers (restarts, health pings, signals); it is only handed,
instead of a socket, a stand-in that becomes a fresh socket in each worker process.

A worker that stops takes the connections waiting in its own accept queue with it
(the kernel resets them); established connections are unaffected.
"""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.supervisors import Multiprocess

# Without it (not Linux, BSD or macOS), the workers share uvicorn's one socket.
SUPPORTED = hasattr(socket, "SO_REUSEPORT")


def _bind(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A listening socket on host:port (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, reuse_port=reuse_port)


def listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that other SO_REUSEPORT sockets may share."""
    return _bind(host, port, reuse_port=True)


class OwnListener:
    """Stands in uvicorn's list of listening sockets for one socket per worker: uvicorn
    spawns its workers and pickles their arguments into them, and this unpickles as a
    socket bound in that worker process (`listener`), so every worker, restarted ones
    too, listens on a socket of its own."""

    def __init__(self, host: str, port: int):
        self.host = host
        self.port = port

    def __reduce__(self):
        return listener, (self.host, self.port)


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on host:port yet. Checked without SO_REUSEPORT, which
    would otherwise let the workers share the port with a server still running there."""
    try:
        _bind(host, port, reuse_port=False).close()
    except OSError:
        return False
    return True


def run(config: uvicorn.Config) -> None:
    """Runs config.workers processes of config.app under uvicorn's supervisor."""
    Multiprocess(config, sockets=[OwnListener(config.host, config.port)]).run()  # type: ignore[list-item]
