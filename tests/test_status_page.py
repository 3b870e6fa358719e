"""The status page at / rendered by headless Chromium against the real server: the
script fetches /api/status and /api/waves and fills the tables; a screenshot is
kept in artifacts/status_page.png (gitignored)."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from pathlib import Path

import pytest

from adlmon.config import ServerConfig
from adlmon.metrics import Metrics
from adlmon.server import ServerState, server_url, start_server, stop
from tools import find_tool, require_tool

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = find_tool("chromium", "chromium-browser")


@pytest.fixture(autouse=True)
def _chromium():
    require_tool("chromium", "chromium-browser", package="chromium")


def wave(i: int, needed: float, production: float, optimal: float) -> dict:
    return {
        "venue": "hyperliquid", "wave_id": i, "t_start_ms": 1_760_131_000_000 + 60_000 * i,
        "t_end_ms": 1_760_131_004_000 + 60_000 * i, "adl_fills": 10 * i, "accounts": 3 * i,
        "losers": 2, "coins": ["BTC", "ETH"], "notional_usd": 1e6, "needed_usd": needed,
        "deficit_usd": None if i == 1 else 2 * needed, "deficit_source": "ledger",
        "production_haircut_usd": {"0": production, "500": production * 1.1},
        "counterfactual": {
            "optimal_mechanism": "capped_pro_rata",
            "mechanisms": {"capped_pro_rata": {"ex_post": {"total_usd": optimal,
                                                           "max_share": 0.05}}},
        },
    }


class _Rows(HTMLParser):
    """Collects the text of each <tr class="wave"> cell, by the cell's classes."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []
        self.sources: list[list[str]] = []
        self._table = None
        self._row = None
        self._cell = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._table = a.get("id")
        elif tag == "tr" and self._table == "waves" and "wave" in (a.get("class") or ""):
            self._row = {"id": a.get("data-wave-id"), "cells": []}
        elif tag == "tr" and self._table == "sources":
            self._row = {"cells": []}
        elif tag == "td" and self._row is not None:
            self._cell, self._text = a.get("class") or "", ""

    def handle_data(self, data):
        if self._cell is not None:
            self._text += data

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row["cells"].append((self._cell, self._text))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row["cells"]:  # header rows have <th> only
                (self.rows if self._table == "waves" else self.sources).append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None


async def chromium(url: str, tmp_path: Path, *args: str) -> bytes:
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,900",
        "--virtual-time-budget=5000", *args, url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("chromium did not finish within 60 s")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


@pytest.fixture
async def page_server():
    state = ServerState(Metrics())
    state.started = True
    state.update_source("hyperliquid/vault_fills", healthy=True, connected=True,
                        last_message_ts=None,
                        coverage="ADL and liquidation fills of the HLP liquidator vaults")
    state.update_source("hyperliquid/marks", healthy=False, connected=False,
                        coverage="activeAssetCtx marks of subscribed coins")
    state.add_wave(wave(1, needed=1_000.0, production=1_500.0, optimal=1_000.0))
    state.add_wave(wave(2, needed=250_000.0, production=2_400_000.0, optimal=250_000.0))
    runner = await start_server(ServerConfig(listen="127.0.0.1:0"), state)
    yield state, server_url(runner)
    await stop(runner)


async def test_status_page_renders_sources_and_waves_with_production_vs_optimal(
        page_server, tmp_path):
    _, url = page_server
    dom = (await chromium(url + "/", tmp_path, "--dump-dom")).decode()
    assert 'data-loaded="1"' in dom, dom[:2000]
    parsed = _Rows()
    parsed.feed(dom)
    assert [r["id"] for r in parsed.rows] == ["2", "1"]  # newest first
    newest = dict(parsed.rows[0]["cells"])
    assert newest["num production"] == "$2.40M"
    assert newest["num optimal"] == "$250.0k"
    assert newest["num excess bad"] == "$2.15M"
    oldest = [text for _, text in parsed.rows[1]["cells"]]
    assert "unknown" in oldest  # deficit null is shown as unknown, not 0
    names = {r["cells"][0][1]: r["cells"] for r in parsed.sources}
    assert set(names) == {"hyperliquid/vault_fills", "hyperliquid/marks"}
    assert names["hyperliquid/marks"][1] == ("bad", "unhealthy")
    assert "ready" in dom and "http://" not in dom.split("<body")[0]


