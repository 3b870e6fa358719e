"""The HTTP face of the daemon (aiohttp): metrics, probes, a small JSON API and a
status page, all on one port (ecosystem.md §2.1, §2.6, §2.7).

- ``/metrics``  Prometheus exposition of ``ServerState.metrics.registry``.
- ``/livez``    200 while the event loop is responsive: a background task measures
  how late its timer fires; a latest lag above the threshold (optionally held for
  ``hold_s``) or a monitor that stopped ticking gives 503. Never checks venues (a
  venue outage must not restart-loop the process).
- ``/readyz``   200 once started and at least one source is healthy or the replay
  is done; otherwise 503 with the reasons.
- ``/api/waves?limit=N``  recent wave reports, newest first (N in 1..kept).
- ``/api/status``  sources with their coverage statements, uptime, version.
- ``/api/exposure?venue=&coin=&side=&shortfall_usd=&gap_usd=&limit=``  the ADL queue of one
  coin and side from the live ledger, with the what-if (adlmon/exposure.py).
- ``/api/exposure/coins``  coins with open positions per venue (most positions first).
- ``/api/account/<address>[?venue=]``  every position of one account with its rank and
  percentile in its coin's queue.
- ``/``         a static status page (no external assets) that reads the API.
- ``/runbook``  the operator runbook (``static/runbook.md`` as HTML, one anchor per
  alert): every alert's ``runbook_url`` points here, so it needs no internet.

Optional HTTP basic auth covers everything except the two probes (so kubelet and
systemd-style checks need no secret); optional TLS from ``tls_cert``/``tls_key``.

Slow and many clients (issue 9, "Bounds"): a connection must send its request
within ``header_timeout_s`` (aiohttp's keep-alive timer, which also runs from
the moment a connection opens and is not extended by partial headers), and at
most ``max_connections`` are open (:class:`ConnectionGuard`; also kept under
an eighth of the process's file-descriptor limit): past it the oldest
connection with no request in progress is closed, so 1,000 slow-header
clients cannot keep a probe out. The handlers never read a request body.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import hmac
import html
import logging
import os
import re
import ssl
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import orjson
from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from adlmon import __version__
from adlmon.metrics import Metrics

log = logging.getLogger("adlmon.server")

STATIC_DIR = Path(__file__).resolve().parent / "static"
PASSWORD_ENV = "ADLMON_BASIC_AUTH_PASSWORD"
PROBES = frozenset({"/livez", "/readyz"})
DEFAULT_WAVES_LIMIT = 50
VENDORED = frozenset({"uPlot.iife.min.js", "uPlot.min.css"})


class LoopMonitor:
    """Measures event-loop lag: sleeps ``interval_s`` and records how late it woke.

    Unhealthy when the latest measured lag exceeds ``threshold_s`` (the loop is
    starved, tick after tick), when a lag above it was seen less than ``hold_s``
    ago (0 by default: a single transient stall must not restart the process; the
    probe's failureThreshold does the holding), or when the monitor has not ticked
    for ``threshold_s + interval_s`` (wedged or dead).
    """

    def __init__(self, interval_s: float = 0.5, threshold_s: float = 5.0, hold_s: float = 0.0,
                 on_lag=None):
        self.interval_s = interval_s
        self.threshold_s = threshold_s
        self.hold_s = hold_s
        self.on_lag = on_lag
        self.lag_s = 0.0
        self.max_lag_s = 0.0
        self.last_tick: float | None = None
        self.last_stall: float | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.last_tick = loop.time()
        self._task = loop.create_task(self._run(), name="adlmon-loop-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = loop.time()
            self.record(max(0.0, now - expected), now)

    def record(self, lag_s: float, now: float) -> None:
        self.lag_s = lag_s
        self.max_lag_s = max(self.max_lag_s, lag_s)
        self.last_tick = now
        if lag_s > self.threshold_s:
            self.last_stall = now
        if self.on_lag is not None:
            self.on_lag(lag_s)

    def health(self, now: float | None = None) -> tuple[bool, str]:
        if now is None:
            now = asyncio.get_running_loop().time()
        if self.last_tick is None:
            return False, "loop monitor not started"
        if now - self.last_tick > self.threshold_s + self.interval_s:
            return False, f"loop monitor silent for {now - self.last_tick:.1f} s"
        if self.lag_s > self.threshold_s:
            return False, (f"event loop stalled: latest lag {self.lag_s:.3f} s > threshold "
                           f"{self.threshold_s} s")
        if self.last_stall is not None and now - self.last_stall < self.hold_s:
            return False, (f"event loop stalled (lag > {self.threshold_s} s) within the last "
                           f"{self.hold_s:g} s")
        return True, f"loop lag {self.lag_s:.4f} s"


class ServerState:
    """What the server shows; collectors and the engine update it.

    ``sources``: name -> {"healthy": bool, "connected": bool, "last_message_ts":
    float | None (Unix s), "coverage": str (what this source can and cannot see),
    ...any other JSON-able detail}.
    """

    def __init__(self, metrics: Metrics | None = None, *, recent_waves: int = 200,
                 version: str = __version__, horizons_ms: Iterable[int] | None = None,
                 mechanisms: Iterable[str] | None = None, mode: str = "live"):
        self.metrics = metrics if metrics is not None else Metrics()
        self.recent_waves: collections.deque = collections.deque(maxlen=recent_waves)
        self.sources: dict[str, dict[str, Any]] = {}
        self.started = False
        self.replay_done = False
        self.version = version
        self.mode = mode
        self.horizons_ms = [int(h) for h in (horizons_ms if horizons_ms is not None
                                             else self.metrics.horizons)]
        self.mechanisms = list(mechanisms if mechanisms is not None else self.metrics.mechanisms)
        self.started_at = time.time()
        self.loop_monitor: LoopMonitor | None = None
        self.demo: dict[str, Any] | None = None  # ``adlmon run --demo``: its progress
        self.connection_guard: ConnectionGuard | None = None  # set by start_server
        # name -> (problems() -> readiness reasons, status() -> JSON-able detail): the
        # supervisor's tasks and the sinks; any reason makes /readyz 503 (issue 9).
        self.checks: dict[str, tuple[Callable[[], list[str]], Callable[[], Any] | None]] = {}
        # venue -> its live Ledger (set by the daemon), for /api/exposure and /api/account;
        # exposure_cfg: the [counterfactual] section whose mechanisms the what-if runs.
        self.ledgers: dict[str, Any] = {}
        self.exposure_cfg: Any = None
        self.event_time_ms = lambda: None  # the engine's latest event time (ms), once wired

    def add_check(self, name: str, problems: Callable[[], list[str]],
                  status: Callable[[], Any] | None = None) -> None:
        """A readiness check: while ``problems()`` lists anything, /readyz says 503 with it."""
        self.checks[name] = (problems, status)

    def add_wave(self, report: Mapping[str, Any], *, observe: bool = True,
                 compute_s: float | None = None) -> None:
        """Keep ``report`` for /api/waves and (by default) account it in the metrics."""
        self.recent_waves.append(report)
        if observe:
            self.metrics.observe_wave(report, compute_s=compute_s)

    def update_source(self, name: str, **fields: Any) -> dict[str, Any]:
        status = self.sources.setdefault(name, {"healthy": False, "connected": False,
                                                "last_message_ts": None, "coverage": ""})
        status.update(fields)
        return status

    def readiness(self) -> tuple[bool, list[str]]:
        reasons = []
        if not self.started:
            reasons.append("not started")
        for problems, _status in self.checks.values():
            reasons += problems()
        if self.replay_done:
            return not reasons, reasons
        healthy = [name for name, s in self.sources.items() if s.get("healthy")]
        if not healthy:
            if not self.sources:
                reasons.append("no source registered and no replay done")
            else:
                for name, s in sorted(self.sources.items()):
                    why = s.get("detail") or ("disconnected" if not s.get("connected")
                                              else "not healthy")
                    reasons.append(f"source {name}: {why}")
        return not reasons, reasons

    def status(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        ready, reasons = self.readiness()
        sources = {}
        for name, s in self.sources.items():
            entry = dict(s)
            ts = s.get("last_message_ts")
            entry["last_message_age_s"] = (now - ts) if isinstance(ts, (int, float)) else None
            sources[name] = entry
        out = {
            "version": self.version, "mode": self.mode, "started": self.started,
            "replay_done": self.replay_done, "ready": ready, "reasons": reasons,
            "started_at": self.started_at, "uptime_s": now - self.started_at,
            "sources": sources, "waves_kept": len(self.recent_waves),
            "horizons_ms": self.horizons_ms, "mechanisms": self.mechanisms,
        }
        if self.recent_waves:
            out["last_wave"] = last_wave_summary(self.recent_waves[-1])
        if self.loop_monitor is not None:
            out["loop_lag_s"] = self.loop_monitor.lag_s
        try:
            out["asyncio_tasks"] = len(asyncio.all_tasks())  # a leak shows here (soak)
        except RuntimeError:  # no running loop (a test calling status() directly)
            pass
        if self.demo is not None:
            out["demo"] = dict(self.demo)
        for name, (_problems, status) in self.checks.items():
            if status is not None:
                out[name] = status()
        return out


class ConnectionGuard:
    """Caps the open connections of an aiohttp ``web.Server`` (module docstring).

    Installed on ``runner.server``: its ``connection_made``/``connection_lost``
    hooks (called by every ``RequestHandler``) are wrapped. When a connection
    opens past ``max_connections``, the oldest one without a request in
    progress (a slow-header or idle keep-alive client) is closed; if every
    one is busy, the new one is.
    """

    def __init__(self, server, max_connections: int, metrics: Metrics | None = None):
        self.max_connections = max_connections
        self.metrics = metrics
        self.evicted = 0
        self._open: dict[Any, None] = {}  # insertion order: oldest first
        made, lost = server.connection_made, server.connection_lost

        def connection_made(handler, transport) -> None:
            made(handler, transport)
            self._open[handler] = None
            if len(self._open) > self.max_connections:
                self._evict(handler)
            self._gauge()

        def connection_lost(handler, exc=None) -> None:
            lost(handler, exc)
            self._open.pop(handler, None)
            self._gauge()

        server.connection_made = connection_made
        server.connection_lost = connection_lost

    @property
    def open(self) -> int:
        return len(self._open)

    def _evict(self, newest) -> None:
        victim = next((h for h in self._open
                       if h is not newest and not getattr(h, "_request_in_progress", False)),
                      newest)
        del self._open[victim]
        victim.force_close()
        self.evicted += 1
        if self.metrics is not None:
            self.metrics.http_evicted()

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.http_connections(len(self._open))


def connection_limits(configured: int) -> tuple[int, int]:
    """(connection cap, listen backlog) that fit the soft RLIMIT_NOFILE. Per loop
    iteration the accept loop takes up to a backlog of sockets before their connections
    are counted, and a closed connection's descriptor is freed an iteration later, so
    the descriptors in use reach about cap + 4 × backlog; the cap is kept under 1/8 and
    the backlog under 1/16 of the limit (past it asyncio stops accepting for a second)."""
    backlog = 128  # aiohttp's default
    try:
        import resource
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, ValueError, OSError):
        return configured, backlog
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return configured, backlog
    return max(8, min(configured, soft // 8)), max(8, min(backlog, soft // 16))


def last_wave_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The newest wave in a few fields for /api/status. ``optimal_status`` is "unknown"
    (and ``optimal_usd`` / ``excess_vs_optimal_usd`` null) when the known capacity could not
    carry B: an unknown optimum is not an optimum of 0 (counterfactual.optimal_status)."""
    cf = report.get("counterfactual") if isinstance(report.get("counterfactual"), Mapping) else {}
    opt = cf.get("optimal") if isinstance(cf.get("optimal"), Mapping) else {}
    return {
        "venue": report.get("venue"), "wave_id": report.get("wave_id"),
        "t_end_ms": report.get("t_end_ms"), "needed_usd": report.get("needed_usd"),
        "needed_complete": report.get("needed_complete"),
        "deficit_usd": report.get("deficit_usd"),
        "optimal_status": opt.get("status") or ("known" if cf else "unknown"),
        "optimal_usd": opt.get("total_usd"),
        "optimal_reason": opt.get("reason"),
        "excess_vs_optimal_usd": cf.get("excess_vs_optimal_usd"),
    }


# --- config helpers ---
def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9817`` for IPv6) -> (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"[server] listen = {listen!r}: must be HOST:PORT")
    return host.strip("[]"), int(port)


