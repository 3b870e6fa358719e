
import pytest
from aiohttp import web

from adlmon.net.backoff import Backoff
from adlmon.net.rest import RestClient, RestError, WeightLimiter
from tests.local_http import serve_post


class FakeTime:
    """A clock whose sleep advances it: the limiter's waits become exact arithmetic."""

    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self):
        return self.now

    async def sleep(self, s):
        self.slept.append(s)
        self.now += s


async def test_bucket_spends_a_minute_of_weight_then_refills_at_the_per_second_rate():
    t = FakeTime()
    lim = WeightLimiter(1200, clock=t.clock, sleep=t.sleep)
    for _ in range(600):  # clearinghouseState costs 2: 600 of them use the whole minute
        await lim.acquire(2)
    assert t.now == 0.0
    await lim.acquire(20)  # 20 more weight at 20/s
    assert t.now == pytest.approx(1.0)


async def test_spending_over_time_never_exceeds_the_budget_per_minute():
    t = FakeTime()
    lim = WeightLimiter(1200, clock=t.clock, sleep=t.sleep)
    spent_at = []
    for _ in range(300):
        await lim.acquire(20)
        spent_at.append(t.now)
    # any 60 s window after the initial full bucket holds at most 1200 + 1200 weight
    for i, start in enumerate(spent_at):
        in_window = sum(20 for s in spent_at[i:] if s < start + 60)
        assert in_window <= 2400
    assert spent_at[-1] == pytest.approx((300 * 20 - 1200) / 20)


async def test_block_for_holds_every_request_until_retry_after():
    t = FakeTime()
    lim = WeightLimiter(1200, clock=t.clock, sleep=t.sleep)
    lim.block_for(3.0)
    await lim.acquire(2)
    assert t.now >= 3.0


async def test_charge_after_the_fact_delays_the_next_request():
    t = FakeTime()
    lim = WeightLimiter(60, clock=t.clock, sleep=t.sleep)
    await lim.acquire(60)
    lim.charge(10)  # per-item weight learnt from the response
    await lim.acquire(1)
    assert t.now == pytest.approx(11.0)


@pytest.fixture
async def info_server():
    state = {"calls": 0, "mode": "ok"}

    async def info(request):
        state["calls"] += 1
        body = await request.json()
        if state["mode"] == "429-once" and state["calls"] == 1:
            return web.Response(status=429, headers={"Retry-After": "0.05"})
        if state["mode"] == "400":
            return web.Response(status=400, text="bad request")
        if state["mode"] == "garbage":
            return web.Response(text="<html>")
        return web.json_response({"echo": body})

    async def get(request):
        state["calls"] += 1
        if state["mode"] == "429-once" and state["calls"] == 1:
            return web.Response(status=429, headers={"Retry-After": "0.05"})
        return web.Response(text='{"q": "%s",  "n": 1.50}' % request.query_string,
                            content_type="application/json")

    async with serve_post("/info", info, get=("/info/api/v1/recentTrades", get)) as url:
        yield url, state


async def test_post_returns_json_and_429_is_retried_after_retry_after(info_server):
    url, state = info_server
    state["mode"] = "429-once"
    results = []
    lim = WeightLimiter(1200)
    client = RestClient(url, lim, on_result=results.append)
    try:
        assert await client.post({"type": "allMids"}, 2) == {"echo": {"type": "allMids"}}
    finally:
        await client.close()
    assert results == ["http_429", "ok"]
    assert state["calls"] == 2


async def test_client_errors_fail_at_once_and_garbage_is_reported(info_server):
    url, state = info_server
    client = RestClient(url, WeightLimiter(1200))
    try:
        state["mode"] = "400"
        with pytest.raises(RestError) as err:
            await client.post({"type": "x"}, 20)
        assert err.value.reason == "http_4xx" and state["calls"] == 1
        state["mode"] = "garbage"
        with pytest.raises(RestError) as err:
            await client.post({"type": "x"}, 20)
        assert err.value.reason == "bad_json"
    finally:
        await client.close()


async def test_unreachable_endpoint_is_retried_then_raises_connect_error():
    slept = []

    async def sleep(s):
        slept.append(s)

    client = RestClient("http://127.0.0.1:9/info", WeightLimiter(1200), max_attempts=3,
                        backoff=Backoff(0.01, 0.02), sleep=sleep)
    try:
        with pytest.raises(RestError) as err:
            await client.post({"type": "allMids"}, 2)
    finally:
        await client.close()
    assert err.value.reason == "connect_error"
    assert len(slept) == 2 and all(0 <= s <= 0.02 for s in slept)


async def test_get_text_returns_json_and_the_body_as_received_and_retries_a_429(info_server):
    url, state = info_server
    state["mode"] = "429-once"
    results = []
    client = RestClient(url, WeightLimiter(1200), on_result=results.append)
    try:
        obj, raw = await client.get_text("/api/v1/recentTrades", {"market_id": 0, "limit": 5}, 600)
    finally:
        await client.close()
    assert obj == {"q": "market_id=0&limit=5", "n": 1.5}
    assert raw == '{"q": "market_id=0&limit=5",  "n": 1.50}'
    assert results == ["http_429", "ok"]
