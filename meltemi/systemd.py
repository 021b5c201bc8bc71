"""What systemd hands a service and expects from it: socket activation and readiness notification.

Socket activation (sd_listen_fds(3)): when LISTEN_PID is this process and
LISTEN_FDS is N, descriptors 3 .. 3+N-1 are listening sockets that systemd
bound (a `.socket` unit). The master serves those instead of binding
`--bind`; they are shared by all workers (each worker polls them with
EPOLLEXCLUSIVE), and they stay open in systemd across restarts, so a
restart loses no queued connection.

Notification (sd_notify(3)): when NOTIFY_SOCKET names a datagram socket (a
path, or an abstract name starting with '@'), the master sends READY=1 once
every worker slot serves, RELOADING=1 when SIGHUP begins a reload and
READY=1 again when every slot has a new worker, STOPPING=1 when a stop
begins. `Type=notify` units then know when the server really serves.

Both read their variables once, in the master, and remove them from the
environment (as sd_listen_fds(1) and sd_notify(1, ...) do), so neither the
workers nor the application act on them again.
"""

from __future__ import annotations

import os
import socket
import time

from .worker import Listener

__all__ = ["Notifier", "listen_fds"]

LISTEN_FDS_START = 3


def listen_fds(environ: dict | None = None) -> list[Listener]:
    """The listening sockets systemd passed to this process (none if it passed none). Raises ValueError for a
    descriptor that is not a listening stream socket."""
    environ = os.environ if environ is None else environ
    pid, count = environ.get("LISTEN_PID", ""), environ.get("LISTEN_FDS", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        environ.pop(name, None)
    if not pid.isdigit() or int(pid) != os.getpid() or not count.isdigit():
        return []
    listeners = []
    for fd in range(LISTEN_FDS_START, LISTEN_FDS_START + int(count)):
        os.set_inheritable(fd, False)
        sock = socket.socket(fileno=fd)
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            raise ValueError(f"descriptor {fd} from systemd (LISTEN_FDS) is not a listening stream socket")
        sock.setblocking(False)
        listeners.append(_listener(sock))
    return listeners


def _listener(sock: socket.socket) -> Listener:
    if sock.family == socket.AF_UNIX:
        path = sock.getsockname()
        shown = path if isinstance(path, str) else repr(path)
        return Listener(sock, "localhost", "80", f"unix:{shown} (from systemd)")
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if sock.family == socket.AF_INET6 else host
    return Listener(sock, shown, str(port), f"http://{shown}:{port} (from systemd)")


class Notifier:
    """Sends sd_notify messages to the socket NOTIFY_SOCKET names; does nothing without one."""

    def __init__(self, environ: dict | None = None):
        environ = os.environ if environ is None else environ
        address = environ.pop("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if address.startswith("@"):
            self.address = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self.address = address
        self.sock: socket.socket | None = None

    def send(self, message: str) -> None:
        if self.address is None:
            return
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self.sock.sendto(message.encode(), self.address)
        except OSError:
            pass  # systemd went away or never listened: notification is best effort

    def ready(self, status: str) -> None:
        self.send(f"READY=1\nSTATUS={status}")

    def reloading(self) -> None:
        self.send(f"RELOADING=1\nMONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
