"""WsSession against a small scriptable websocket server on 127.0.0.1 (venue-neutral).

The Hyperliquid fault matrix against the fake venue is in tests/test_faults.py;
these pin the session's own rules with a toy venue."""

import asyncio
import random

import orjson
import pytest
from aiohttp import web

from adlmon.events import FeedGap, Mark, ParseError
from adlmon.net.backoff import Backoff
from adlmon.net.quarantine import Quarantine
from adlmon.net.session import ACK, DATA, ERROR, IGNORE, PING, PONG, ChannelPolicy, WsSession


class ToyAdapter:
    """Frames: {"ch": name, "px": float} data; {"ch": "pong"}; {"ch": "error", "fatal": bool}."""

    venue = "toy"

    def __init__(self, busy_budget_s=None):
        self.channels = [ChannelPolicy("ticks", busy_budget_s), ChannelPolicy("alerts", None)]

    def subscriptions(self):
        return [{"op": "sub", "ch": "ticks"}, {"op": "sub", "ch": "alerts"}]

    def ping_message(self):
        return {"op": "ping"}

    def classify(self, obj):
        ch = obj["ch"]
        if ch == "pong":
            return PONG, ""
        if ch == "ack":
            return ACK, ""
        if ch == "error":
            return ERROR, ""
        if ch == "hello":
            return IGNORE, ""
        if ch == "srvping":
            return PING, ""
        return DATA, ch

    def pong_message(self, obj):
        return {"op": "pong", "n": obj.get("n")}

    def error_is_fatal(self, obj):
        return obj.get("fatal", False)

    def ignore_text(self, raw):
        return raw == b"welcome"

    def guess_channel(self, raw):
        return "ticks" if raw.startswith(b'{"ch":"ticks"') else None

    def parse(self, channel, obj):
        if "px" not in obj:
            raise ParseError("missing_field", "no px")
        return [Mark("toy", channel, float(obj["px"]), None, int(obj.get("t", 0)))]


class ToyVenue:
    def __init__(self):
        self.script = {}  # knobs read by the handler
        self.connections = 0
        self.pings = 0
        self.pongs = []
        self.subs = []

    async def handler(self, request):
        self.connections += 1
        if self.script.get("status_on", {}).get(self.connections):
            status, headers = self.script["status_on"][self.connections]
            return web.Response(status=status, headers=headers)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        conn = self.connections
        feeder = asyncio.create_task(self.feed(ws, conn))
        try:
            async for msg in ws:
                obj = orjson.loads(msg.data)
                if obj.get("op") == "ping":
                    self.pings += 1
                    if not self.script.get("mute_pongs"):
                        await ws.send_str('{"ch":"pong"}')
                elif obj.get("op") == "pong":
                    self.pongs.append(obj.get("n"))
                elif obj.get("op") == "sub":
                    self.subs.append((conn, obj["ch"]))
                    await ws.send_str('{"ch":"ack"}')
        finally:
            feeder.cancel()
        return ws

    async def feed(self, ws, conn):
        for frame in self.script.get("frames", []):
            await ws.send_str(frame)
        if conn in self.script.get("close_on", ()):
            await ws.close(code=1001)
            return
        for i in range(self.script.get("ticks", 0)):
            await ws.send_str(orjson.dumps({"ch": "ticks", "px": 100 + i, "t": i}).decode())
            await asyncio.sleep(0.01)
        # then silent, but still answering pings


@pytest.fixture
async def venue():
    v = ToyVenue()
    app = web.Application()
    app.router.add_get("/ws", v.handler)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    v.url = f"ws://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/ws"
    yield v
    await runner.cleanup()


class Recorder:
    def __init__(self):
        self.batches = []

    async def __call__(self, events):
        self.batches.append(list(events))

    @property
    def events(self):
        return [e for b in self.batches for e in b]


def session(venue, adapter, out, delays, tmp_path=None, **kw):
    async def sleep(s):
        delays.append(s)
        await asyncio.sleep(min(s, 0.01))
    opts = dict(ping_interval_s=0.05, liveness_timeout_s=0.2,
                backoff=Backoff(0.05, 0.2, rng=random.Random(1)), sleep=sleep)
    opts.update(kw)
    if tmp_path is not None:
        opts["quarantine"] = Quarantine(tmp_path / "q.jsonl", 100_000)
    return WsSession("toy", venue.url, adapter, out, **opts)


async def run_until(sess, cond, timeout=5.0):
    task = asyncio.create_task(sess.run())
    try:
        async with asyncio.timeout(timeout):
            while not cond():
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_quiet_channel_silence_never_reconnects_while_pongs_flow(venue):
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(busy_budget_s=None), out, delays)
    await run_until(s, lambda: venue.pings >= 8)
    assert s.connects == 1 and s.reconnects == {}
    assert s.status()["channels"]["alerts"]["busy"] is False


