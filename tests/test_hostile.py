"""Issue 9 acceptance: ``adlmon run`` as a real process against a hostile fake venue.

The fake Hyperliquid (a real websocket + HTTP server on 127.0.0.1) plays a simulated
cascade while it is scripted with poison: a garbage ``clearinghouseState`` for the
vault at start-up and for every winner after, a ``userEvents`` liquidation whose
``liquidated_user`` is an object, a flood of 20,000 malformed frames, a frame over
the configured frame cap, and an endless frame announcing 2^40 bytes. The daemon must
keep reporting the waves of the good events (the same segmentation as a replay),
``/livez`` must answer within a second throughout (sampled by a thread, the max
asserted), its peak RSS must stay bounded, and SIGTERM must exit 0.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest

from live_venue import (
    GAP_MS, HORIZONS, SEGMENT_FIELDS, VAULT, free_port, make_cascade, metric as _metric,
    replay_reports, same, wait_for,
)
from adlmon.venues.hyperliquid.fake import FakeHyperliquid

SPEED = 2.0  # the cascade lasts ~20 s of wall time: room to inject every poison mid-cascade
FRAME_CAP = 4 << 20
RSS_BOUND_MB = 1024  # generous: the daemon idles at ~150 MB; the issue saw 978 MB from one frame
BAD_STATE = {"assetPositions": 5, "marginSummary": {"accountValue": "1"}, "time": 1}


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    sim = make_cascade(tmp_path_factory.mktemp("cascade"))
    return sim, replay_reports(sim)


def _config(tmp: Path, fake: FakeHyperliquid, port: int) -> Path:
    coins = ", ".join(f'"{c}"' for c in fake.coins)
    path = tmp / "adlmon.toml"
    path.write_text(f"""
[engine]
gap_ms = {GAP_MS}
horizons_ms = {list(HORIZONS)}
[server]
listen = "127.0.0.1:{port}"
[wavelog]
path = "{tmp / 'wavelog.jsonl'}"
[venues.hyperliquid]
ws_url = "{fake.ws_url}"
info_url = "{fake.info_url}"
sources = ["vault_fills", "vault_events", "vault_state", "trades"]
coins = [{coins}]
vaults = ["{VAULT}"]
ping_interval_s = 1.0
liveness_timeout_s = 3.0
silence_budget_s = 30.0
backoff_initial_s = 0.05
backoff_max_s = 0.3
vault_poll_interval_s = 1.0
quarantine_path = "{tmp / 'quarantine.jsonl'}"
quarantine_max_bytes = 1000000
max_frame_bytes = {FRAME_CAP}
""")
    return path


def _get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class LivezSampler(threading.Thread):
    """GET /livez every 0.1 s from its own thread; records each answer's latency."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url = url
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            t0 = time.perf_counter()
            try:
                status, body = _get(self.url, timeout=5.0)
                if status != 200:
                    self.failures.append(f"{status} {body.strip()}")
            except OSError as exc:
                self.failures.append(repr(exc))
            self.latencies.append(time.perf_counter() - t0)
            self.halt.wait(0.1)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


