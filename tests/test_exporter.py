"""An exporter that always answers (issue 8 §2): a real ``adlmon run`` scraped the
way Prometheus does, offline (nothing listens at the venue address) and after a
demo cascade. In both states ``promtool check metrics`` is clean and every
``adlmon_*`` name that a dashboard or a rule selects has at least one series."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import orjson
import yaml
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent / "deploy"))  # promql_names

from live_venue import free_port  # noqa: E402
from promql_names import (  # noqa: E402
    DASHBOARDS, RULES, grafana_to_promql, label_values_selector, promtool, selectors,
)
from test_app import _config, _get, _spawn, _stop, _wait_http, spawn_offline  # noqa: E402


def used_names() -> set[str]:
    """Every adlmon_* series name selected by a rule or a dashboard (recorded names,
    which Prometheus computes, excluded)."""
    exprs, recorded = [], set()
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            exprs.append(rule["expr"])
            recorded.add(rule.get("record"))
    for path in DASHBOARDS:
        dash = json.loads(path.read_text(encoding="utf-8"))
        for p in dash["panels"]:
            for sub in [p, *p.get("panels", [])]:
                exprs += [grafana_to_promql(t["expr"]) for t in sub.get("targets", [])]
        for v in dash["templating"]["list"]:
            if v["type"] == "query":
                exprs.append(grafana_to_promql(label_values_selector(v["query"]["query"])))
    names = {s["name"] for e in exprs for s in selectors(e)}
    return {n for n in names if n and n.startswith("adlmon_") and n not in recorded}


def series(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def check_exposition(text: str) -> dict[str, list]:
    p = subprocess.run([promtool(), "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and not p.stdout.strip() and not p.stderr.strip(), \
        p.stdout.decode() + p.stderr.decode()
    found = series(text)
    missing = sorted(n for n in used_names() if n not in found)
    assert not missing, f"selected by a dashboard or rule but without a series: {missing}"
    return found


def test_dashboards_and_rules_select_names_this_test_can_check():
    names = used_names()
    # the families the issue names, as a guard that the extraction works
    assert {"adlmon_feed_connected", "adlmon_adl_armed", "adlmon_engine_anomalies_total",
            "adlmon_feed_parse_errors_total", "adlmon_feed_reconnects_total"} <= names


def test_offline_daemon_exports_every_used_series_and_feed_down_can_fire(tmp_path):
    promtool()  # skip (or fail under CI) before spawning anything
    proc, base = spawn_offline(tmp_path)
    try:
        _wait_http(base + "/livez", proc)
        first = series(_get(base + "/metrics")[1])
        # the vault sessions appear once the (failing) discovery falls back to the known
        # vaults: bounded by its timeout, well under the 60 s
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            body = _get(base + "/metrics")[1]
            sources = {s.labels["source"] for s in series(body).get("adlmon_feed_connected", [])}
            status = orjson.loads(_get(base + "/api/status")[1])
            retries = [s.get("failures_in_a_row", 0) for n, s in status["sources"].items()
                       if ".vault." in n]
            if len(sources) >= 3 and retries and min(retries) >= 3:
                break
            time.sleep(0.2)
    finally:
        code, output = _stop(proc)
    assert code == 0, output
    # from the first scrape: the market feed is down (0), not absent
    market = [s for s in first["adlmon_feed_connected"] if s.labels["source"] == "market"]
    assert market and all(s.value == 0 for s in market)
    found = check_exposition(body)
    connected = found["adlmon_feed_connected"]
    assert {s.labels["source"] for s in connected} == {"market", "hlp_liquidator",
                                                       "hlp_liquidator_2"}
    assert all(s.value == 0 for s in connected)  # AdlmonFeedDown's expression matches
    # one short line per source; the error text once per source in the log, then counted
    for name, s in status["sources"].items():
        assert s["detail"] and len(s["detail"]) < 80 and "Error" not in s["detail"], (name, s)
    name, vault = next((n, s) for n, s in status["sources"].items() if ".vault." in n)
    assert vault["detail"].startswith("disconnected: connect_error")
    assert vault["last_error"] and vault["failures_in_a_row"] >= 3
    assert f"×{vault['failures_in_a_row']}" in vault["detail"] or vault["failures_in_a_row"] > 3
    logged = [line for line in output.splitlines()
              if name in line and vault["last_error"] in line]
    assert len(logged) == 1, output[-3000:]  # once (a reminder only every 100 attempts)
    polled = [line for line in output.splitlines() if "clearinghouseState of vault HLP Liquidator:"
              in line and vault["last_error"] in line]
    assert len(polled) <= 1, polled  # the REST poller's failure too: once, then counted


def test_demo_cascade_exports_every_used_series_and_says_it_finished(tmp_path):
    promtool()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _spawn(["run", "--demo", "--demo-speed", "20", "--demo-seed", "5", "--listen",
                   f"127.0.0.1:{port}", "--config", str(_config(tmp_path))], tmp_path,
                  {"TMPDIR": str(tmp_path)})  # the demo's directory, cleaned with tmp_path
    try:
        _wait_http(base + "/livez", proc)
        deadline = time.monotonic() + 90
        status = {}
        while time.monotonic() < deadline and not (status.get("demo") or {}).get("finished"):
            time.sleep(0.2)
            status = orjson.loads(_get(base + "/api/status")[1])
        body = _get(base + "/metrics")[1]
        page_js = _get(base + "/static/status.js")[1]
    finally:
        code, output = _stop(proc)
    assert code == 0, output
    demo = status["demo"]
    assert demo["finished"] and demo["waves"] >= 1 and "seed 5" in demo["detail"]
    assert "demo finished" in page_js  # the page prints st.demo
    found = check_exposition(body)
    for name in ("adlmon_adl_armed", "adlmon_engine_anomalies_total",
                 "adlmon_feed_parse_errors_total", "adlmon_feed_reconnects_total"):
        assert found.get(name), name
    # the two vault sessions keep series of their own
    vaults = {s.labels["source"] for s in found["adlmon_feed_messages_total"]
              if s.labels["channel"] == "userFills"}
    assert vaults == {"hlp_liquidator", "hlp_liquidator_2"}
    waves = found["adlmon_adl_waves_total"]
    assert sum(s.value for s in waves) == demo["waves"]
    # after the cascade the feeds are stopped: no silence warnings
    tail = output.split("demo finished", 1)[1]
    assert "silence" not in tail


async def test_vault_websockets_start_and_are_counted_while_the_rest_bootstrap_fails(tmp_path):
    """A venue whose websocket works and whose /info answers 503 to everything: the
    vault sessions connect (and their series say so) while the clearinghouseState
    bootstrap is still failing, not after it gives up."""
    from aiohttp import WSMsgType, web

    from live_venue import VAULT, wait_for
    from adlmon.app import Daemon
    from adlmon.config import parse_config

    info_calls = []

    async def info(request):
        info_calls.append(await request.json())
        return web.Response(status=503, text="down for maintenance")

    async def ws(request):
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        async for msg in sock:
            if msg.type != WSMsgType.TEXT:
                break
            obj = orjson.loads(msg.data)
            if obj.get("method") == "ping":
                await sock.send_str('{"channel":"pong"}')
            elif obj.get("method") == "subscribe":
                await sock.send_str(orjson.dumps({"channel": "subscriptionResponse",
                                                  "data": obj}).decode())
        return sock

    app = web.Application()
    app.router.add_post("/info", info)
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    cfg = parse_config({"venues": {"hyperliquid": {
        "ws_url": f"ws://127.0.0.1:{port}/ws", "info_url": f"http://127.0.0.1:{port}/info",
        "sources": ["vault_fills", "vault_events", "vault_state", "trades"],
        "coins": ["BTC"], "vaults": [VAULT], "backoff_initial_s": 0.05, "backoff_max_s": 0.2,
        "quarantine_path": str(tmp_path / "q.jsonl")}}}, "test")
    cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, listen="127.0.0.1:0"))
    daemon = Daemon(cfg)
    daemon.feeds.discovery_timeout_s = 3600.0  # the bootstrap would hold sockets for an hour
    await daemon.start()
    try:
        await wait_for(lambda: len(daemon.feeds.sessions) == 2 and all(
            s.connected for s in daemon.feeds.sessions.values()), 30)
        assert daemon.feeds.poller is not None and not daemon.feeds.poller.bootstrapped
        assert "bootstrapping" in daemon.feeds.stage and info_calls  # still failing
        get = daemon.metrics.registry.get_sample_value
        for channel in ("userFills", "user"):
            assert get("adlmon_feed_connected", {"venue": "hyperliquid", "channel": channel,
                                                 "source": "hlp_liquidator"}) == 1
        assert get("adlmon_feed_connected", {"venue": "hyperliquid", "channel": "trades",
                                             "source": "market"}) == 1
        assert math.isnan(get("adlmon_insurance_fund_usd",
                              {"venue": "hyperliquid", "pool": "hlp_liquidator"}))
    finally:
        await daemon.stop()
        await runner.cleanup()


async def test_a_node_tail_has_its_own_source_series_from_the_start(tmp_path):
    from adlmon.config import parse_config
    from adlmon.metrics import Metrics
    from adlmon.venues.hyperliquid.ws import HyperliquidFeeds

    cfg = parse_config({"venues": {"hyperliquid": {
        "sources": ["node"], "node_data_dir": str(tmp_path / "data"),
        "quarantine_path": str(tmp_path / "q.jsonl")}}}, "test").venues.hyperliquid
    metrics = Metrics()

    async def publish(events):
        pass

    feeds = HyperliquidFeeds(cfg, publish, metrics=metrics, state_dir=str(tmp_path / "state"))
    await feeds.start()
    try:
        text = metrics.exposition().decode()
    finally:
        await feeds.stop()
    found = series(text)
    node = {s.labels["channel"] for s in found["adlmon_feed_reconnects_total"]
            if s.labels["source"] == "node"}
    assert node == {"node_fills_by_block", "misc_events"}
    assert {s.labels["source"] for s in found["adlmon_feed_connected"]} == {"node"}