async def test_busy_channel_silence_reconnects_and_announces_a_gap_per_channel(venue):
    venue.script["ticks"] = 5
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(busy_budget_s=0.15), out, delays)
    await run_until(s, lambda: s.connects >= 2 and s.gaps_emitted >= 2)
    assert s.reconnects.get("silence", 0) >= 1
    gaps = [e for e in out.events if isinstance(e, FeedGap)]
    assert {g.channel for g in gaps[:2]} == {"ticks", "alerts"}
    assert all(g.from_ms <= g.to_ms and g.reason == "silence" for g in gaps)
    assert [sub for conn, sub in venue.subs if conn == 2] == ["ticks", "alerts"]  # resubscribed


async def test_missing_pongs_are_a_ping_timeout(venue):
    venue.script["mute_pongs"] = True
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(), out, delays)
    await run_until(s, lambda: s.reconnects.get("ping_timeout", 0) >= 1)
    assert s.last_reason == "ping_timeout"


async def test_bad_frames_are_counted_per_channel_quarantined_and_the_feed_stays_up(venue, tmp_path):
    venue.script["frames"] = ['{"ch":"ticks","px":1', '{"ch":"alerts"}', "welcome",
                              '{"ch":"hello"}', '{"ch":"mystery","px":1}',
                              '{"ch":"ticks","px":2.5,"t":9}']
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(), out, delays, tmp_path=tmp_path)
    await run_until(s, lambda: s.messages.get("ticks", 0) >= 1 and venue.pings >= 3)
    assert s.parse_errors == {"ticks": 1, "alerts": 1, "unknown": 1}
    assert s.connects == 1
    assert [e.mark_px for e in out.events] == [2.5]
    lines = [orjson.loads(x) for x in (tmp_path / "q.jsonl").read_bytes().splitlines()]
    assert [(r["channel"], r["reason"]) for r in lines] == [
        ("ticks", "bad_json"), ("alerts", "missing_field"), ("unknown", "unknown_channel")]


async def test_fatal_error_payload_reconnects_and_benign_one_does_not(venue):
    venue.script["frames"] = ['{"ch":"error","fatal":false}', '{"ch":"error","fatal":true}']
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(), out, delays)
    await run_until(s, lambda: s.connects >= 2)
    assert s.reconnects["error_payload"] >= 1 and set(s.reconnects) == {"error_payload"}


async def test_close_frame_code_is_the_reconnect_reason(venue):
    venue.script["close_on"] = {1}
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(), out, delays)
    await run_until(s, lambda: s.connects >= 2)
    assert s.reconnects == {"close_1001": 1}


async def test_429_on_upgrade_waits_at_least_retry_after_and_other_errors_back_off(venue):
    venue.script["status_on"] = {1: (429, {"Retry-After": "0.7"}), 2: (503, {})}
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(), out, delays)
    await run_until(s, lambda: s.connects >= 1)
    assert s.reconnects == {"http_429": 1, "connect_error": 1}
    assert delays[0] >= 0.7 and delays[1] <= 0.2


async def test_unreachable_venue_retries_with_capped_jittered_backoff():
    class Nowhere:
        url = "ws://127.0.0.1:9/ws"
    out, delays = Recorder(), []
    # A refused connect fails at once; a handshake limit well above a loaded machine's
    # scheduling delay keeps the reason connect_error, not timeout.
    s = session(Nowhere, ToyAdapter(), out, delays, liveness_timeout_s=2.0)
    await run_until(s, lambda: len(delays) >= 8)
    assert set(s.reconnects) == {"connect_error"} and not s.connected
    assert all(0 <= d <= 0.2 for d in delays)
    assert s.status()["connected"] is False


async def test_a_venue_ping_is_answered_with_the_adapters_pong(venue):
    venue.script["frames"] = ['{"ch":"srvping","n":1}', '{"ch":"srvping","n":2}']
    out, delays = Recorder(), []
    s = session(venue, ToyAdapter(), out, delays)
    await run_until(s, lambda: len(venue.pongs) >= 2)
    assert venue.pongs == [1, 2] and s.parse_errors == {} and s.reconnects == {}


async def test_a_pace_hook_is_awaited_before_every_subscribe(venue):
    calls = []

    class Paced(ToyAdapter):
        async def pace(self):
            calls.append(len(venue.subs))
            await asyncio.sleep(0.01)
    out, delays = Recorder(), []
    s = session(venue, Paced(), out, delays)
    await run_until(s, lambda: len(venue.subs) >= 2)
    assert len(calls) == 2  # one wait before each subscribe