async def test_status_page_screenshot_is_written_as_an_artifact(page_server, tmp_path):
    _, url = page_server
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "status_page.png"
    shot.unlink(missing_ok=True)
    await chromium(url + "/", tmp_path, f"--screenshot={shot}")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1280, 900)


async def test_offline_summary_is_one_reason_line_per_source_and_says_when_the_demo_finished(
        tmp_path):
    state = ServerState(Metrics())
    state.started = True
    error = "ClientConnectorDNSError: Cannot connect to host api.hyperliquid.xyz:443 " * 3
    for name in ("hyperliquid.market", "hyperliquid.vault.0x2e3d94f0",
                 "hyperliquid.vault.0xb0a55f13"):
        state.update_source(name, healthy=False, connected=False, coverage="c",
                            detail="disconnected: connect_error ×12", last_error=error)
    state.demo = {"finished": True, "detail": "3 of 3 simulated waves reported; seed 5"}
    runner = await start_server(ServerConfig(listen="127.0.0.1:0"), state)
    try:
        dom = (await chromium(server_url(runner) + "/", tmp_path, "--dump-dom")).decode()
    finally:
        await stop(runner)

    class Reasons(HTMLParser):
        def __init__(self):
            super().__init__()
            self.items, self.summary, self._in = [], "", None

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "p" and a.get("id") == "summary":
                self._in = "summary"
            elif tag == "li":
                self._in = "li"
                self.items.append("")

        def handle_data(self, data):
            if self._in == "summary":
                self.summary += data
            elif self._in == "li":
                self.items[-1] += data

        def handle_endtag(self, tag):
            if tag in ("p", "li"):
                self._in = None

    parsed = Reasons()
    parsed.feed(dom)
    assert len(parsed.items) == 3  # one line per source
    assert all(i.endswith("disconnected: connect_error ×12") for i in parsed.items), parsed.items
    assert "DNSError" not in dom  # the exception text stays in the API and the log
    assert "not ready" in parsed.summary and "demo finished: 3 of 3" in parsed.summary


def unknown_optimum_wave(i: int) -> dict:
    """A wave like the demo's first: every winner valued from its fills at capacity 0, so the
    fairness optimum at B does not exist on what is known (counterfactual.optimal_status)."""
    w = wave(i, needed=8_700.0, production=8_700.0, optimal=0.0)
    w["counterfactual"]["optimal"] = {
        "mechanism": "capped_pro_rata", "status": "unknown", "total_usd": None,
        "known_capacity_usd": 0.0, "needed_usd": 8_700.0, "winners": 4,
        "winners_without_capacity": 4,
        "reason": "known capacity $0.00 cannot carry B = $8,700.00: 4 of 4 winners have no "
                  "known capacity (4 valued from their fills alone)"}
    w["counterfactual"]["excess_vs_optimal_usd"] = {"0": None, "500": None}
    return w


async def test_status_page_shows_unknown_for_an_infeasible_optimum(page_server, tmp_path):
    """Not "Optimal $0.00" and a red "Excess $8.7k": the optimum and the excess are unknown,
    and the page says why. The screenshot is kept as artifacts/status_page_unknown.png."""
    state, url = page_server
    state.add_wave(unknown_optimum_wave(3))
    dom = (await chromium(url + "/", tmp_path, "--dump-dom")).decode()
    assert 'data-loaded="1"' in dom, dom[:2000]
    parsed = _Rows()
    parsed.feed(dom)
    assert [r["id"] for r in parsed.rows] == ["3", "2", "1"]
    unknown = dict(parsed.rows[0]["cells"])
    assert unknown["num optimal unknown"] == "unknown"
    assert unknown["num excess unknown"] == "unknown"
    assert "$0.00" not in [text for _, text in parsed.rows[0]["cells"]]
    known = dict(parsed.rows[1]["cells"])
    assert known["num optimal"] == "$250.0k" and known["num excess bad"] == "$2.15M"
    assert "Wave 3: optimum unknown: known capacity $0.00 cannot carry B = $8,700.00" in dom
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "status_page_unknown.png"
    shot.unlink(missing_ok=True)
    await chromium(url + "/", tmp_path, f"--screenshot={shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
