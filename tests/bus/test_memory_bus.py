import asyncio

import pytest

from adlmon.bus.memory import BusClosed, MemoryBus
from adlmon.events import Mark


def mark(i):
    return Mark("hyperliquid", "BTC", 100.0 + i, None, i)


async def test_batches_are_consumed_in_order():
    bus = MemoryBus(100)
    await bus.publish([mark(1), mark(2)])
    await bus.publish([mark(3)])
    await bus.close()
    got = [b async for b in bus.consume()]
    assert [[e.time_ms for e in b] for b in got] == [[1, 2], [3]]


async def test_publisher_waits_when_the_bound_in_events_is_reached():
    bus = MemoryBus(3)
    await bus.publish([mark(1), mark(2)])
    blocked = asyncio.create_task(bus.publish([mark(3), mark(4)]))
    await asyncio.sleep(0.01)
    assert not blocked.done() and bus.pending == 2
    assert [e.time_ms for e in await bus.get()] == [1, 2]
    await asyncio.wait_for(blocked, 1.0)
    assert bus.pending == 2 and bus.waits == 1


async def test_a_batch_larger_than_the_bound_passes_when_the_queue_is_empty():
    bus = MemoryBus(10)
    await asyncio.wait_for(bus.publish([mark(i) for i in range(11_279)]), 1.0)
    assert len(await bus.get()) == 11_279


async def test_closed_bus_drains_then_ends_and_refuses_new_batches():
    bus = MemoryBus(10)
    await bus.publish([mark(1)])
    await bus.close()
    assert len(await bus.get()) == 1
    assert await bus.get() is None
    with pytest.raises(BusClosed):
        await bus.publish([mark(2)])
