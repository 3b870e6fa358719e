"""systemd's sd_notify protocol in a few lines, no dependency (ecosystem.md §2.5).

The service manager passes ``$NOTIFY_SOCKET`` (a datagram socket path; a leading
``@`` means Linux's abstract namespace) and, with ``WatchdogSec=``,
``$WATCHDOG_USEC`` (and ``$WATCHDOG_PID``). The daemon sends ``READY=1`` once its
HTTP server listens (``/metrics``, probes) and its sources are started, before any
venue connection succeeds: a venue outage must not fail or stall the start, and a
feed that is down is what ``/readyz`` and ``adlmon_feed_connected`` report, not a
unit that never becomes active. Then ``WATCHDOG=1`` from the event loop at half the
watchdog interval (so a wedged loop becomes a restart), ``STOPPING=1`` on
shutdown and ``STATUS=...`` free text for ``systemctl status``. Outside systemd
every call is a no-op returning False.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Mapping


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        path = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if path.startswith("@"):
            self.address = b"\0" + path[1:].encode()
        elif path.startswith("/"):
            self.address = path
        self.watchdog_s = watchdog_interval_s(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False when not under systemd
        or the socket is gone (never raises: notification is best effort)."""
        if self.address is None:
            return False
        payload = "\n".join(assignments).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self.address)
                sock.sendall(payload)
        except OSError:
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    async def run_watchdog(self, healthy=None) -> None:
        """Ping ``WATCHDOG=1`` every half interval until cancelled; returns at once
        when no watchdog is configured. ``healthy()`` (optional) returning False
        skips a ping, so systemd restarts a process that is alive but stuck."""
        if self.watchdog_s is None or not self.enabled:
            return
        while True:
            if healthy is None or healthy():
                self.watchdog()
            await asyncio.sleep(self.watchdog_s / 2)


def watchdog_interval_s(env: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout in seconds, or None. ``$WATCHDOG_PID``, when set, must
    be this process (sd_watchdog_enabled semantics)."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6


_default: Notifier | None = None


def _notifier() -> Notifier:
    global _default
    if _default is None:
        _default = Notifier()
    return _default


def ready(status: str | None = None) -> bool:
    return _notifier().ready(status)


def watchdog() -> bool:
    return _notifier().watchdog()


def stopping(status: str | None = None) -> bool:
    return _notifier().stopping(status)


def status(text: str) -> bool:
    return _notifier().status(text)
