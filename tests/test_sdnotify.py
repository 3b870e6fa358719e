"""adlmon/sdnotify.py against a real AF_UNIX datagram socket, as systemd provides."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from adlmon.sdnotify import Notifier, watchdog_interval_s


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield str(path), sock
    sock.close()


def test_ready_watchdog_stopping_and_status_reach_the_socket(notify_socket):
    path, sock = notify_socket
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("subscribed to 3 feeds")
    assert sock.recv(4096) == b"READY=1\nSTATUS=subscribed to 3 feeds"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.status("2 waves")
    assert sock.recv(4096) == b"STATUS=2 waves"
    assert n.stopping()
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket():
    name = f"adlmon-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(5)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).ready()
        assert sock.recv(4096) == b"READY=1"
    finally:
        sock.close()


def test_outside_systemd_every_call_is_a_quiet_no_op(tmp_path):
    assert not Notifier({}).ready()
    assert not Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled
    # a socket that went away never raises
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).watchdog()


def test_watchdog_interval_from_the_environment():
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_interval_s({}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    # meant for another process (sd_watchdog_enabled semantics)
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000",
                                "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000",
                                "WATCHDOG_PID": str(os.getpid())}) == 30.0


async def test_watchdog_task_pings_at_half_the_interval_and_skips_when_unhealthy(notify_socket):
    path, sock = notify_socket
    sock.setblocking(False)
    n = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000"})  # 20 ms
    healthy = [True]
    task = asyncio.create_task(n.run_watchdog(lambda: healthy[0]))
    loop = asyncio.get_running_loop()
    got = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
    assert got == b"WATCHDOG=1"
    healthy[0] = False
    await asyncio.sleep(0.05)
    while True:  # drain pings sent before the flip
        try:
            sock.recv(4096)
        except BlockingIOError:
            break
    await asyncio.sleep(0.05)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_watchdog_task_returns_when_no_watchdog_is_configured():
    await asyncio.wait_for(Notifier({}).run_watchdog(), 1)


async def test_ready_is_sent_while_every_venue_connection_is_still_failing(notify_socket, tmp_path):
    """What the unit and sdnotify.py say (issue 8 §3): READY=1 once the server listens
    and the sources are started, not after a first subscription."""
    import dataclasses
    from pathlib import Path

    from live_venue import free_port
    from adlmon.app import Daemon
    from adlmon.config import parse_config

    path, sock = notify_socket
    dead = free_port()  # nothing listens there
    cfg = parse_config({"wavelog": {"path": ""}, "venues": {"hyperliquid": {
        "ws_url": f"ws://127.0.0.1:{dead}/ws", "info_url": f"http://127.0.0.1:{dead}/info",
        "quarantine_path": str(tmp_path / "q.jsonl")}}}, "test")
    cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, listen="127.0.0.1:0"))
    daemon = Daemon(cfg, env={"NOTIFY_SOCKET": path})
    await daemon.start()
    try:
        sock.settimeout(5)
        message = await asyncio.get_running_loop().run_in_executor(None, sock.recv, 4096)
        assert message.startswith(b"READY=1")
        assert not any(s.connected for s in daemon.feeds.sessions.values())
    finally:
        await daemon.stop()
    root = Path(__file__).resolve().parents[1]
    for text in ((root / "adlmon" / "sdnotify.py").read_text(),
                 (root / "deploy" / "systemd" / "adlmon.service").read_text()):
        assert "first successful subscription" not in text
        assert "READY=1 once its HTTP server listens" in " ".join(
            text.replace("#", "").replace("``", "").split())
