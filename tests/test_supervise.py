"""The supervisor (issue 9): an unexpected exception is logged with its traceback, counted,
restarted with backoff where allowed, and shown in readiness while the task is down."""

from __future__ import annotations

import asyncio
import logging

from adlmon.errorlog import ErrorLog
from adlmon.metrics import Metrics
from adlmon.server import ServerState
from adlmon.supervise import Supervisor


def sample(metrics: Metrics, name: str, task: str) -> float:
    return metrics.registry.get_sample_value(name, {"task": task}) or 0.0


async def wait_for(cond, timeout: float = 5.0):
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.005)


async def test_a_crashing_task_is_logged_counted_and_restarted_with_backoff(caplog):
    metrics = Metrics(process_collectors=False)
    sup = Supervisor(metrics, backoff_initial_s=0.01, backoff_max_s=0.05)
    runs = []

    async def flaky():
        runs.append(1)
        if len(runs) <= 3:
            raise KeyError("unhashable user")
        await asyncio.sleep(3600)

    with caplog.at_level(logging.ERROR, logger="adlmon.supervise"):
        sup.spawn("engine", flaky)
        await wait_for(lambda: len(runs) == 4)
    assert sample(metrics, "adlmon_task_restarts_total", "engine") == 3
    assert sample(metrics, "adlmon_task_failures_total", "engine") == 3
    assert sample(metrics, "adlmon_task_up", "engine") == 1
    assert sup.problems() == []
    records = [r for r in caplog.records if "task engine failed" in r.getMessage()]
    assert len(records) == 3 and all(r.exc_info for r in records)  # with the traceback
    await sup.stop()


async def test_a_task_that_cannot_be_restarted_fails_readiness_naming_it_and_its_error():
    metrics = Metrics(process_collectors=False)
    state = ServerState(metrics)
    state.started = True
    state.update_source("feed", healthy=True, connected=True)
    sup = Supervisor(metrics)
    state.add_check("tasks", sup.problems, sup.status)
    assert state.readiness() == (True, [])

    async def boom():
        raise TypeError("'int' object is not iterable")

    sup.spawn("reports", boom, restart=False)
    await wait_for(lambda: sup.states["reports"].fatal)
    ready, reasons = state.readiness()
    assert not ready
    assert reasons == ["task reports failed and is not restarted: TypeError: 'int' object is "
                       "not iterable"]
    assert sample(metrics, "adlmon_task_up", "reports") == 0
    assert state.status()["tasks"]["reports"]["fatal"] is True
    await sup.stop()


async def test_readiness_fails_while_a_task_waits_for_its_restart():
    held = asyncio.Event()  # the backoff wait never ends: the restart stays pending
    sup = Supervisor(sleep=lambda _delay: held.wait())

    async def boom():
        raise RuntimeError("venue answered nonsense")

    sup.spawn("hyperliquid.startup", boom, once=True)
    await wait_for(lambda: sup.states["hyperliquid.startup"].down)
    assert sup.problems() == ["task hyperliquid.startup down, restart 1 pending: RuntimeError: "
                              "venue answered nonsense"]
    await sup.stop()


async def test_a_long_lived_task_that_returns_is_a_failure_but_a_once_task_may_return():
    sup = Supervisor(backoff_initial_s=0.01, backoff_max_s=0.01)
    n = {"loop": 0}

    async def loop_task():
        n["loop"] += 1

    async def once():
        return None

    sup.spawn("tick", loop_task)
    sup.spawn("startup", once, once=True)
    await wait_for(lambda: n["loop"] >= 3)
    assert sup.states["tick"].last_error.startswith("returned")
    assert sup.states["startup"].done and not sup.states["startup"].down
    await sup.stop()


async def test_spawning_a_running_name_again_returns_the_running_task():
    sup = Supervisor()

    async def forever():
        await asyncio.sleep(3600)

    a = sup.spawn("x", forever)
    assert sup.spawn("x", forever) is a
    await sup.stop()
    assert a.done()


def test_error_log_throttles_per_reason_and_counts_everything(caplog):
    errors = ErrorLog(logging.getLogger("t"), first=5, every=1000)
    with caplog.at_level(logging.WARNING, logger="t"):
        for i in range(20_000):
            errors.log("bad_json", "frame %d is not JSON", i)
        errors.log("other_reason", "once")
    assert errors.counts == {"bad_json": 20_000, "other_reason": 1}
    # 5 first + every 1000th (1000, 2000, ... 20000) + the other reason's first
    assert len(caplog.records) == 5 + 20 + 1
    assert "bad_json: 20000 so far" in caplog.records[-2].getMessage()


async def test_a_task_that_may_end_only_at_shutdown_is_restarted_if_it_ends_before():
    stopping = {"now": False}
    runs = []

    async def consume():
        runs.append(1)

    sup = Supervisor(backoff_initial_s=0.01, backoff_max_s=0.01)
    sup.spawn("engine", consume, once=lambda: stopping["now"])
    await wait_for(lambda: len(runs) >= 2)  # ended early: a failure, restarted
    assert sup.states["engine"].failures >= 1
    stopping["now"] = True
    await wait_for(lambda: sup.states["engine"].done)
    await sup.stop()
