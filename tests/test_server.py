"""adlmon/server.py: the real aiohttp server on 127.0.0.1 (ephemeral port), hit over
HTTP(S): metrics, probes, the API, basic auth and TLS."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adlmon.config import ServerConfig
from adlmon.metrics import Metrics
from adlmon.server import (
    LoopMonitor, ServerState, resolve_basic_auth, server_url, start_server, stop,
)
from tools import require_tool

LOCAL = ServerConfig(listen="127.0.0.1:0")


def report(i: int) -> dict:
    return {"venue": "hyperliquid", "wave_id": i, "t_end_ms": 1_760_131_000_000 + i,
            "adl_fills": i, "accounts": 1, "needed_usd": 10.0 * i, "deficit_usd": None,
            "production_haircut_usd": {"0": 12.0 * i}}


@pytest.fixture
async def served():
    """Start a server for a state; yields (start, sessions); cleans everything up."""
    runners = []
    session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def start(state=None, cfg=LOCAL, **kw):
        state = state or ServerState(Metrics())
        runner = await start_server(cfg, state, **kw)
        runners.append(runner)
        return state, server_url(runner)

    yield start, session
    await session.close()
    for r in runners:
        await stop(r)


async def get(session, url, **kw):
    async with session.get(url, **kw) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_metrics_endpoint_serves_the_exposition(served):
    start, session = served
    state, url = await start()
    state.add_wave(report(3))
    status, headers, body = await get(session, url + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert "adlmon_build_info" in families
    waves = [s.value for s in families["adlmon_adl_waves"].samples if s.name.endswith("_total")]
    assert waves == [1.0]


async def test_server_binds_loopback_by_default():
    assert ServerConfig().listen.startswith("127.0.0.1:")


async def test_livez_is_ok_while_the_loop_is_responsive_and_fails_after_a_stall(served):
    start, session = served
    state, url = await start(loop_interval_s=0.02, loop_threshold_s=0.1, loop_hold_s=60)
    status, _, body = await get(session, url + "/livez")
    assert status == 200, body
    # Block the event loop (as a huge synchronous computation would). The monitor
    # wakes at least 0.3 - 0.02 s late, above the 0.1 s threshold.
    time.sleep(0.3)
    await asyncio.sleep(0.05)
    status, _, body = await get(session, url + "/livez")
    assert status == 503
    assert b"stalled" in body
    assert state.metrics.registry.get_sample_value("adlmon_event_loop_lag_seconds") is not None


def test_loop_monitor_fails_on_a_starved_loop_and_recovers_on_the_next_tick():
    mon = LoopMonitor(interval_s=0.5, threshold_s=5.0)
    mon.record(0.01, now=100.0)
    assert mon.health(now=100.1)[0]
    mon.record(6.0, now=106.5)
    ok, detail = mon.health(now=106.6)
    assert not ok and "stalled" in detail
    mon.record(0.01, now=107.0)
    assert mon.health(now=107.1)[0]  # one stall never holds by default
    assert not mon.health(now=113.0)[0]  # no tick for > threshold + interval: wedged


def test_loop_monitor_can_hold_a_stall_for_slow_probes():
    mon = LoopMonitor(interval_s=0.5, threshold_s=5.0, hold_s=30.0)
    mon.record(6.0, now=100.0)
    mon.record(0.01, now=100.5)
    assert not mon.health(now=101.0)[0]
    mon.record(0.01, now=130.5)
    assert mon.health(now=130.6)[0]


async def test_readyz_turns_ready_when_started_and_a_source_is_healthy(served):
    start, session = served
    state, url = await start()
    status, _, body = await get(session, url + "/readyz")
    assert status == 503 and b"not started" in body
    state.started = True
    state.update_source("hyperliquid/userFills", connected=False, coverage="liquidator vaults")
    status, _, body = await get(session, url + "/readyz")
    assert status == 503 and b"hyperliquid/userFills: disconnected" in body
    state.update_source("hyperliquid/userFills", connected=True, healthy=True)
    status, _, body = await get(session, url + "/readyz")
    assert status == 200


async def test_readyz_is_ready_after_a_replay_without_sources(served):
    start, session = served
    state, url = await start()
    state.started = True
    assert (await get(session, url + "/readyz"))[0] == 503
    state.replay_done = True
    assert (await get(session, url + "/readyz"))[0] == 200


async def test_api_waves_returns_newest_first_and_validates_limit(served):
    start, session = served
    state, url = await start(ServerState(Metrics(), recent_waves=5))
    for i in range(1, 8):
        state.add_wave(report(i))
    status, _, body = await get(session, url + "/api/waves?limit=2")
    assert status == 200
    data = json.loads(body)
    assert [w["wave_id"] for w in data["waves"]] == [7, 6]
    assert data["count"] == 2 and data["kept"] == 5
    data = json.loads((await get(session, url + "/api/waves"))[2])
    assert [w["wave_id"] for w in data["waves"]] == [7, 6, 5, 4, 3]  # only 5 kept
    data = json.loads((await get(session, url + "/api/waves?limit=1000"))[2])
    assert data["count"] == 5
    for bad in ("0", "-1", "abc", "1.5", ""):
        status, _, body = await get(session, url + "/api/waves", params={"limit": bad})
        assert status == 400, bad
        assert b"limit" in body


async def test_api_status_lists_sources_with_coverage_uptime_and_version(served):
    from adlmon import __version__
    start, session = served
    state, url = await start()
    state.started = True
    state.update_source("hyperliquid/vault_fills", healthy=True, connected=True,
                        last_message_ts=time.time() - 3,
                        coverage="ADL fills of the HLP liquidator vaults only")
    status, _, body = await get(session, url + "/api/status")
    assert status == 200
    data = json.loads(body)
    assert data["version"] == __version__
    assert data["ready"] is True and data["uptime_s"] >= 0
    src = data["sources"]["hyperliquid/vault_fills"]
    assert src["coverage"].startswith("ADL fills")
    assert src["last_message_age_s"] >= 3
    assert data["horizons_ms"] == [0, 500, 1000, 2000, 5000]


async def test_status_page_and_its_assets_are_local(served):
    start, session = served
    _, url = await start()
    status, headers, body = await get(session, url + "/")
    assert status == 200 and b"<title>adlmon status</title>" in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert b"http://" not in body and b"https://" not in body  # no CDN
    for asset in ("status.js", "status.css"):
        status, _, body = await get(session, url + "/static/" + asset)
        assert status == 200 and b"http" not in body
    assert (await get(session, url + "/static/../server.py"))[0] == 404


async def test_runbook_is_served_with_an_anchor_for_every_alert_runbook_url(served):
    import re
    import yaml
    from html.parser import HTMLParser

    start, session = served
    _, url = await start()
    status, headers, body = await get(session, url + "/runbook")
    assert status == 200 and headers["Content-Type"].startswith("text/html")

    class Ids(HTMLParser):
        ids: set = set()

        def handle_starttag(self, tag, attrs):
            self.ids.update(v for k, v in attrs if k == "id")

    page = Ids()
    page.feed(body.decode())
    root = Path(__file__).resolve().parents[1]
    rules = yaml.safe_load((root / "deploy/prometheus/rules/adlmon.rules.yml").read_text())
    urls = [r["annotations"]["runbook_url"] for g in rules["groups"] for r in g["rules"]
            if "alert" in r]
    assert urls
    for u in urls:
        prefix, _, frag = u.partition("#")
        assert prefix == "http://127.0.0.1:9817/runbook"  # the default [server] listen
        assert frag in page.ids, frag
    unit = (root / "deploy/systemd/adlmon.service").read_text()
    assert re.search(r"^Documentation=http://127\.0\.0\.1:9817/runbook$", unit, re.M)
    assert "<code>" in body.decode() and "<script" not in body.decode()


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_basic_auth_protects_everything_but_the_probes(served, monkeypatch):
    monkeypatch.delenv("ADLMON_BASIC_AUTH_PASSWORD", raising=False)
    start, session = served
    cfg = replace(LOCAL, basic_auth_user="prom", basic_auth_password="s3cret")
    _, url = await start(cfg=cfg)
    for path in ("/metrics", "/api/waves", "/api/status", "/"):
        status, headers, _ = await get(session, url + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Basic")
        assert (await get(session, url + path, headers=basic("prom", "wrong")))[0] == 401
        assert (await get(session, url + path, headers=basic("other", "s3cret")))[0] == 401
        assert (await get(session, url + path, headers=basic("prom", "s3cret")))[0] == 200
    assert (await get(session, url + "/metrics",
                      headers={"Authorization": "Basic !!notbase64"}))[0] == 401
    assert (await get(session, url + "/livez"))[0] == 200
    assert (await get(session, url + "/readyz"))[0] == 503  # not started, but no 401


def test_basic_auth_password_precedence_env_then_file_then_inline(tmp_path):
    pw_file = tmp_path / "pw"
    pw_file.write_text("from-file\n")
    cfg = replace(LOCAL, basic_auth_user="u", basic_auth_password="inline",
                  basic_auth_password_file=str(pw_file))
    assert resolve_basic_auth(cfg, {"ADLMON_BASIC_AUTH_PASSWORD": "from-env"}) == ("u", "from-env")
    assert resolve_basic_auth(cfg, {}) == ("u", "from-file")
    assert resolve_basic_auth(replace(cfg, basic_auth_password_file=""), {}) == ("u", "inline")
    assert resolve_basic_auth(LOCAL, {}) is None


def test_basic_auth_misconfiguration_names_the_key(tmp_path):
    with pytest.raises(ValueError, match="basic_auth_user"):
        resolve_basic_auth(replace(LOCAL, basic_auth_user="u"), {})
    with pytest.raises(ValueError, match="basic_auth_user is empty"):
        resolve_basic_auth(LOCAL, {"ADLMON_BASIC_AUTH_PASSWORD": "x"})
    with pytest.raises(ValueError, match="basic_auth_password_file"):
        resolve_basic_auth(replace(LOCAL, basic_auth_user="u",
                                   basic_auth_password_file=str(tmp_path / "missing")), {})


@pytest.fixture
def self_signed(tmp_path):
    openssl = require_tool("openssl", package="openssl")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


async def test_tls_serves_https_with_the_configured_certificate(served, self_signed):
    cert, key = self_signed
    start, session = served
    _, url = await start(cfg=replace(LOCAL, tls_cert=str(cert), tls_key=str(key)))
    assert url.startswith("https://127.0.0.1:")
    client_ctx = ssl.create_default_context(cafile=str(cert))
    status, _, body = await get(session, url + "/metrics", ssl=client_ctx)
    assert status == 200 and b"adlmon_build_info" in body
    # an unverified client is refused, plain HTTP gets no answer
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await get(session, url + "/livez")
    with pytest.raises(aiohttp.ClientError):
        await get(session, url.replace("https://", "http://") + "/livez")


async def test_api_says_unknown_not_zero_for_an_optimum_the_known_capacity_cannot_carry(served):
    """A wave whose winners all come from their fills at capacity 0 (as the demo's first):
    /api/waves and /api/status give the optimum as unknown with its reason, and no excess."""
    from adlmon.config import CounterfactualConfig
    from adlmon.counterfactual import Counterfactual
    from adlmon.engine.engine import Engine
    from adlmon.engine.ledger import Ledger
    from adlmon.events import ADL, BUY, AccountSnapshot, Fill, Liquidation, PositionSnapshot

    vault = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
    eng = Engine("hyperliquid", 5000, (0,), Ledger())
    eng.apply(AccountSnapshot("hyperliquid", vault, -50.0,
                              (PositionSnapshot("ETH", 3.0, 100.0, 100.0),), 0))
    for i, (user, px, sz) in enumerate((("0xa", 101.0, 2.0), ("0xb", 102.0, 1.0))):
        eng.apply(Fill("hyperliquid", "ETH", user, BUY, px, sz, 1000, -sz, ADL, 0.0, 0.0, i, "h",
                       Liquidation(vault, 100.0, "backstop"), "Auto-Deleveraging"))
    (wave,) = eng.finish()
    rep = Counterfactual(CounterfactualConfig()).report(wave)

    start, session = served
    state, url = await start()
    state.add_wave(json.loads(json.dumps(rep)))
    data = json.loads((await get(session, url + "/api/waves"))[2])
    cf = data["waves"][0]["counterfactual"]
    assert cf["optimal"]["status"] == "unknown" and cf["optimal"]["total_usd"] is None
    assert "2 of 2 winners have no known capacity" in cf["optimal"]["reason"]
    assert set(cf["excess_vs_optimal_usd"].values()) == {None}
    last = json.loads((await get(session, url + "/api/status"))[2])["last_wave"]
    assert last["optimal_status"] == "unknown" and last["optimal_usd"] is None
    assert last["optimal_reason"] == cf["optimal"]["reason"]
    assert last["needed_usd"] == pytest.approx(4.0) and last["wave_id"] == 1