def resolve_basic_auth(server_cfg, env: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(user, password) or None. Password from $ADLMON_BASIC_AUTH_PASSWORD, else
    ``basic_auth_password_file``, else ``basic_auth_password``."""
    env = os.environ if env is None else env
    user = getattr(server_cfg, "basic_auth_user", "")
    password = env.get(PASSWORD_ENV) or ""
    if not password and getattr(server_cfg, "basic_auth_password_file", ""):
        path = server_cfg.basic_auth_password_file
        try:
            password = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ValueError(f"[server] basic_auth_password_file = {path!r}: cannot read: "
                             f"{exc.strerror or exc}") from None
    if not password:
        password = getattr(server_cfg, "basic_auth_password", "")
    if not user and not password:
        return None
    if not user:
        raise ValueError("[server] basic_auth_user is empty but a password is set: set both")
    if not password:
        raise ValueError(f"[server] basic_auth_user = {user!r} needs a password "
                         f"(basic_auth_password_file, ${PASSWORD_ENV} or basic_auth_password)")
    return user, password


def ssl_context(server_cfg) -> ssl.SSLContext | None:
    cert, key = getattr(server_cfg, "tls_cert", ""), getattr(server_cfg, "tls_key", "")
    if not cert and not key:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


# --- the runbook, served from the package (issue 8 §3: reachable from the deployment) ---
RUNBOOK = STATIC_DIR / "runbook.md"
_INLINE = (
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])"), r"<em>\1</em>"),
)


def anchor(heading: str) -> str:
    """The id of a heading, as GitHub makes it ("AdlmonFeedDown" -> "adlmonfeeddown")."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def _inline(text: str) -> str:
    out = html.escape(text, quote=False)
    for pattern, repl in _INLINE:
        out = pattern.sub(repl, out)
    return out


def markdown_html(text: str, title: str) -> str:
    """The runbook's Markdown subset (headings with ids, paragraphs, ``- `` lists,
    inline code, bold, emphasis) as a self-contained HTML page."""
    body: list[str] = []
    para: list[str] = []
    items: list[str] = []

    def close() -> None:
        if para:
            body.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,3}) (.+)$", line)
        if heading:
            close()
            level, name = len(heading.group(1)), heading.group(2).strip()
            body.append(f'<h{level} id="{anchor(name)}">{_inline(name)}</h{level}>')
        elif not stripped:
            close()
        elif line.startswith("- "):
            if para:
                close()
            items.append(line[2:].strip())
        elif items and line.startswith("  "):
            items[-1] += " " + stripped  # a list item's continuation line
        else:
            para.append(stripped)
    close()
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title>"
            "<link rel=\"stylesheet\" href=\"static/status.css\"></head><body>"
            + "\n".join(body) + "</body></html>\n")


