"""``adlmon fetch hyperliquid``: Hyperliquid's S3 node archive -> a local cache (venues.md §1.8).

Where the data is (requester pays: the downloader pays the transfer):

* ``s3://hl-mainnet-node-data/node_fills_by_block/hourly/YYYYMMDD/H.lz4``: every
  fill, both sides, one line per block (the source of every 10 Oct 2025 ADL
  analysis); for hours before that layout existed, the older per-fill
  ``node_fills/hourly/...`` (about 2025-05-25 -> 2025-07-27) is used instead;
* misc events (funding, ledger updates with the liquidation account value):
  ``misc_events_by_block/hourly/...`` else ``misc_events/hourly/...`` in the same
  bucket, the node's own directory names (the bucket's listing of them is not
  documented: an hour without them is reported missing, not fatal);
* ``trades``: the older ``node_trades/hourly/...`` (prices and sizes only, no
  ``dir`` or ``liquidation``: no ADL can be seen in it; kept for marks);
* ``asset_ctxs``: ``s3://hyperliquid-archive/asset_ctxs/YYYYMMDD.csv.lz4``,
  per-minute mark and oracle prices of every coin, one file per day.

The cache under ``--dir`` is laid out like the buckets (``DIR/<key>``), so the
same paths serve ``adlmon replay``; with ``--decompress`` each hourly
``H.lz4`` also gets its plain ``H`` beside it, the node's own file name, so
``DIR`` is a node data directory the node tailer (``sources = ["node"]``,
``node_data_dir = DIR``) reads as it is (a replay of DIR reads the pair once:
the plain file has the same content). ``DIR/.adlmon-fetch/`` keeps the partial downloads and a manifest of what was
verified (key, size, ETag). Time range: ``--from``/``--to`` are UTC times (an
hour ``2025-10-10T21`` or a minute ``2025-10-10T21:27``); every hourly file
overlapping ``[from, to)`` is fetched, so ``--to`` is exclusive.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import orjson

NODE_BUCKET = "hl-mainnet-node-data"
MARKET_BUCKET = "hyperliquid-archive"
# Layouts per stream, preferred first: an hour takes the first layout that has it.
STREAM_LAYOUTS = {
    "fills": ("node_fills_by_block", "node_fills"),
    "misc": ("misc_events_by_block", "misc_events"),
    "trades": ("node_trades",),
}
DAILY_STREAMS = {"asset_ctxs": (MARKET_BUCKET, "asset_ctxs/{day}.csv.lz4")}
STREAMS = (*STREAM_LAYOUTS, *DAILY_STREAMS)
DEFAULT_STREAMS = ("fills", "misc")
# AWS S3 data transfer out to the internet, first 10 TB/month, us-east-1 list price
# (aws.amazon.com/s3/pricing, "Data Transfer"); other regions list up to about
# $0.114/GB; transfer to EC2 in the bucket's own region is free. GET: $0.0004/1000.
USD_PER_GB = 0.09
USD_PER_1000_GETS = 0.0004
STATE_DIR = ".adlmon-fetch"
MANIFEST = "manifest.json"
GB = 1e9


# ----------------------------------------------------------------------------- plan

def parse_time(text: str) -> datetime:
    """A UTC time: ``YYYY-MM-DDTHH``, ``...THH:MM``, ``...THH:MM:SS`` or a date."""
    t = text.strip().rstrip("Z")
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H", "%Y-%m-%d"):
        try:
            return datetime.strptime(t, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise ValueError(f"{text!r}: not a UTC time (YYYY-MM-DDTHH, YYYY-MM-DDTHH:MM or YYYY-MM-DD)")


def hours(start: datetime, end: datetime) -> list[datetime]:
    """The hour starts of every hourly file overlapping [start, end)."""
    h = start.replace(minute=0, second=0, microsecond=0)
    out = []
    while h < end:
        out.append(h)
        h += timedelta(hours=1)
    return out


def hourly_key(layout: str, hour: datetime) -> str:
    return f"{layout}/hourly/{hour:%Y%m%d}/{hour.hour}.lz4"


@dataclass
class Plan:
    objects: list  # list[RemoteObject], in (stream, time) order
    missing: list[str]  # "<stream> <YYYYMMDD>/<H>: not in ..." lines
    layouts: dict[str, int]  # layout -> objects taken from it

    @property
    def bytes(self) -> int:
        return sum(o.size for o in self.objects)


def plan(client, streams: Iterable[str], start: datetime, end: datetime) -> Plan:
    """List the bucket once per (layout, day) and pick each hour's object."""
    from adlmon.net.s3 import is_missing, list_objects

    hs = hours(start, end)
    days = sorted({h.strftime("%Y%m%d") for h in hs})
    objects, missing, layouts = [], [], {}
    listed: dict[tuple[str, str], dict] = {}

    def listing(bucket: str, prefix: str) -> dict:
        if (bucket, prefix) not in listed:
            try:
                listed[bucket, prefix] = {o.key: o for o in list_objects(client, bucket, prefix)}
            except Exception as exc:  # noqa: BLE001 - reported per hour below
                if not is_missing(exc):
                    raise
                listed[bucket, prefix] = {}
        return listed[bucket, prefix]

    for stream in streams:
        if stream in DAILY_STREAMS:
            bucket, pattern = DAILY_STREAMS[stream]
            for day in days:
                key = pattern.format(day=day)
                o = listing(bucket, key).get(key)
                if o is None:
                    missing.append(f"{stream} {day}: no s3://{bucket}/{key}")
                else:
                    objects.append(o)
                    layouts[stream] = layouts.get(stream, 0) + 1
            continue
        for h in hs:
            for layout in STREAM_LAYOUTS[stream]:
                key = hourly_key(layout, h)
                o = listing(NODE_BUCKET, f"{layout}/hourly/{h:%Y%m%d}/").get(key)
                if o is not None:
                    objects.append(o)
                    layouts[layout] = layouts.get(layout, 0) + 1
                    break
            else:
                tried = " or ".join(f"s3://{NODE_BUCKET}/{hourly_key(la, h)}"
                                    for la in STREAM_LAYOUTS[stream])
                missing.append(f"{stream} {h:%Y%m%d}/{h.hour}: no {tried}")
    return Plan(objects, missing, layouts)


