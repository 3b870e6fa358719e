"""The status page's charts in headless Chromium against the real server: waves over time,
the regret bound and policy losses, a wave's sorted haircuts, the exposure queue and what-if.
Desktop and phone widths, no console error, and every chart's data points (the arrays the
page handed to uPlot, kept in data-points) equal the API's numbers. Screenshots go to
artifacts/ (gitignored)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from adlmon.config import CounterfactualConfig, ServerConfig
from adlmon.counterfactual import Counterfactual
from adlmon.exposure import build_queue, exposure_report, queue_order
from adlmon.metrics import Metrics
from adlmon.replay import replay_files
from adlmon.server import ServerState, server_url, start_server, stop
from adlmon.sim import simulate
from headless import CHROMIUM, Browser
from test_exposure import hand_ledger

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
SIZES = {"desktop": (1280, 900, False), "phone": (390, 844, True)}  # width, height, mobile
CFG = CounterfactualConfig(mechanisms=("pro_rata", "capped_pro_rata", "queue_hyperliquid",
                                       "risk_based"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (make system-deps installs it)")


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    res = simulate(tmp_path_factory.mktemp("sim"), accounts=400, coins=3, shock=0.4, seed=7)
    cf = Counterfactual(CFG)
    out = replay_files(res.paths, 5000, (0, 1000), report_builder=cf.report).reports
    assert len(out) >= 2
    return out


@pytest.fixture
async def served(reports):
    state = ServerState(Metrics(process_collectors=False), horizons_ms=(0, 1000))
    state.started = True
    state.replay_done = True
    for r in reports:
        state.add_wave(r, observe=False)
    state.ledgers["hyperliquid"] = hand_ledger()
    state.exposure_cfg = CFG
    runner = await start_server(ServerConfig(listen="127.0.0.1:0"), state)
    yield server_url(runner)
    await stop(runner)


def points(dom: str, chart_id: str) -> dict:
    m = re.search(r'id="%s"[^>]*data-points="([^"]*)"' % chart_id, dom) or \
        re.search(r'data-points="([^"]*)"[^>]*id="%s"' % chart_id, dom)
    assert m, f"no data-points on #{chart_id}"
    import html
    return json.loads(html.unescape(m.group(1)))


def approx_list(values):
    return [None if v is None else pytest.approx(v, rel=1e-12, abs=1e-9) for v in values]


@pytest.fixture
async def browser(tmp_path):
    async with Browser(tmp_path / "chromium") as b:
        yield b


async def load(browser, url: str, size: str):
    w, h, mobile = SIZES[size]
    page = await browser.open(url, w, h, mobile=mobile)
    dom = await page.dom()
    return page, dom


@pytest.mark.parametrize("width", SIZES, ids=SIZES)
async def test_charts_plot_the_api_numbers_without_console_errors(served, reports, browser, width):
    page, dom = await load(browser, served + "/", width)
    assert 'data-charts="1"' in dom and 'data-loaded="1"' in dom, dom[:3000]
    assert page.errors == [] and await page.eval("window.adlmonErrors") == []
    assert "data-errors" not in dom
    # the page fits the screen: no chart is wider than the viewport
    assert await page.eval("Math.max(...[...document.querySelectorAll('.chart canvas')]"
                           ".map(c => c.getBoundingClientRect().right))") <= SIZES[width][0]
    # waves over time: x = end time (s), B, H per horizon, optimum, excess, oldest first
    waves = sorted(reports, key=lambda r: r["t_end_ms"])
    p = points(dom, "chart-waves")
    assert p["x"] == [w["t_end_ms"] / 1000 for w in waves]
    assert p["series"]["needed B"] == approx_list([w["needed_usd"] for w in waves])
    for h in ("0", "1000"):
        assert p["series"][f"H({h} ms)"] == approx_list([w["production_haircut_usd"][h] for w in waves])
    opt = [w["counterfactual"]["mechanisms"]["capped_pro_rata"]["ex_post"]["total_usd"] for w in waves]
    assert p["series"]["optimum"] == approx_list(opt)
    assert p["series"]["excess H(0) − optimum"] == approx_list(
        [w["counterfactual"]["excess_vs_optimal_usd"]["0"] for w in waves])
    # regret: the bound and every policy's cumulative loss, over the counted waves
    counted = [w for w in waves if w["counterfactual"]["regret"]["counted"]]
    r = points(dom, "chart-regret")
    assert r["series"]["bound"] == approx_list([w["counterfactual"]["regret"]["bound_usd"] for w in counted])
    for name in ("production", "risk_based", "capped_pro_rata"):
        assert r["series"][name] == approx_list(
            [w["counterfactual"]["regret"]["cumulative_loss_usd"][name] for w in counted])
    # exposure: the first coin's long queue under the default shortfall of the form
    q = build_queue(hand_ledger().holders("ETH", 1), queue_order("hyperliquid"), "long")
    want = exposure_report(q, venue="hyperliquid", at_ms=None, shortfall_usd=100000.0, cfg=CFG, limit=20)
    e = points(dom, "chart-exposure")
    assert e["x"] == [a["rank"] for a in want["accounts"]]
    assert e["series"]["production"] == approx_list([a["production_take_usd"] for a in want["accounts"]])
    for name in CFG.mechanisms:
        assert e["series"][name] == approx_list([a["take_usd"][name] for a in want["accounts"]])
    assert re.findall(r'<tr class="queue" data-user="([^"]+)"', dom) == [a["user"] for a in want["accounts"]]
    # the numbers are one click away: a table under each chart
    assert dom.count("<summary>Numbers</summary>") == 3
    ARTIFACTS.mkdir(exist_ok=True)
    data = await page.screenshot(ARTIFACTS / f"status_charts_{width}.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(data[16:20], "big") == SIZES[width][0]
    assert page.errors == []
    await page.close()


@pytest.mark.parametrize("width", SIZES, ids=SIZES)
async def test_wave_page_shows_each_rules_sorted_haircuts(served, reports, browser, width):
    w = max(reports, key=lambda r: r["counterfactual"]["winners"])
    page, dom = await load(browser, f"{served}/#wave/{w['wave_id']}", width)
    assert 'data-charts="1"' in dom and "data-errors" not in dom and page.errors == []
    assert '<section id="wave-detail" hidden' not in dom
    p = points(dom, "chart-wave")
    sorted_ = w["counterfactual"]["haircuts_sorted_usd"]
    assert set(p["series"]) == set(sorted_) >= {"production", "capped_pro_rata", "risk_based"}
    for name, values in sorted_.items():
        got = p["series"][name]
        assert got[:len(values)] == approx_list(values) and set(got[len(values):]) <= {None}
        assert values == sorted(values, reverse=True)
    src = w["counterfactual"]["capacity_source"]
    assert f"from the ledger: {src['ledger']}" in dom
    # its numbers one click away: open the table, the first row is the largest haircut
    await page.eval("document.querySelector('#chart-wave details').open = true")
    first = await page.eval("[...document.querySelectorAll('#chart-wave details tbody tr')][0].textContent")
    assert first.startswith("1")
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(ARTIFACTS / f"status_wave_{width}.png")
    assert page.errors == []
    await page.close()


async def test_a_console_error_is_caught(served, browser):
    # The harness sees what it must refuse: a failed script load and an uncaught exception.
    page = await browser.open(served + "/static/vendor/missing.js", 800, 600, ready="true")
    await page.eval("setTimeout(() => { throw new Error('boom') }, 0); 1")
    await page.eval("new Promise(r => setTimeout(r, 200))")
    import asyncio
    for _ in range(20):
        if len(page.errors) >= 2:
            break
        await asyncio.sleep(0.1)
    assert any("404" in e for e in page.errors) and any("boom" in e for e in page.errors)
    await page.close()