# --- the app ---
def _json(data: Any, status: int = 200) -> web.Response:
    body = orjson.dumps(data, default=str,
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)
    return web.Response(body=body, status=status, content_type="application/json",
                        headers={"Cache-Control": "no-store"})


def _auth_middleware(credentials: tuple[str, str]):
    user, password = (c.encode() for c in credentials)

    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path in PROBES:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        ok = False
        if scheme.lower() == "basic":
            try:
                given_user, _, given_password = base64.b64decode(
                    token.strip(), validate=True).partition(b":")
            except (binascii.Error, ValueError):
                given_user = given_password = b""
            # Both compared, always: no early exit that would time the user name.
            ok = hmac.compare_digest(given_user, user) & hmac.compare_digest(
                given_password, password)
        if not ok:
            return web.Response(status=401, text="authentication required\n",
                                headers={"WWW-Authenticate": 'Basic realm="adlmon"'})
        return await handler(request)

    return middleware


@web.middleware
async def _headers_middleware(request: web.Request, handler):
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def make_app(state: ServerState, credentials: tuple[str, str] | None = None, *,
             loop_interval_s: float = 0.5, loop_threshold_s: float = 5.0,
             loop_hold_s: float = 0.0) -> web.Application:
    middlewares = [_headers_middleware]
    if credentials is not None:
        middlewares.insert(0, _auth_middleware(credentials))
    app = web.Application(middlewares=middlewares)
    monitor = LoopMonitor(loop_interval_s, loop_threshold_s, loop_hold_s,
                          on_lag=state.metrics.set_loop_lag)
    state.loop_monitor = monitor

    async def livez(request: web.Request) -> web.Response:
        ok, detail = monitor.health()
        return web.Response(status=200 if ok else 503, text=("ok: " if ok else "fail: ") +
                            detail + "\n")

    async def readyz(request: web.Request) -> web.Response:
        ready, reasons = state.readiness()
        if ready:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="not ready:\n" + "".join(f"- {r}\n" for r in reasons))

    async def api_waves(request: web.Request) -> web.Response:
        kept = state.recent_waves.maxlen or len(state.recent_waves)
        raw = request.query.get("limit")
        limit = DEFAULT_WAVES_LIMIT
        if raw is not None:
            try:
                limit = int(raw)
            except ValueError:
                return _json({"error": f"limit = {raw!r}: must be an integer in 1..{kept}"}, 400)
            if limit < 1:
                return _json({"error": f"limit = {raw!r}: must be an integer in 1..{kept}"}, 400)
        waves = list(state.recent_waves)[::-1][:limit]
        return _json({"waves": waves, "count": len(waves), "kept": len(state.recent_waves)})

    async def api_status(request: web.Request) -> web.Response:
        return _json(state.status())

    async def api_exposure(request: web.Request) -> web.Response:
        return await _exposure(state, request)

    async def api_exposure_coins(request: web.Request) -> web.Response:
        # Coins with open positions per venue, most positions first (the page's coin menu).
        return _json({v: sorted(led.coins(), key=lambda c: (-led.holder_count(c), c))
                      for v, led in state.ledgers.items()})

    async def api_account(request: web.Request) -> web.Response:
        return _account(state, request)

    async def index(request: web.Request) -> web.FileResponse:
        return _static("status.html")

    def _static(name: str) -> web.FileResponse:
        resp = web.FileResponse(STATIC_DIR / name)
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
        return resp

    async def runbook(request: web.Request) -> web.Response:
        page = markdown_html(RUNBOOK.read_text(encoding="utf-8"), "adlmon runbook")
        return web.Response(text=page, content_type="text/html", headers={
            "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"})

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ("status.js", "status.css", "charts.js"):
            raise web.HTTPNotFound()
        return _static(name)

    async def vendor(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in VENDORED:  # the charting library vendored from npm (static/vendor)
            raise web.HTTPNotFound()
        return _static("vendor/" + name)

    async def on_startup(app: web.Application) -> None:
        monitor.start()

    async def on_cleanup(app: web.Application) -> None:
        await monitor.stop()

    app.router.add_get("/metrics", make_aiohttp_handler(state.metrics.registry))
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/waves", api_waves)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/api/exposure", api_exposure)
    app.router.add_get("/api/account/{address}", api_account)
    app.router.add_get("/", index)
    app.router.add_get("/runbook", runbook)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/static/vendor/{name}", vendor)
    app.router.add_get("/api/exposure/coins", api_exposure_coins)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


