"""Soak: ``adlmon run`` (node deployment) against a node data dir fed at full speed
for a long simulated period (issue 12), sampling the daemon's RSS, open fds, asyncio
tasks and event-loop lag.

One simulated cascade (``adlmon.sim``) is appended again and again to the node's
hourly files, each repetition shifted in time (and in trade ids) by the cascade's
span plus a quiet minute, so the daemon sees an endless market with ADL waves, state
snapshots, wavelog writes and file rotations (a new hourly file every
``--reps-per-file`` repetitions; files the daemon has passed are deleted). The feeder
keeps at most ``--ahead-mb`` unread. Samples every ``--every-s`` s: RSS and fds from
/proc, asyncio tasks and loop lag from ``/api/status``, fills applied from
``/metrics``. Growth = RSS at the end / median RSS over the samples right after the
warm-up (the first ``--warmup`` of the events) - 1.

    nice -n 10 .venv/bin/python benchmarks/soak.py --events 10000000 --write

``--write`` replaces the "## Soak" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adlmon.sim import iso_ns, line_time_ms, simulate  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


class Feed:
    """The cascade's lines, shifted by ``k`` periods on demand."""

    def __init__(self, sim):
        self.fills = sim.fills_path.read_bytes().splitlines()
        self.misc = sim.misc_path.read_bytes().splitlines()
        times = [line_time_ms(x) for x in self.fills]
        self.period_ms = times[-1] - times[0] + 60_000
        self.fills_per_rep = sum(len(orjson.loads(x)["events"]) for x in self.fills)

    def fills_rep(self, k: int) -> bytes:
        dt, dtid = k * self.period_ms, k * 10_000_000
        out = []
        for line in self.fills:
            obj = orjson.loads(line)
            for _user, f in obj["events"]:
                f["time"] += dt
                f["tid"] += dtid
            out.append(orjson.dumps(obj))
        return b"\n".join(out) + b"\n"

    def misc_rep(self, k: int) -> bytes:
        dt = k * self.period_ms
        out = []
        for line in self.misc:
            obj = orjson.loads(line)
            obj["time"] = iso_ns((line_time_ms(line) + dt) * 1_000_000)
            out.append(orjson.dumps(obj))
        return b"\n".join(out) + b"\n"


def hour_key(i: int) -> tuple[str, str]:
    day, hour = divmod(i, 24)
    return f"{20251010 + day}", str(hour)


