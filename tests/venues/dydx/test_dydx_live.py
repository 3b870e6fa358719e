"""dYdX collectors against the fake indexer (real sockets on 127.0.0.1), with scripted faults.

Live events equal the replay of the capture the live run wrote (exactly), and the
fills equal those of the simulated cascade's own capture; without faults the waves
match truth.json.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
import pytest

from adlmon.engine.engine import Engine
from adlmon.events import FeedGap, Fill, InsuranceFund, ParseError, PartialParseError
from adlmon.io.capture import CaptureWriter, decode_line
from adlmon.metrics import Metrics
from adlmon.sim import open_lines
from adlmon.venues import SourceContext
from adlmon.venues.dydx import FACE
from adlmon.venues.dydx.config import DydxConfig
from adlmon.venues.dydx.fake import FakeDydx
from adlmon.venues.dydx.address import module_address
from adlmon.venues.dydx.sim import simulate

SPEED = 10.0
WAIT_S = 60.0  # bound of every wait loop (never reached when things work)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    out = tmp_path_factory.mktemp("dydx-cascade")
    truth = simulate(out, seed=4, accounts=600, coins=3)
    return out, truth


def replay_dir(path, **cfg) -> list:
    """What a replay of the capture publishes: bad records counted, their good events kept."""
    parser = FACE.capture_parser(DydxConfig(merge_hold_ms=8000, decode_wait_ms=8000, **cfg))
    files = sorted(path.glob("*.capture.jsonl*")) if path.is_dir() else [path]
    out = []
    for f in files:
        for line in open_lines(f):
            try:
                out += parser.parse(decode_line(line))
            except PartialParseError as exc:
                out += exc.events
            except ParseError:
                pass
    return out + parser.finish()


def fill_keys(events) -> list[tuple]:
    return sorted((e.hash, e.kind, e.side, e.px, e.sz, e.time_ms) for e in events if isinstance(e, Fill))


async def until(cond, what: str) -> None:
    for _ in range(int(WAIT_S / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def config(fake: FakeDydx, tmp_path, **kw) -> DydxConfig:
    base = dict(enabled=True, ws_url=fake.ws_url, rest_url=fake.rest_url, trades_per_connection=2,
                subscribes_per_s=50.0, ping_interval_s=1.0, liveness_timeout_s=5.0,
                backoff_initial_s=0.05, backoff_max_s=0.2, quarantine_path=str(tmp_path / "q.jsonl"),
                # At SPEED x, venue ms are SPEED times shorter in wall time: holds that cover a
                # loaded machine's stalls (the merge orders the connections; a block's answer).
                merge_hold_ms=8000, decode_wait_ms=8000)
    base.update(kw)
    if base.get("node_rest_url") == "FAKE":
        base["node_rest_url"] = fake.rest_url
    return DydxConfig(**base)


class Live:
    def __init__(self, fake: FakeDydx, cfg: DydxConfig, capture_dir, metrics=None):
        self.fake = fake
        self.events: list = []
        self.capture = CaptureWriter(capture_dir, "dydx", compress=False)
        self.capture_dir = capture_dir

        async def publish(evs):
            self.events.extend(evs)

        self.ctx = SourceContext(cfg=cfg, publish=publish, metrics=metrics, now_ms=fake.now_ms,
                                 capture=self.capture)
        self.sources = FACE.sources(self.ctx)

    async def __aenter__(self):
        await self.sources.start()
        n_markets = len(self.fake.markets)
        await until(lambda: len({(ch, i) for _c, ch, i in self.fake.subscribe_log}) >= n_markets + 1,
                    "every subscription")
        return self

    async def __aexit__(self, *exc):
        await self.sources.stop()

    @property
    def parser(self):
        return self.sources.parser


async def play(cascade, tmp_path, faults=None, fake_kw=None, cfg_kw=None, metrics=None):
    out, truth = cascade
    fake = await FakeDydx(out, speed=SPEED, paused=True, **(fake_kw or {})).start()
    try:
        async with Live(fake, config(fake, tmp_path, **(cfg_kw or {})), tmp_path / "cap",
                        metrics) as live:
            fake.resume()
            if faults is not None:
                await faults(fake, live, truth)
            await asyncio.wait_for(fake.done.wait(), WAIT_S)
            await until(lambda: live.parser.stats["final_settlement"] == 1, "the last frame")
            await until(lambda: all(s.connected for s in live.sources.sessions.values()), "reconnects")
            await until(lambda: live.sources.busy == 0, "backfills and block fetches")
    finally:
        await fake.stop()
    return live, fake


def waves_of(events, truth):
    engine = Engine("dydx", gap_ms=truth["gap_ms"], horizons_ms=truth["horizons_ms"])
    waves = []
    for e in events:
        waves += engine.apply(e)
    return waves + engine.finish()


def assert_waves_match_truth(waves, truth):
    assert len(waves) == len(truth["waves"])
    for w, tw in zip(waves, truth["waves"]):
        assert (w.t_start_ms, w.t_end_ms, w.adl_fills) == (tw["t_start_ms"], tw["t_end_ms"], tw["adl_fills"])
        assert w.needed_usd == pytest.approx(tw["needed_usd"], rel=1e-9, abs=1e-9)
        for h in truth["horizons_ms"]:
            assert w.production_haircut_usd[h] == pytest.approx(tw["production_haircut_usd"][str(h)],
                                                                rel=1e-9, abs=1e-9)


def not_gaps(events):
    return [e for e in events if not isinstance(e, FeedGap)]


async def test_live_run_equals_its_capture_replay_and_matches_truth(cascade, tmp_path):
    out, truth = cascade
    metrics = Metrics()
    live, fake = await play(cascade, tmp_path, metrics=metrics)
    # Each connection's feed series under its own source.
    sample = metrics.registry.get_sample_value
    for source, channel in (("markets", "v4_markets"), ("trades0", "v4_trades"), ("trades1", "v4_trades")):
        assert sample("adlmon_feed_messages_total", {"venue": "dydx", "channel": channel,
                                                     "source": source}) > 0
    assert not_gaps(live.events) == replay_dir(tmp_path / "cap")
    assert fill_keys(live.events) == fill_keys(replay_dir(out))
    assert live.parser.merge.late == 0  # the hold covered the connections' skew
    assert_waves_match_truth(waves_of(live.events, truth), truth)
    # 3 markets at 2 per connection: two trades shards and the markets connection.
    assert set(live.sources.sessions) == {"dydx.markets", "dydx.trades.0", "dydx.trades.1"}
    assert live.sources.venue_errors == 0 and fake.rate_limited == 0
    assert all(s.connects == 1 for s in live.sources.sessions.values())
    # Market discovery came from REST and is in the capture.
    caps = [decode_line(x) for f in sorted((tmp_path / "cap").iterdir()) for x in open_lines(f)]
    assert any(r.kind == "rest" and r.extra.get("req") == "/v4/perpetualMarkets" for r in caps)
    assert {r.kind for r in caps} == {"open", "ws", "rest"} | ({"close"} if any(
        r.kind == "close" for r in caps) else set())


def _first_adl_t(truth) -> int:
    return truth["waves"][0]["t_start_ms"]


async def _drop_trades(fake, live, truth, code=None):
    await until(lambda: fake.now_ms() >= _first_adl_t(truth) - 300, "the first wave")
    for c in list(fake.conns.values()):
        if any(ch == "v4_trades" for ch, _ in c.subs):
            if code is None:
                c.ws._req.transport.abort()
            else:
                await c.ws.close(code=code)


@pytest.mark.parametrize("code", [None, 1012])
async def test_dropped_trades_connections_are_backfilled_from_the_snapshot_and_rest(cascade, tmp_path, code):
    out, truth = cascade

    async def faults(fake, live, truth):
        fake.reject_upgrades(10**6, retry_after_s=0)  # we stay away while the venue plays on
        await _drop_trades(fake, live, truth, code)
        await until(lambda: fake.now_ms() >= truth["waves"][0]["t_end_ms"] + 200, "the wave to pass")
        fake.reject_upgrades(0)

    live, fake = await play(cascade, tmp_path, faults, fake_kw={"snapshot_trades": 3},
                            cfg_kw={"rest_page_limit": 50, "backfill_max_pages": 100})
    reason = "abnormal_1006" if code is None else "close_1012"
    assert any(s.reconnects.get(reason) for s in live.sources.sessions.values())
    assert live.sources.backfills > 0 and live.sources.backfill_gaps == 0
    assert any("createdBeforeOrAtHeight" in r for r in fake.rest_log)  # paged back by height
    assert not_gaps(live.events) == replay_dir(tmp_path / "cap")
    assert fill_keys(live.events) == fill_keys(replay_dir(out))
    assert any(isinstance(e, FeedGap) and e.channel == "v4_trades" for e in live.events)


async def test_resent_frames_are_deduplicated(cascade, tmp_path):
    out, truth = cascade

    async def faults(fake, live, truth):
        await until(lambda: fake.now_ms() >= truth["waves"][0]["t_end_ms"] + 100, "the first wave")
        await fake.resend(60)

    live, fake = await play(cascade, tmp_path, faults)
    assert live.parser.seen.duplicates > 0
    assert not_gaps(live.events) == replay_dir(tmp_path / "cap")
    assert fill_keys(live.events) == fill_keys(replay_dir(out))
    assert_waves_match_truth(waves_of(live.events, truth), truth)


async def test_rate_limit_close_is_a_1008_reconnect_and_loses_no_fill(cascade, tmp_path):
    out, truth = cascade

    async def faults(fake, live, truth):
        await until(lambda: fake.now_ms() >= _first_adl_t(truth) + 100, "the first wave")
        await fake.rate_limit_close()

    live, fake = await play(cascade, tmp_path, faults, fake_kw={"snapshot_trades": 3})
    assert all(s.reconnects.get("close_1008") == 1 for s in live.sources.sessions.values())
    assert not_gaps(live.events) == replay_dir(tmp_path / "cap")
    assert fill_keys(live.events) == fill_keys(replay_dir(out))


async def test_unpaced_subscribes_get_closed_1008_and_paced_ones_do_not(cascade, tmp_path):
    out, _truth = cascade
    # The fake allows 2 subscribes per second per connection (with slack for a loaded machine,
    # the paced client sends 1 per second); 3 markets on one connection.
    fake = await FakeDydx(out, paused=True, subscribes_per_s=2).start()
    try:
        paced = Live(fake, config(fake, tmp_path, subscribes_per_s=1.0, trades_per_connection=3),
                     tmp_path / "a")
        async with paced:
            pass
        assert fake.rate_limited == 0
        assert not any(s.reconnects for s in paced.sources.sessions.values())
        hasty = Live(fake, config(fake, tmp_path, subscribes_per_s=1000.0, trades_per_connection=3),
                     tmp_path / "b")
        await hasty.sources.start()
        try:
            await until(lambda: any(s.reconnects.get("close_1008")
                                    for s in hasty.sources.sessions.values()), "a 1008 close")
        finally:
            await hasty.sources.stop()
        assert fake.rate_limited > 0
    finally:
        await fake.stop()


async def test_silent_heartbeat_is_a_ping_timeout_reconnect(cascade, tmp_path):
    out, _truth = cascade
    fake = await FakeDydx(out, paused=True).start()
    try:
        live = Live(fake, config(fake, tmp_path, ping_interval_s=0.2, liveness_timeout_s=1.0), tmp_path / "c")
        async with live:
            # The venue clock is paused: the merge's hold is what the watermark lags.
            assert live.sources.watermark_ms() == fake.now_ms() - 8000
            fake.mute_heartbeat(True)
            await until(lambda: any(s.reconnects.get("ping_timeout") or s.reconnects.get("timeout")
                                    for s in live.sources.sessions.values()), "a ping timeout")
            fake.mute_heartbeat(False)
            await until(lambda: all(s.connected for s in live.sources.sessions.values()), "reconnect")
    finally:
        await fake.stop()


async def test_fake_enforces_heartbeat_caps_and_ignores_json_ping(cascade):
    out, _truth = cascade
    fake = await FakeDydx(out, paused=True, heartbeat_s=0.2, heartbeat_timeout_s=0.5,
                          max_trades_per_connection=2).start()
    tickers = sorted(fake.markets)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(fake.ws_url, autoping=False) as ws:
                assert orjson.loads((await ws.receive()).data)["type"] == "connected"
                await ws.send_str('{"type":"ping"}')
                for t in tickers:
                    await ws.send_str(orjson.dumps({"type": "subscribe", "channel": "v4_trades",
                                                    "id": t}).decode())
                got = []
                while True:  # we never answer the server's pings: it closes 1011
                    msg = await ws.receive()
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        got.append(orjson.loads(msg.data))
                    elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                assert ws.close_code == 1011
        assert [m["type"] for m in got] == ["subscribed", "subscribed", "error"]  # no pong
        assert got[2]["message"] == "Per-connection subscription limit reached for v4_trades (limit=2)."
        assert fake.json_pings == 1 and fake.heartbeat_closes == 1
    finally:
        await fake.stop()


async def test_insurance_fund_is_read_from_the_bank_rest(cascade, tmp_path):
    out, _truth = cascade
    addr = module_address("insurance_fund")
    fake = await FakeDydx(out, speed=SPEED, paused=True, bank_balances={addr: 7_500_000_000}).start()
    try:
        live = Live(fake, config(fake, tmp_path, lcd_url=fake.rest_url), tmp_path / "d")
        async with live:
            fake.resume()  # the merge releases by the venue clock
            await until(lambda: any(isinstance(e, InsuranceFund) for e in live.events), "a fund read")
    finally:
        await fake.stop()
    fund = [e for e in live.events if isinstance(e, InsuranceFund)][0]
    assert (fund.pool, fund.balance_usd) == ("insurance_fund", 7500.0)
    assert [e for e in replay_dir(tmp_path / "d") if isinstance(e, InsuranceFund)][0] == fund


async def test_malformed_frames_are_counted_and_their_good_trades_kept(cascade, tmp_path):
    out, truth = cascade
    tk = sorted(FakeDydx(out).markets)[0]
    good = {"id": "7fffffff0000000200000001", "size": "0.5", "price": "100", "side": "BUY",
            "createdAt": "2025-10-10T21:15:30.000Z", "type": "DELEVERAGED"}

    async def faults(fake, live, truth):
        await until(lambda: fake.now_ms() >= _first_adl_t(truth), "the first wave")
        await fake.inject("{not json")
        await fake.inject({"type": "channel_data", "channel": "v4_trades", "id": tk, "version": "2.1.0",
                           "contents": {"trades": [good, {"id": "bad", "type": "DELEVERAGED"}]}})

    live, fake = await play(cascade, tmp_path, faults)
    errors = {ch: n for s in live.sources.sessions.values() for ch, n in s.parse_errors.items()}
    assert errors.get("v4_trades") == 1 and sum(errors.values()) >= 2  # the bad JSON once per socket
    assert any(isinstance(e, Fill) and e.hash == good["id"] for e in live.events)
    assert all(s.connects == 1 for s in live.sources.sessions.values())  # nothing reconnected
    assert not_gaps(live.events) == replay_dir(tmp_path / "cap")


async def test_block_decode_names_the_winners_and_h_is_exact(cascade, tmp_path):
    out, truth = cascade
    live, fake = await play(cascade, tmp_path, cfg_kw={"node_rest_url": "FAKE"})
    assert live.parser.stats["decode_timeouts"] == 0
    assert any("/cosmos/tx/v1beta1/txs/block/" in r for r in fake.rest_log)
    waves = waves_of(live.events, truth)
    assert len(waves) == len(truth["waves"])
    for w, tw in zip(waves, truth["waves"]):
        assert w.adl_fills == tw["adl_fills"] and w.accounts == tw["winners_exact"]
        assert w.needed_usd == pytest.approx(tw["needed_usd"], rel=1e-9, abs=1e-9)
        for h in truth["horizons_ms"]:
            assert w.production_haircut_usd[h] == pytest.approx(
                tw["production_haircut_exact_usd"][str(h)], rel=1e-9, abs=1e-9)
        assert w.losers >= 1  # the liquidated subaccount is named too
    assert not_gaps(live.events) == replay_dir(tmp_path / "cap", node_rest_url="x")


async def test_no_venue_means_discovery_retries_and_a_clean_stop(tmp_path):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = DydxConfig(enabled=True, ws_url=f"ws://127.0.0.1:{port}/v4/ws", rest_url=f"http://127.0.0.1:{port}",
                     backoff_initial_s=0.01, backoff_max_s=0.05, quarantine_path=str(tmp_path / "q"))
    events = []

    async def publish(evs):
        events.extend(evs)

    sources = FACE.sources(SourceContext(cfg=cfg, publish=publish, metrics=None,
                                         now_ms=lambda: 1_000_000))
    await sources.start()
    await until(lambda: sources.discovery.startswith("pending:"), "a failed discovery")
    st = sources.status()
    assert st["dydx.startup"]["healthy"] is False and not st["dydx.markets"]["healthy"]
    assert "pending" in st["dydx.markets"]["detail"]
    await sources.stop()
    assert events == [] and sources.sessions == {}