# --- exposure (adlmon/exposure.py over the live ledger) ---
EXPOSURE_LIMIT = 100  # rows of /api/exposure unless ?limit= (0 = every position)


def _venue_ledger(state: ServerState, request: web.Request):
    """(venue, ledger) named by ?venue= (default: the only one), or an error response."""
    venue = request.query.get("venue") or (next(iter(state.ledgers)) if len(state.ledgers) == 1 else "")
    ledger = state.ledgers.get(venue)
    if ledger is None:
        known = ", ".join(sorted(state.ledgers)) or "none"
        return None, None, _json({"error": f"venue = {venue!r}: no live ledger (known: {known})"}, 400)
    return venue, ledger, None


def _query_float(request: web.Request, key: str) -> float | None:
    raw = request.query.get(key)
    if raw in (None, ""):
        return None
    v = float(raw)  # ValueError -> 400 by the caller
    if not v >= 0 or v == float("inf"):
        raise ValueError(key)
    return v


async def _exposure(state: ServerState, request: web.Request) -> web.Response:
    from adlmon import exposure as ex

    venue, ledger, err = _venue_ledger(state, request)
    if err is not None:
        return err
    coin, side = request.query.get("coin", ""), request.query.get("side", "")
    if side not in ex.SIDES:
        return _json({"error": f"side = {side!r}: must be one of {', '.join(ex.SIDES)}"}, 400)
    if not coin:
        return _json({"error": "coin is required", "coins": sorted(ledger.coins())}, 400)
    try:
        shortfall = _query_float(request, "shortfall_usd")
        gap = _query_float(request, "gap_usd")
        limit = int(request.query.get("limit", EXPOSURE_LIMIT))
        if limit < 0:
            raise ValueError("limit")
    except ValueError:
        return _json({"error": "shortfall_usd and gap_usd must be numbers >= 0, limit an integer >= 0"}, 400)
    try:
        order = ex.queue_order(venue)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    # The ledger is read here, on the loop (a consistent moment); the arithmetic runs in a
    # worker thread so a long what-if (the integer program) never stalls the loop.
    view = ledger.holders(coin, ex.SIDES[side])
    at_ms = state.event_time_ms()
    factor = (ex.net_notional(view.users, ledger.positions, ledger.marks(), ex.SIDES[side])
              if shortfall is not None else None)

    def compute() -> dict:
        q = ex.build_queue(view, order, side)
        return ex.exposure_report(q, venue=venue, at_ms=at_ms, shortfall_usd=shortfall,
                                  cfg=state.exposure_cfg, gap_per_contract=gap,
                                  limit=limit or None, factor_exposure=factor)

    rep = await asyncio.get_running_loop().run_in_executor(None, compute)
    return _json(rep)