async def _until(cond, timeout: float) -> None:
    """Poll a blocking condition (an HTTP read) off the loop, which serves the fake venue."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        while not await loop.run_in_executor(None, cond):
            await asyncio.sleep(0.1)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc for RSS")
async def test_the_daemon_survives_a_hostile_venue_keeps_reporting_and_stops_cleanly(cascade, tmp_path):
    sim, reference = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=SPEED, paused=True).start()
    fake.script_info("clearinghouseState", BAD_STATE, user=VAULT, times=1)  # kills start-up before
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "adlmon.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen([sys.executable, "-m", "adlmon", "run", "--config",
                                 str(_config(tmp_path, fake, port))], cwd=tmp_path, env=env,
                                stdout=log_file, stderr=subprocess.STDOUT)
    sampler = LivezSampler(base + "/livez")
    try:
        def listening() -> bool:
            assert proc.poll() is None, log_path.read_text()
            try:
                return _get(base + "/livez")[0] == 200
            except OSError:
                return False

        await _until(listening, 30)
        sampler.start()

        def connected() -> bool:  # start-up survived the vault's garbage: sockets open
            st = orjson.loads(_get(base + "/api/status")[1])["sources"]
            return len([s for s in st.values() if s.get("connected")]) >= 3

        await _until(connected, 30)
        assert fake.scripted_answers == 1
        fake.script_info("clearinghouseState", BAD_STATE, times=None)  # every winner and vault
        fake.resume()
        await wait_for(lambda: fake.next_block > 0, 10)
        liquidation = {"channel": "user", "data": {"liquidation": {
            "lid": 1, "liquidator": VAULT, "liquidated_user": {"user": "0xabc"},
            "liquidated_ntl_pos": "10.0", "liquidated_account_value": "-1.0"}}}
        assert await fake.send_raw(orjson.dumps(liquidation).decode(), channel="userEvents")
        assert await fake.flood('{"channel":"trades","data":[{"coin":', 20_000,
                                channel="trades") == 20_000
        await asyncio.sleep(1.0)
        oversized = '{"channel":"trades","data":"' + "x" * (2 * FRAME_CAP) + '"}'
        assert await fake.send_raw(oversized, channel="trades")
        await asyncio.sleep(1.0)
        endless = await fake.send_endless_frame(channel="userFills")
        await asyncio.sleep(0.5)
        assert await fake.send_raw(orjson.dumps(liquidation).decode(), channel="userEvents")
        await wait_for(fake.done.is_set, 60)
        await asyncio.sleep(1.0)  # the last frames and polls

        def recovered() -> bool:  # every source reconnected after the frame-cap reconnects
            st = orjson.loads(_get(base + "/api/status")[1])["sources"]
            return all(s.get("connected") for n, s in st.items() if n != "hyperliquid.vault_state")

        await _until(recovered, 30)
        _status, metrics = _get(base + "/metrics")
        _ready, readyz = _get(base + "/readyz")
        peak_mb = _peak_rss_mb(proc.pid)
    finally:
        sampler.halt.set()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            await fake.stop()
        sampler.join(10)
    log = log_path.read_text(errors="replace")
    print(f"hostile venue: /livez max {max(sampler.latencies, default=0):.3f} s over "
          f"{len(sampler.latencies)} probes; peak RSS {peak_mb:.0f} MB; endless frame: "
          f"{endless} payload bytes written; log {len(log)} bytes")  # pytest -s: the numbers
    assert code == 0, log[-5000:]
    # /livez answered, within a second, every time it was asked
    assert sampler.latencies and not sampler.failures, sampler.failures[:5]
    assert max(sampler.latencies) < 1.0, max(sampler.latencies)
    assert peak_mb < RSS_BOUND_MB, peak_mb
    # the endless frame was refused from its header: the venue could write little of it
    assert endless < 64 << 20, endless
    assert _metric(metrics, "adlmon_feed_reconnects_total", reason="frame_too_large") >= 2
    # the flood and the bad events were counted, not fatal
    assert _metric(metrics, "adlmon_feed_parse_errors_total", channel="trades") >= 20_000
    bad_liquidations = (_metric(metrics, "adlmon_engine_anomalies_total", kind="bad_event")
                        + _metric(metrics, "adlmon_feed_parse_errors_total", channel="user"))
    assert bad_liquidations >= 2
    assert _metric(metrics, "adlmon_task_failures_total") == 0, readyz
    assert len(log.encode()) < 2_000_000  # throttled: not one traceback per bad frame
    # every wave of the good events reported, with the replay's segmentation
    lines = [orjson.loads(x) for x in (tmp_path / "wavelog.jsonl").read_bytes().splitlines()]
    assert len(lines) == len(reference)
    for live, ref in zip(lines, reference):
        assert same(live, ref, SEGMENT_FIELDS) == []
    assert any("error" in (r.get("winner_state") or {}) or (r.get("winner_state") or {}).get(
        "polled") == 0 for r in lines)  # the winners' garbage answers were survived
