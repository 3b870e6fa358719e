"""Supervised tasks: no long-lived task of the daemon dies silently (issue 9, "Supervision").

Every long-lived task (each venue's sources, start-up and pollers, the engine,
the reports, the ticker, the status loop) is started with
:meth:`Supervisor.spawn`. A venue's feeds get the daemon's supervisor and
spawn their own tasks through it, so a venue added later is supervised by
registering its sources, with no code in ``app.py`` for it.

When a task raises an unexpected exception:

* it is logged with its traceback (throttled per task and exception type by
  :class:`ErrorLog`: a crash loop logs its first failures and then one in a
  thousand, every one counted);
* it is counted: ``adlmon_task_failures_total{task}``, and
  ``adlmon_task_restarts_total{task}`` when it is restarted;
* a restartable task (``restart=True``, the default: its state lives outside
  the coroutine, so a fresh call resumes it) is restarted after an
  exponential backoff with jitter (reset once a run lasted ``healthy_after_s``);
* a task that cannot be restarted stays down and ``/readyz`` says 503 naming
  it and its error until the process is restarted.

A task is *down* while it waits to be restarted or after a fatal failure;
:meth:`Supervisor.problems` lists the down tasks for the readiness probe, so
``/readyz`` never says ready while one is down. A ``once`` task (start-up)
may return; any other task returning is a failure ("returned").
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from adlmon.errorlog import ErrorLog
from adlmon.net.backoff import Backoff

log = logging.getLogger("adlmon.supervise")


class TaskMetrics:
    """What the supervisor reports (``adlmon.metrics.Metrics`` implements it)."""

    def task_up(self, task: str, up: bool) -> None: ...
    def task_failure(self, task: str) -> None: ...
    def task_restart(self, task: str) -> None: ...


@dataclass
class TaskState:
    name: str
    restart: bool
    once: Any  # bool, or a callable: the task may return while it is true
    running: bool = False
    done: bool = False  # a once task that finished
    down: bool = False  # failed: waiting for its restart, or for good
    fatal: bool = False  # failed and not restartable
    failures: int = 0
    restarts: int = 0
    last_error: str = ""
    next_restart_at: float | None = None
    started_at: float = 0.0

    def view(self, now: float) -> dict:
        return {"running": self.running, "done": self.done, "down": self.down,
                "fatal": self.fatal, "restartable": self.restart, "failures": self.failures,
                "restarts": self.restarts, "last_error": self.last_error,
                "next_restart_in_s": None if self.next_restart_at is None
                else round(max(0.0, self.next_restart_at - now), 3)}


class Supervisor:
    """Runs named tasks under the rules of the module docstring.

    ``spawn(name, factory)``: ``factory()`` returns a fresh coroutine each time
    (it is called again for a restart). ``stop()`` cancels every task.
    """

    def __init__(self, metrics: Any = None, *, backoff_initial_s: float = 0.5,
                 backoff_max_s: float = 30.0, healthy_after_s: float = 60.0, rng=None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        # NullMetrics (tests, a feeds object built alone) has no task metrics
        self.metrics = metrics if hasattr(metrics, "task_up") else None
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.healthy_after_s = healthy_after_s
        self.rng = rng
        self.clock = clock
        self.sleep = sleep
        self.tasks: dict[str, asyncio.Task] = {}
        self.states: dict[str, TaskState] = {}
        self.errors = ErrorLog(log, first=3, every=1000)

    def spawn(self, name: str, factory: Callable[[], Awaitable[Any]], *, restart: bool = True,
              once: bool | Callable[[], bool] = False) -> asyncio.Task:
        """Start ``factory()`` as task ``name`` (a live task of that name is returned as is).
        ``once``: the task may return (True), or may return while ``once()`` is true
        (e.g. the engine, once shutdown closed its bus); any other return is a failure."""
        task = self.tasks.get(name)
        if task is not None and not task.done():
            return task
        st = self.states[name] = TaskState(name, restart, once)
        task = asyncio.get_running_loop().create_task(self._run(st, factory), name=name)
        self.tasks[name] = task
        return task

    def running(self, name: str) -> bool:
        task = self.tasks.get(name)
        return task is not None and not task.done()

    async def _run(self, st: TaskState, factory: Callable[[], Awaitable[Any]]) -> None:
        backoff = Backoff(self.backoff_initial_s, self.backoff_max_s, rng=self.rng)
        while True:
            st.running, st.down, st.next_restart_at = True, False, None
            st.started_at = self.clock()
            self._up(st.name, True)
            try:
                await factory()
            except asyncio.CancelledError:
                st.running = False
                raise
            except Exception as exc:  # noqa: BLE001 - the point: nothing escapes unseen
                error = f"{exc.__class__.__name__}: {exc}"[:300]
                self.errors.log(f"{st.name}:{exc.__class__.__name__}",
                                "task %s failed (%s)%s", st.name, error,
                                "; restarting with backoff" if st.restart else
                                "; not restartable, readiness fails until the process restarts",
                                level=logging.ERROR, exc_info=exc)
            else:
                if st.once is True or (callable(st.once) and st.once()):
                    st.running, st.done = False, True
                    self._up(st.name, True)
                    return
                error = "returned (a long-lived task must not end)"
                self.errors.log(f"{st.name}:returned", "task %s %s", st.name, error,
                                level=logging.ERROR)
            st.running, st.down = False, True
            st.failures += 1
            st.last_error = error
            self._up(st.name, False)
            if self.metrics is not None:
                self.metrics.task_failure(st.name)
            if not st.restart:
                st.fatal = True
                return
            if self.clock() - st.started_at >= self.healthy_after_s:
                backoff.reset()  # it ran well for a while: this is not a crash loop
            delay = backoff.next_delay()
            st.next_restart_at = self.clock() + delay
            await self.sleep(delay)
            st.restarts += 1
            if self.metrics is not None:
                self.metrics.task_restart(st.name)

    def _up(self, name: str, up: bool) -> None:
        if self.metrics is not None:
            self.metrics.task_up(name, up)

    def problems(self) -> list[str]:
        """Readiness reasons: every task that is down, with its error."""
        out = []
        for name, st in sorted(self.states.items()):
            if st.fatal:
                out.append(f"task {name} failed and is not restarted: {st.last_error}")
            elif st.down:
                out.append(f"task {name} down, restart {st.restarts + 1} pending: {st.last_error}")
        return out

    def status(self) -> dict[str, dict]:
        now = self.clock()
        return {name: st.view(now) for name, st in sorted(self.states.items())}

    async def stop(self, names: list[str] | None = None) -> None:
        """Cancel the named tasks (default all) and wait for them."""
        names = list(self.tasks) if names is None else names
        tasks = [self.tasks.pop(n) for n in names if n in self.tasks]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for n in names:
            st = self.states.get(n)
            if st is not None:
                st.running = False