def _account(state: ServerState, request: web.Request) -> web.Response:
    from adlmon import exposure as ex

    venue, ledger, err = _venue_ledger(state, request)
    if err is not None:
        return err
    address = request.match_info["address"]
    try:
        order = ex.queue_order(venue)
    except ValueError as exc:
        return _json({"error": str(exc)}, 400)
    # Only the coins this account holds: O(their holders), never O(accounts).
    user = address if ledger.seen(address) else address.lower()
    positions = ledger.positions(user)
    queues = {}
    for coin, (size, _entry) in positions.items():
        side = "long" if size > 0 else "short"
        queues[(coin, side)] = ex.build_queue(ledger.holders(coin, ex.SIDES[side]), order, side)
    return _json({"venue": venue, "user": user, "seen": ledger.seen(user),
                  "known": ledger.known(user),
                  "equity_usd": ledger.equity(user) if ledger.seen(user) else None,
                  "at_ms": state.event_time_ms(),
                  "positions": ex.account_report(user, queues)})


async def start_server(server_cfg, state: ServerState, *, env: Mapping[str, str] | None = None,
                       loop_interval_s: float = 0.5, loop_threshold_s: float = 5.0,
                       loop_hold_s: float = 0.0) -> web.AppRunner:
    """Bind ``server_cfg.listen`` (port 0 = ephemeral; see ``server_url``) and serve.
    Raises ValueError on an unusable auth/TLS config before binding."""
    credentials = resolve_basic_auth(server_cfg, env)
    ctx = ssl_context(server_cfg)
    host, port = parse_listen(server_cfg.listen)
    app = make_app(state, credentials, loop_interval_s=loop_interval_s,
                   loop_threshold_s=loop_threshold_s, loop_hold_s=loop_hold_s)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           keepalive_timeout=getattr(server_cfg, "header_timeout_s", 10.0))
    await runner.setup()
    cap, backlog = connection_limits(getattr(server_cfg, "max_connections", 256))
    state.connection_guard = ConnectionGuard(runner.server, cap, state.metrics)
    site = web.TCPSite(runner, host, port, ssl_context=ctx, backlog=backlog)
    await site.start()
    log.info("serving %s on %s", "https" if ctx else "http", server_url(runner))
    return runner


def server_url(runner: web.AppRunner) -> str:
    """The base URL of the first bound address, e.g. ``http://127.0.0.1:40123``."""
    site = next(iter(runner.sites))
    scheme = "https" if getattr(site, "_ssl_context", None) else "http"
    host, port = runner.addresses[0][:2]
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


async def stop(runner: web.AppRunner) -> None:
    await runner.cleanup()
