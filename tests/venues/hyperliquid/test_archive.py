"""``adlmon fetch hyperliquid`` against a real S3 API on 127.0.0.1 (moto server + recording proxy).

The bucket is laid out like ``hl-mainnet-node-data``: a simulated cascade's
node files split into hourly ``.lz4`` objects. The proxy sees every request as
S3 would and plays the faults (dropped connection, corrupted or padded body).
"""

from __future__ import annotations

import hashlib
import os
import shlex
from pathlib import Path

import orjson
import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto.server")

from adlmon import cli  # noqa: E402
from adlmon.io.archive import read_lines  # noqa: E402
from adlmon.sim import simulate  # noqa: E402
from adlmon.venues.hyperliquid import archive  # noqa: E402
from tests.net.s3_fake import FAKE_SECRET, FAKE_KEY, MotoS3, RecordingProxy  # noqa: E402

FILLS_KEY = "node_fills_by_block/hourly/20251010/21.lz4"
MISC_KEY = "misc_events/hourly/20251010/21.lz4"
MULTI_KEY = "node_fills_by_block/hourly/20251011/0.lz4"
CTX_KEY = "asset_ctxs/20251010.csv.lz4"
HOUR = ["--from", "2025-10-10T21", "--to", "2025-10-10T22"]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("sim"), accounts=300, seed=3)


@pytest.fixture(scope="module")
def layout(sim, tmp_path_factory) -> Path:
    """The sim's files as the bucket holds them: <layout>/hourly/YYYYMMDD/H.lz4."""
    root = tmp_path_factory.mktemp("bucket")
    archive.write_hourly(read_lines(sim.fills_path), root, "node_fills_by_block")
    archive.write_hourly(read_lines(sim.misc_path), root, "misc_events")
    return root


