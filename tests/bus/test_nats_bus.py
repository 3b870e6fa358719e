"""The NATS JetStream bus against a real nats-server on 127.0.0.1 (Debian package
nats-server, installed by .ci/system-deps.sh); skipped with the reason when absent."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time

import pytest

from tools import require_tool

from adlmon.events import (
    ADL, BUY, AccountSnapshot, AdlSignal, FeedGap, Fill, Funding, InsuranceFund, LedgerUpdate,
    Liquidation, LiquidationOrder, Mark, PositionSnapshot,
)

nats = pytest.importorskip("nats", reason="nats-py (the [nats] extra) is not installed")
from adlmon.bus.nats import NatsBus, decode, encode  # noqa: E402


EVENTS = [
    Fill("hyperliquid", "AVAX", "0xe92d", BUY, 22.075, 28.53, 1760130964831, -28.53, ADL,
         194.275035, 0.0, 771334864158847, "0x922a",
         Liquidation("0x2e3d", 22.025, "backstop"), "Auto-Deleveraging"),
    Fill("hyperliquid", "BTC", "0xaa", BUY, 1.0, 0.1, 2, 0.0, "open", 0.0, -0.001, 7, "", None, "Open Long"),
    Mark("hyperliquid", "BTC", 100000.5, None, 3),
    Funding("hyperliquid", "0xaa", "BTC", -1.25, 4),
    LedgerUpdate("hyperliquid", "0xbb", "liquidation", 0.0, 5, -12.5),
    AccountSnapshot("hyperliquid", "0xcc", 1000.0,
                    (PositionSnapshot("BTC", -0.5, 110000.0, 100000.0), PositionSnapshot("ETH", 2.0, 4000.0)), 6),
    LiquidationOrder("binance", "BTCUSDT", "sell", 0.5, 99000.0, 99100.0, 7, None),
    LiquidationOrder("okx", "BTC-USDT-SWAP", "buy", 3.0, 99000.0, None, 7, 12.5, "BTC-USDT"),
    InsuranceFund("bybit", "USDT", 1.5e9, 8),
    InsuranceFund("binance", "USDT:BTCUSDT", 7.9e8, 8, ("BTCUSDT", "ETHUSDT")),
    AdlSignal("okx", "BTC-USDT-SWAP", "warning", 9, {"x": 1}),
    FeedGap("hyperliquid", "trades", 10, 20, "abnormal_1006"),
]


def test_every_event_type_round_trips_exactly():
    assert decode(encode(EVENTS)) == EVENTS


@pytest.fixture
def nats_url(tmp_path):
    server = require_tool("nats-server", package="nats-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([server, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):  # bounded: up to 5 s for the server to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.skip("nats-server did not start")
                time.sleep(0.05)
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def take(bus, n_events: int) -> list:
    got = []
    async with asyncio.timeout(10):
        async for batch in bus.consume(timeout_s=0.2):
            got.extend(batch)
            if len(got) >= n_events:
                break
    return got


async def test_batches_keep_their_order_across_messages_and_a_burst_is_chunked(nats_url):
    bus = await NatsBus.connect(nats_url, "TEST", "hyperliquid", max_events=2000)
    try:
        burst = [Mark("hyperliquid", "BTC", float(i), None, i) for i in range(5000)]
        await bus.publish(EVENTS)
        await bus.publish(burst)  # 11k-fill frames exceed NATS's 1 MB message: chunked
        got = await take(bus, len(EVENTS) + len(burst))
    finally:
        await bus.close()
    assert got == EVENTS + burst


async def test_a_restarted_engine_resumes_after_the_last_batch_it_acknowledged(nats_url):
    first = await NatsBus.connect(nats_url, "TEST", "hyperliquid", max_events=3, ack_wait_s=0.5)
    await first.publish(EVENTS)  # 4 messages of <= 3 events
    got = []
    async with asyncio.timeout(10):
        async for batch in first.consume(timeout_s=0.2):
            got.append(batch)
            if len(got) == 2:
                break  # batch 1 acknowledged (batch 2 was asked for), batch 2 not
    await first.close()
    second = await NatsBus.connect(nats_url, "TEST", "hyperliquid", max_events=3, ack_wait_s=0.5)
    try:
        rest = await take(second, len(EVENTS) - 3)
    finally:
        await second.close()
    assert got[0] == EVENTS[:3]
    assert rest == EVENTS[3:]  # batch 2 redelivered, nothing lost, batch 1 not repeated


@pytest.mark.parametrize("poison", [
    b"not json",
    b'[["Mark", "hyperliquid", ["BTC"], 1.0, null, 3]]',             # a list as coin
    b'[["LedgerUpdate", "hyperliquid", {"u": 1}, "liquidation", 0.0, 5, -1.0, true]]',
    b'[["Fill", "hyperliquid", "BTC", "0xaa", "buy", 1.0, 0.1, 18446744073709551616, 0.0, '
    b'"open", 0.0, 0.0, 7, "", null, "Open Long"]]',                 # time beyond int64
    b'[["Nope"]]', b'[5]', b'{"a": 1}',
])
def test_a_message_that_breaks_the_typed_boundary_is_a_parse_error(poison):
    from adlmon.events import ParseError

    with pytest.raises(ParseError):
        decode(poison)


async def test_a_poisoned_message_is_refused_counted_and_the_consumer_goes_on(nats_url):
    bus = await NatsBus.connect(nats_url, "TEST", "hyperliquid", max_events=2000)
    try:
        await bus.js.publish("adlmon.events.hyperliquid", b'[["Mark", "hyperliquid", ["BTC"], 1.0, null, 3]]')
        await bus.js.publish("adlmon.events.hyperliquid", b"garbage")
        await bus.publish(EVENTS)
        got = await take(bus, len(EVENTS))
    finally:
        await bus.close()
    assert got == EVENTS and bus.rejected == 2
