"""The fakes play each venue's connection rules, and the collectors keep them:
Bybit's 20 s app ping, OKX's text ping, Binance's server pings answered (issue 11)."""

import asyncio
import dataclasses
import time

import aiohttp
import orjson

from adlmon.venues import SourceContext, face
from adlmon.venues.binance.fake import FakeBinance
from adlmon.venues.bybit.fake import FakeBybit
from adlmon.venues.okx.fake import FakeOkx

FAST = dict(ping_interval_s=0.1, liveness_timeout_s=2.0, backoff_initial_s=0.01, backoff_max_s=0.05,
            quarantine_path="")


async def _noop(batch):
    return None


async def _keepalive(name, fake, pinged, **kw):
    """The venue's collectors against a fake that closes idle sockets fast."""
    f = face(name)
    cfg = f.demo_config(f.config(), fake)
    cfg = dataclasses.replace(cfg, insurance_poll_interval_s=60.0, **{**FAST, **kw})
    feeds = f.sources(SourceContext(cfg, _noop, None, lambda: int(time.time() * 1000)))
    await feeds.start()
    try:
        await fake.wait_for(pinged, "the client's pings", 10.0)
        return feeds.status()
    finally:
        await feeds.stop()


async def test_bybit_app_ping_keeps_an_idle_socket_open():
    fake = await FakeBybit(idle_close_s=0.5).start()
    try:
        await _keepalive("bybit", fake, lambda: fake.app_pings >= 12, inverse=False)  # > 1 s of pings
    finally:
        await fake.stop()
    assert fake.closed_idle == 0 and fake.connections_total == 1


async def test_okx_text_ping_keeps_an_idle_socket_open():
    fake = await FakeOkx(idle_close_s=0.5).start()
    try:
        status = await _keepalive("okx", fake, lambda: fake.app_pings >= 12)
    finally:
        await fake.stop()
    assert fake.closed_idle == 0 and fake.connections_total == 1
    assert status["okx.public"]["session"]["reconnects"] == {}  # every pong was recognised


async def test_binance_server_pings_are_answered():
    fake = await FakeBinance(ping_every_s=0.05, pong_timeout_s=0.5).start()
    try:
        await _keepalive("binance", fake, lambda: fake.pings_sent >= 10, ping_interval_s=0.2)
    finally:
        await fake.stop()
    assert fake.closed_no_pong == 0 and fake.connections_total == 1


async def _raw(url, send=None, n=1):
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        if send is not None:
            await ws.send_str(send)
        return [await asyncio.wait_for(ws.receive(), 5) for _ in range(n)]


async def test_fake_rules_bybit_caps_args_okx_rejects_unknown_binance_needs_the_market_path():
    by, ok, bn = await FakeBybit().start(), await FakeOkx().start(), await FakeBinance(ping_every_s=0.05,
                                                                                           pong_timeout_s=0.2).start()
    try:
        (m,) = await _raw(by.ws_url("/v5/public/linear"),
                          orjson.dumps({"op": "subscribe", "args": [f"tickers.S{i}" for i in range(11)]}).decode())
        assert orjson.loads(m.data)["success"] is False
        (m,) = await _raw(ok.ws_url("/ws/v5/public"),
                          orjson.dumps({"op": "subscribe", "args": [{"channel": "books"}]}).decode())
        assert orjson.loads(m.data)["code"] == "60018"
        async with aiohttp.ClientSession() as http:
            # no routed path: the venue accepts and silently sends nothing of these streams
            async with http.ws_connect(bn.ws_url("/stream?streams=!forceOrder@arr")) as ws:
                assert bn.subscribed("!forceOrder@arr") == []
            # a client that never answers pings is closed
            async with http.ws_connect(bn.ws_url("/market/ws/!forceOrder@arr"), autoping=False) as ws:
                msg = await asyncio.wait_for(ws.receive(), 5)
                while msg.type == aiohttp.WSMsgType.PING:
                    msg = await asyncio.wait_for(ws.receive(), 5)
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1008
        assert bn.closed_no_pong == 1
    finally:
        for f in (by, ok, bn):
            await f.stop()