@pytest.fixture(scope="module")
def s3(layout):
    with MotoS3() as server:
        c = server.client()
        c.create_bucket(Bucket=archive.NODE_BUCKET)
        c.put_bucket_request_payment(Bucket=archive.NODE_BUCKET,
                                     RequestPaymentConfiguration={"Payer": "Requester"})
        for p in sorted(layout.rglob("*.lz4")):
            c.upload_file(str(p), archive.NODE_BUCKET, p.relative_to(layout).as_posix())
        # A multipart object (5 MiB parts, 3 parts): its ETag is not an MD5.
        from boto3.s3.transfer import TransferConfig

        big = layout.parent / "multipart.bin"
        big.write_bytes(os.urandom(11 << 20))
        c.upload_file(str(big), archive.NODE_BUCKET, MULTI_KEY,
                      Config=TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
        c.create_bucket(Bucket=archive.MARKET_BUCKET)
        c.put_object(Bucket=archive.MARKET_BUCKET, Key=CTX_KEY, Body=b"time,coin,mark_px\n")
        server.objects = {o["Key"]: o for b in (archive.NODE_BUCKET, archive.MARKET_BUCKET)
                          for o in c.list_objects_v2(Bucket=b)["Contents"]}
        server.big = big.read_bytes()
        yield server


@pytest.fixture
def proxy(s3, monkeypatch, tmp_path):
    with RecordingProxy(s3.url) as px:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", px.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never reach for an instance role
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "home" / "no-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "home" / "no-credentials"))
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            monkeypatch.delenv(var, raising=False)
        yield px


def fetch(tmp_path: Path, *extra: str, span=HOUR) -> int:
    return cli.main(["fetch", "hyperliquid", *span, "--dir", str(tmp_path / "cache"), "--yes", *extra])


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def waves_of(report_path: Path) -> list[dict]:
    return orjson.loads(report_path.read_bytes())["waves"]


def test_fetch_then_replay_gives_the_waves_of_the_local_files(proxy, layout, sim, tmp_path, capsys):
    assert fetch(tmp_path) == 0
    out = capsys.readouterr()
    cache = tmp_path / "cache"
    for key in (FILLS_KEY, MISC_KEY):
        assert (cache / key).read_bytes() == (layout / key).read_bytes()
    fetched = [str(p) for p in archive.local_files(cache)]
    assert sorted(fetched) == [str(cache / MISC_KEY), str(cache / FILLS_KEY)]
    (command,) = [line for line in out.out.splitlines() if line.startswith("replay it: ")]
    assert shlex.split(command.removeprefix("replay it: adlmon replay ")) == fetched

    snaps = [str(sim.account_snapshot_path), str(sim.positions_snapshot_path)]
    assert cli.main(["replay", *fetched, *snaps, "--report", str(tmp_path / "a.json"), "--quiet"]) == 0
    local = [str(sim.fills_path), str(sim.misc_path)]
    assert cli.main(["replay", *local, *snaps, "--report", str(tmp_path / "b.json"), "--quiet"]) == 0
    a, b = waves_of(tmp_path / "a.json"), waves_of(tmp_path / "b.json")
    assert len(a) == len(sim.waves) >= 1
    assert a == b

    # requester pays on every request the server saw; no credential in any output
    assert {r["method"] for r in proxy.requests} >= {"GET"}
    assert all(r["headers"].get("x-amz-request-payer") == "requester" for r in proxy.requests)
    assert sum(1 for r in proxy.requests if r["query"].startswith("list-type")) >= 2
    assert FAKE_SECRET not in out.out + out.err and FAKE_KEY not in out.out + out.err
    assert "2 objects" in out.out and "requester-pays estimate $" in out.out


def test_interrupted_download_resumes_without_refetching_what_it_has(proxy, s3, tmp_path, capsys):
    size = s3.objects[FILLS_KEY]["Size"]
    proxy.faults[FILLS_KEY] = [("cut", 100_000), ("cut", 50_000)]
    assert fetch(tmp_path) == 0
    out = capsys.readouterr().out
    assert proxy.served[FILLS_KEY] == size  # every byte served exactly once
    assert proxy.gets[FILLS_KEY] == 3
    ranges = [r["headers"].get("Range") for r in proxy.requests
              if r["method"] == "GET" and RecordingProxy.key_of(r["path"]) == FILLS_KEY]
    assert ranges == [None, "bytes=100000-", "bytes=150000-"]
    body = (tmp_path / "cache" / FILLS_KEY).read_bytes()
    assert md5(body) == s3.objects[FILLS_KEY]["ETag"].strip('"')
    assert "connection lost after 100,000 bytes" in out and "2 resumed" in out


@pytest.mark.parametrize("fault", [("corrupt",), ("pad", 17)], ids=["etag_mismatch", "size_mismatch"])
def test_corrupted_object_is_refused_and_fetched_again(proxy, s3, tmp_path, capsys, fault):
    size = s3.objects[MISC_KEY]["Size"]
    proxy.faults[MISC_KEY] = [fault]
    assert fetch(tmp_path) == 0
    out = capsys.readouterr().out
    assert proxy.gets[MISC_KEY] == 2
    assert proxy.served[MISC_KEY] == 2 * size + (fault[1] if fault[0] == "pad" else 0)
    assert md5((tmp_path / "cache" / MISC_KEY).read_bytes()) == s3.objects[MISC_KEY]["ETag"].strip('"')
    assert "refused:" in out and "1 re-fetched" in out
    assert not list((tmp_path / "cache" / archive.STATE_DIR / "partial").rglob("*.part"))


def test_an_object_that_never_verifies_is_refused_and_not_placed(proxy, tmp_path, capsys):
    proxy.faults[MISC_KEY] = [("corrupt",)] * 3
    assert fetch(tmp_path) == 1
    out = capsys.readouterr().out
    assert proxy.gets[MISC_KEY] == 3
    assert not (tmp_path / "cache" / MISC_KEY).exists()
    assert (tmp_path / "cache" / FILLS_KEY).exists()  # the other object is kept
    assert "refused after 3 downloads" in out and "1 refused" in out


def test_missing_hours_are_reported_not_fatal(proxy, tmp_path, capsys):
    assert fetch(tmp_path, span=["--from", "2025-10-10T20", "--to", "2025-10-10T22:30"]) == 0
    out = capsys.readouterr().out
    for stream in ("fills", "misc"):
        for h in (20, 22):
            assert f"missing: {stream} 20251010/{h}: no s3://{archive.NODE_BUCKET}/" in out
    assert "missing: fills 20251010/21" not in out
    assert (tmp_path / "cache" / FILLS_KEY).exists() and (tmp_path / "cache" / MISC_KEY).exists()
    assert "4 missing" in out


def test_nothing_in_range_is_an_error(proxy, tmp_path, capsys):
    assert fetch(tmp_path, span=["--from", "2024-01-01T00", "--to", "2024-01-01T02"]) == 1
    assert "nothing to fetch" in capsys.readouterr().err


def test_no_credentials_is_a_clear_error_naming_the_chain(proxy, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert fetch(tmp_path) == 2
    err = capsys.readouterr().err
    assert "no AWS credentials: tried, in order, env" in err
    for provider in ("shared-credentials-file", "config-file", "container-role", "iam-role"):
        assert provider in err
    assert proxy.requests == []  # nothing was sent unsigned


def test_cached_objects_are_not_downloaded_again_and_a_tampered_one_is(proxy, s3, tmp_path, capsys):
    assert fetch(tmp_path) == 0
    first = sum(proxy.served.values())
    assert fetch(tmp_path) == 0
    assert sum(proxy.served.values()) == first and sum(proxy.gets.values()) == 2  # listing only after
    # same size, other bytes, manifest gone: verified again, refused, fetched
    p = tmp_path / "cache" / MISC_KEY
    p.write_bytes(b"\0" * p.stat().st_size)
    (tmp_path / "cache" / archive.STATE_DIR / archive.MANIFEST).unlink()
    assert fetch(tmp_path) == 0
    assert proxy.gets[MISC_KEY] == 2 and proxy.gets[FILLS_KEY] == 1
    assert md5(p.read_bytes()) == s3.objects[MISC_KEY]["ETag"].strip('"')
    capsys.readouterr()


def test_multipart_etag_is_checked_from_its_parts(proxy, s3, tmp_path, capsys):
    etag = s3.objects[MULTI_KEY]["ETag"].strip('"')
    assert etag.endswith("-3")
    span = ["--from", "2025-10-11T00", "--to", "2025-10-11T01", "--streams", "fills"]
    assert fetch(tmp_path, span=span) == 0
    manifest = orjson.loads((tmp_path / "cache" / archive.STATE_DIR / archive.MANIFEST).read_bytes())
    assert manifest[MULTI_KEY]["verified"] == "multipart_md5"
    assert (tmp_path / "cache" / MULTI_KEY).read_bytes() == s3.big
    proxy.faults[MULTI_KEY] = [("corrupt",)]
    assert fetch(tmp_path / "again", span=span) == 0
    assert proxy.gets[MULTI_KEY] == 3  # one clean fetch above, one corrupt + one clean here
    assert "refused: multipart ETag differs" in capsys.readouterr().out
    heads = [r for r in proxy.requests if r["method"] == "HEAD"]
    assert heads and all(r["query"] == "partNumber=1" for r in heads)
    assert all(r["headers"].get("x-amz-request-payer") == "requester" for r in proxy.requests)


def test_asset_ctxs_come_from_the_market_bucket(proxy, tmp_path, capsys):
    assert fetch(tmp_path, "--streams", "asset_ctxs") == 0
    assert (tmp_path / "cache" / CTX_KEY).read_bytes() == b"time,coin,mark_px\n"
    assert "1 objects" in capsys.readouterr().out


def test_confirmation_is_required_without_yes(proxy, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", open(os.devnull))
    rc = cli.main(["fetch", "hyperliquid", *HOUR, "--dir", str(tmp_path / "cache")])
    assert rc == 2 and "pass --yes" in capsys.readouterr().err
    assert sum(proxy.gets.values()) == 0


def test_bad_arguments_are_refused(tmp_path, capsys):
    assert cli.main(["fetch", "hyperliquid", "--from", "yesterday", "--to", "2025-10-10T22"]) == 2
    assert cli.main(["fetch", "hyperliquid", *HOUR, "--streams", "fills,books"]) == 2
    assert cli.main(["fetch", "hyperliquid", "--from", "2025-10-10T22", "--to", "2025-10-10T21"]) == 2
    err = capsys.readouterr().err
    assert "not a UTC time" in err and "unknown books" in err and "must be after" in err


def test_hours_cover_the_range_end_exclusive():
    t = archive.parse_time
    assert [h.hour for h in archive.hours(t("2025-10-10T21"), t("2025-10-10T22"))] == [21]
    assert [h.hour for h in archive.hours(t("2025-10-10T21:15"), t("2025-10-10T22:01"))] == [21, 22]
    assert archive.hourly_key("node_fills", t("2025-07-01T03")) == "node_fills/hourly/20250701/3.lz4"


async def test_decompressed_cache_is_a_node_data_dir_for_the_tailer(proxy, layout, sim, tmp_path, capsys):
    from adlmon.events import Fill
    from adlmon.venues.hyperliquid.node import NodeTailer

    assert fetch(tmp_path, "--decompress") == 0
    cache = tmp_path / "cache"
    plain = cache / FILLS_KEY.removesuffix(".lz4")
    assert plain.read_bytes() == sim.fills_path.read_bytes()
    assert (cache / MISC_KEY.removesuffix(".lz4")).read_bytes() == sim.misc_path.read_bytes()
    events = []

    async def sink(evs):
        events.extend(evs)

    t = NodeTailer(cache, sink, rotate_after_s=0.0)
    t.start()
    for _ in range(20):  # bounded: reads 8 MiB per stream per poll
        await t.poll()
    assert sum(1 for e in events if isinstance(e, Fill)) == sim.fills
    assert t.parse_errors == {}
    # a second run neither downloads nor decompresses again
    mtime = plain.stat().st_mtime_ns
    assert fetch(tmp_path, "--decompress") == 0
    assert plain.stat().st_mtime_ns == mtime and sum(proxy.gets.values()) == 2
    capsys.readouterr()


def test_cost_estimate_is_transfer_plus_gets_at_the_stated_prices():
    assert archive.USD_PER_GB == 0.09 and archive.USD_PER_1000_GETS == 0.0004
    assert archive.cost_usd(2_000_000_000, 1000) == pytest.approx(2 * 0.09 + 0.0004)
    assert archive.cost_usd(10**9, 0, usd_per_gb=0.114) == pytest.approx(0.114)


def test_the_secret_key_is_in_no_log_even_at_debug(proxy, tmp_path, capsys, caplog):
    import logging

    with caplog.at_level(logging.DEBUG):
        assert fetch(tmp_path) == 0
    out = capsys.readouterr()
    assert any(r.name.startswith("botocore") for r in caplog.records)  # it did log at debug
    assert FAKE_SECRET not in caplog.text + out.out + out.err


def test_a_partial_file_left_by_an_earlier_run_is_resumed(proxy, s3, layout, tmp_path, capsys):
    # a fetch killed mid-object leaves .adlmon-fetch/partial/<key>.part: the next run asks
    # only for the rest
    body = (layout / FILLS_KEY).read_bytes()
    part = tmp_path / "cache" / archive.STATE_DIR / "partial" / (FILLS_KEY + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(body[:300_000])
    assert fetch(tmp_path) == 0
    assert proxy.served[FILLS_KEY] == len(body) - 300_000
    ranges = [r["headers"].get("Range") for r in proxy.requests
              if r["method"] == "GET" and RecordingProxy.key_of(r["path"]) == FILLS_KEY]
    assert ranges == ["bytes=300000-"]
    assert (tmp_path / "cache" / FILLS_KEY).read_bytes() == body and not part.exists()
    assert "1 resumed" in capsys.readouterr().out