def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="adlmon-soak-"))
    sim = simulate(tmp / "sim", accounts=800, coins=3, seed=1)
    feed = Feed(sim)
    data = tmp / "data"
    port = _free_port()
    cfg = tmp / "adlmon.toml"
    cfg.write_text(f"""
[engine]
state_dir = "{tmp / 'state'}"
snapshot_interval_s = 5.0
[counterfactual]
mechanisms = ["pro_rata", "capped_pro_rata", "queue_pnl"]
[wavelog]
path = "{tmp / 'wavelog.jsonl'}"
[venues.hyperliquid]
sources = ["node"]
node_data_dir = "{data}"
quarantine_path = "{tmp / 'quarantine.jsonl'}"
[log]
level = "WARNING"
""")
    streams = {"node_fills_by_block": data / "node_fills_by_block" / "hourly",
               "misc_events": data / "misc_events" / "hourly"}
    written: dict[str, list[Path]] = {k: [] for k in streams}

    def new_file(i: int) -> None:
        day, hour = hour_key(i)
        for name, root in streams.items():
            p = root / day / hour
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"")
            written[name].append(p)

    new_file(0)
    proc = subprocess.Popen([sys.executable, "-m", "adlmon", "run", "--config", str(cfg),
                             "--listen", f"127.0.0.1:{port}"], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "daemon.log", "wb"))
    base = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            _get(base + "/livez")
            break
        except OSError:
            time.sleep(0.05)
    samples = []
    k = 0
    t0 = time.monotonic()
    last_sample = 0.0
    try:
        while True:
            st = orjson.loads(_get(base + "/api/status"))
            node = next(s for s in st["sources"].values() if s.get("kind") == "node")
            fills = node["events"]
            now = time.monotonic()
            if now - last_sample >= args.every_s:
                last_sample = now
                status = (Path("/proc") / str(proc.pid) / "status").read_text()
                rss_kb = int(next(x for x in status.splitlines() if x.startswith("VmRSS"))
                             .split()[1])
                samples.append({
                    "t_s": round(now - t0, 1), "events": fills, "rss_mb": rss_kb / 1024,
                    "fds": len(os.listdir(f"/proc/{proc.pid}/fd")),
                    "tasks": st.get("asyncio_tasks"), "loop_lag_s": st.get("loop_lag_s"),
                    "waves": st["state"]["engine"]["next_wave_id"] - 1,
                })
                print(samples[-1], flush=True)
            if fills >= args.events:
                break
            # Unread bytes: what was written past the daemon's offsets.
            cur = node["streams"]["node_fills_by_block"]
            day, _, hour = cur.get("file", "0/0").partition("/")
            at = (day, int(hour or 0))
            ahead = sum(p.stat().st_size for p in written["node_fills_by_block"]
                        if (p.parent.name, int(p.name)) >= at) - cur.get("offset", 0)
            if ahead > args.ahead_mb * 1e6:
                time.sleep(0.05)
                continue
            if k and k % args.reps_per_file == 0:
                new_file(k // args.reps_per_file)
                # Delete what the daemon has passed (all but the two newest files).
                for name in streams:
                    while len(written[name]) > 2:
                        written[name].pop(0).unlink()
            with open(written["node_fills_by_block"][-1], "ab") as fh:
                fh.write(feed.fills_rep(k))
            with open(written["misc_events"][-1], "ab") as fh:
                fh.write(feed.misc_rep(k))
            k += 1
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    wall = time.monotonic() - t0
    warm = [s for s in samples if s["events"] >= args.warmup * args.events]
    base_rss = statistics.median(s["rss_mb"] for s in warm[:5])
    end_rss = samples[-1]["rss_mb"]
    return {"samples": samples, "events": samples[-1]["events"], "wall_s": wall,
            "reps": k, "fills_per_rep": feed.fills_per_rep, "exit": code,
            "rss_warm_mb": base_rss, "rss_end_mb": end_rss,
            "rss_growth": end_rss / base_rss - 1.0,
            "fds": (min(s["fds"] for s in warm), max(s["fds"] for s in warm)),
            "tasks": (min(s["tasks"] or 0 for s in warm), max(s["tasks"] or 0 for s in warm)),
            "lag_max_s": max((s["loop_lag_s"] or 0.0) for s in samples),
            "waves": samples[-1]["waves"], "cmd": " ".join(sys.argv)}


def markdown(r: dict) -> str:
    rows = r["samples"]
    pick = rows[:: max(1, len(rows) // 12)] + [rows[-1]]
    table = "\n".join(f"| {s['t_s']:.0f} | {s['events']:,} | {s['rss_mb']:.1f} | {s['fds']} | "
                      f"{s['tasks']} | {(s['loop_lag_s'] or 0) * 1000:.0f} | {s['waves']} |"
                      for s in pick)
    return f"""## Soak

`{r['cmd']}` (Python {platform.python_version()}, 2 shared cores): `adlmon run` as a node
deployment (state_dir with 5 s snapshots, wavelog, 3 mechanisms) tailing a node data dir
fed one simulated cascade ({r['fills_per_rep']:,} fills, 3 ADL waves) again and again,
shifted in time, {r['reps']} repetitions, a new hourly file every few and old ones deleted.
{r['events']:,} fills applied in {r['wall_s']:.0f} s ({r['events'] / r['wall_s']:,.0f}
fills/s), {r['waves']} waves reported; exit code {r['exit']} after SIGTERM.

RSS after warm-up {r['rss_warm_mb']:.1f} MiB, at the end {r['rss_end_mb']:.1f} MiB: growth
{r['rss_growth'] * 100:+.1f}% (target < 5%). Open fds {r['fds'][0]}–{r['fds'][1]}, asyncio
tasks {r['tasks'][0]}–{r['tasks'][1]}, largest sampled loop lag
{r['lag_max_s'] * 1000:.0f} ms.

| t (s) | fills | RSS (MiB) | fds | tasks | loop lag (ms) | waves |
|---|---|---|---|---|---|---|
{table}
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--warmup", type=float, default=0.2)
    ap.add_argument("--every-s", type=float, default=2.0)
    ap.add_argument("--ahead-mb", type=float, default=8.0)
    ap.add_argument("--reps-per-file", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="replace ## Soak in BENCHMARKS.md")
    args = ap.parse_args(argv)
    r = run(args)
    text = markdown(r)
    print(text)
    if args.write:
        sys.path.insert(0, str(REPO / "benchmarks"))
        from benchmarks_md import write_section

        write_section(text, "## Soak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