def cost_usd(nbytes: int, gets: int, usd_per_gb: float = USD_PER_GB) -> float:
    """Requester-pays estimate: transfer out plus GET requests (list prices, see USD_PER_GB)."""
    return nbytes / GB * usd_per_gb + gets / 1000 * USD_PER_1000_GETS


# ----------------------------------------------------------------------------- cache

class Cache:
    """``root/<key>`` files plus ``root/.adlmon-fetch/`` (partials, manifest)."""

    def __init__(self, root: Path):
        self.root = root
        self.state = root / STATE_DIR
        self._lock = threading.Lock()
        try:
            self.manifest = orjson.loads((self.state / MANIFEST).read_bytes())
            if not isinstance(self.manifest, dict):
                raise ValueError("not an object")
        except (OSError, ValueError):
            self.manifest = {}

    def path(self, obj) -> Path:
        return self.root / obj.key

    def partial(self, obj) -> Path:
        return self.state / "partial" / (obj.key + ".part")

    def is_cached(self, obj) -> bool:
        """The file is there with the listed size and was verified against this ETag
        (a file the manifest does not know is verified now)."""
        from adlmon.net.s3 import verify

        p = self.path(obj)
        if not p.is_file() or p.stat().st_size != obj.size:
            return False
        entry = self.manifest.get(obj.key)
        if isinstance(entry, dict) and entry.get("etag") == obj.etag and entry.get("size") == obj.size:
            return True
        ok, how, _ = verify(p, obj)
        if ok:
            self.record(obj, how)
        return ok

    def record(self, obj, verified: str, **extra) -> None:
        with self._lock:
            entry = {"bucket": obj.bucket, "size": obj.size, "etag": obj.etag, "verified": verified}
            old = self.manifest.get(obj.key)
            if isinstance(old, dict) and old.get("etag") == obj.etag:
                entry = {**old, **entry}
            self.manifest[obj.key] = {**entry, **extra}
            self.state.mkdir(parents=True, exist_ok=True)
            tmp = self.state / (MANIFEST + ".tmp")
            tmp.write_bytes(orjson.dumps(self.manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            os.replace(tmp, self.state / MANIFEST)


def plain_path(path: Path) -> Path | None:
    """The node's own name of an hourly ``<H>.lz4`` file (``<H>``), else None."""
    return path.with_suffix("") if path.suffix == ".lz4" and path.stem.isdigit() else None


def decompress(cache: Cache, obj) -> Path | None:
    """Write the plain ``<H>`` of a verified hourly object (skipped when the manifest
    says it was already written with its current size)."""
    import lz4.frame

    src = cache.path(obj)
    dest = plain_path(src)
    if dest is None:
        return None
    entry = cache.manifest.get(obj.key) or {}
    if dest.is_file() and entry.get("plain_size") == dest.stat().st_size:
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    with lz4.frame.open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    os.replace(tmp, dest)
    cache.record(obj, entry.get("verified", ""), plain_size=dest.stat().st_size)
    return dest


def local_files(root: str | Path) -> list[Path]:
    """The archive files of a cache (or any bucket-like tree), in time order
    (day, hour, layout), without the fetch state."""
    root = Path(root)
    out = [p for p in root.rglob("*") if p.is_file() and STATE_DIR not in p.relative_to(root).parts]
    return sorted(out, key=_file_order)


def _file_order(p: Path) -> tuple:
    parts = p.parts
    try:  # .../<layout>/hourly/<YYYYMMDD>/<H>[.lz4]
        return (parts[-2], int(p.name.split(".")[0]), parts[-4])
    except (IndexError, ValueError):
        return (str(p.parent), "", 0)


# ----------------------------------------------------------------------------- layout

def _line_hour(line: bytes) -> datetime:
    """The hour of a node line: ``block_time`` (fills/misc by block) or ``time``
    (ms, or ISO as misc_events write it)."""
    from adlmon.venues.hyperliquid.parse import time_ms

    obj = orjson.loads(line)
    t = obj.get("block_time") or obj.get("time")
    ms = time_ms(t) if isinstance(t, (int, float)) else time_ms(str(t))
    return datetime.fromtimestamp(ms / 1000, timezone.utc).replace(minute=0, second=0, microsecond=0)


def write_hourly(lines: Iterable[bytes], root: str | Path, layout: str) -> list[Path]:
    """Split a node file's lines by hour into ``root/<layout>/hourly/YYYYMMDD/H.lz4``
    (LZ4 frames, as the bucket holds them); lines must be in time order."""
    import lz4.frame

    root = Path(root)
    written: list[Path] = []
    current: tuple[datetime, object] | None = None
    try:
        for line in lines:
            if not bytes(line).strip():
                continue
            h = _line_hour(line)
            if current is None or current[0] != h:
                if current is not None:
                    current[1].close()
                path = root / hourly_key(layout, h)
                path.parent.mkdir(parents=True, exist_ok=True)
                current = (h, lz4.frame.open(path, "wb"))
                written.append(path)
            current[1].write(bytes(line) + b"\n")
    finally:
        if current is not None:
            current[1].close()
    return written


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("venue", choices=("hyperliquid",), help="the venue whose archive to fetch")
    parser.add_argument("--from", dest="start", required=True,
                        help="UTC start, e.g. 2025-10-10T21 (hour) or 2025-10-10T21:15")
    parser.add_argument("--to", dest="end", required=True,
                        help="UTC end, exclusive, e.g. 2025-10-10T22")
    parser.add_argument("--streams", default=",".join(DEFAULT_STREAMS),
                        help=f"comma separated, of {', '.join(STREAMS)} (default: %(default)s)")
    parser.add_argument("--dir", default="hl-archive", help="local cache directory (default: %(default)s)")
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.add_argument("--decompress", action="store_true",
                        help="also write each hourly file uncompressed under the node's own name "
                             "(<H> beside <H>.lz4), so DIR is a node data directory for the node tailer")
    parser.add_argument("--jobs", type=int, default=4, help="parallel downloads (default: %(default)s)")
    parser.add_argument("--usd-per-gb", type=float, default=USD_PER_GB,
                        help="transfer price of the estimate, USD per GB (default: %(default)s, AWS S3 "
                             "list price to the internet, first 10 TB/month, us-east-1)")


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.2f} {unit}"
        n /= 1000
    return str(n)


def _confirm(prompt: str) -> bool:
    try:
        return input(prompt).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _bars(enabled: bool):
    """tqdm if it is installed and stderr is a terminal, else nothing."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


def main(args: argparse.Namespace) -> int:
    say = lambda *a: print("adlmon fetch:", *a, file=sys.stderr)  # noqa: E731
    try:
        start, end = parse_time(args.start), parse_time(args.end)
    except ValueError as exc:
        say(exc)
        return 2
    if end <= start:
        say(f"--to {args.end} must be after --from {args.start}")
        return 2
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    bad = [s for s in streams if s not in STREAMS]
    if bad or not streams:
        say(f"--streams {args.streams!r}: unknown {', '.join(bad) or '(empty)'}; allowed: {', '.join(STREAMS)}")
        return 2
    if args.jobs < 1:
        say(f"--jobs {args.jobs}: must be at least 1")
        return 2
    try:
        from adlmon.net import s3
    except ImportError as exc:
        say(f"needs boto3 (pip install 'adlmon[s3]'): {exc}")
        return 2
    try:
        client = s3.make_client(max_connections=args.jobs + 2)
        p = plan(client, streams, start, end)
    except s3.NoCredentialsError as exc:
        say(exc)
        return 2
    except Exception as exc:  # noqa: BLE001 - network or permission: say which, no traceback
        say(f"listing s3://{NODE_BUCKET} failed: {type(exc).__name__}: {exc}")
        return 1

    cache = Cache(Path(args.dir))
    todo = [o for o in p.objects if not cache.is_cached(o)]
    todo_bytes = sum(o.size for o in todo)
    endpoint = client.meta.endpoint_url
    print(f"{len(p.objects)} objects, {_human(p.bytes)} in {endpoint} for {start:%Y-%m-%dT%H:%M}Z"
          f"..{end:%Y-%m-%dT%H:%M}Z ({', '.join(streams)}; layouts: "
          + ", ".join(f"{k} {v}" for k, v in sorted(p.layouts.items())) + ")")
    for line in p.missing:
        print(f"  missing: {line}")
    print(f"already in {cache.root}: {len(p.objects) - len(todo)}; to download: {len(todo)}, "
          f"{_human(todo_bytes)}; requester-pays estimate ${cost_usd(todo_bytes, len(todo), args.usd_per_gb):,.2f} "
          f"(${args.usd_per_gb}/GB transfer out + ${USD_PER_1000_GETS}/1000 GETs, AWS S3 list prices; "
          f"free from EC2 in the bucket's region)")
    if not p.objects:
        say("nothing to fetch in this range")
        return 1
    if todo and not args.yes:
        if not sys.stdin.isatty():
            say("not a terminal: pass --yes to confirm the download")
            return 2
        if not _confirm(f"download {_human(todo_bytes)}? [y/N] "):
            say("not confirmed; nothing downloaded")
            return 1

    tqdm = _bars(sys.stderr.isatty())
    total_bar = tqdm(total=todo_bytes, unit="B", unit_scale=True, desc="total", position=0) if tqdm else None
    slots = list(range(1, args.jobs + 1))
    slot_lock = threading.Lock()

    def one(obj):
        bar = None
        if tqdm:
            with slot_lock:
                slot = slots.pop(0)
            bar = tqdm(total=obj.size, unit="B", unit_scale=True, desc=obj.key, position=slot, leave=False)

        def progress(n: int) -> None:
            if bar is not None:
                bar.update(n)
                total_bar.update(n)

        try:
            res = s3.download(client, obj, cache.path(obj), cache.partial(obj), progress=progress)
            if res.status == "downloaded":
                cache.record(obj, res.verified)
            return res
        except Exception as exc:  # noqa: BLE001 - one object's failure never stops the others
            res = s3.Download(obj, cache.path(obj), status="refused")
            res.messages.append(f"{obj.key}: {type(exc).__name__}: {exc}")
            return res
        finally:
            if bar is not None:
                bar.close()
                with slot_lock:
                    slots.append(slot)

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, todo))
    if total_bar is not None:
        total_bar.close()

    if args.decompress:
        refused_keys = {r.obj.key for r in results if r.status != "downloaded"}
        for obj in p.objects:
            if obj.key not in refused_keys:
                try:
                    decompress(cache, obj)
                except (OSError, RuntimeError, EOFError) as exc:  # a verified object that is not LZ4
                    print(f"  {obj.key}: not decompressed: {type(exc).__name__}: {exc}")
    fetched = sum(r.bytes_fetched for r in results)
    refused = [r for r in results if r.status != "downloaded"]
    for r in results:
        for m in r.messages:
            print(f"  {m}")
    size_only = [r for r in results if r.verified == s3.VERIFIED_SIZE]
    print(f"downloaded {len(results) - len(refused)} objects ({_human(fetched)} transferred, "
          f"{sum(r.resumes for r in results)} resumed, {sum(r.refetches for r in results)} re-fetched"
          + (f", {len(size_only)} verified by size only" if size_only else "")
          + f"); {len(refused)} refused; {len(p.missing)} missing")
    ok = [cache.path(o) for o in p.objects if o.key not in {r.obj.key for r in refused}
          and o.key.endswith(".lz4") and not o.key.startswith(("asset_ctxs/", "node_trades/"))]
    if ok:
        print("replay it: adlmon replay " + " ".join(shlex.quote(str(x)) for x in sorted(ok, key=_file_order)))
    return 1 if refused else 0

