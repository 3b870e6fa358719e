"""The wavelog sink (issue 9, "Sinks"): a write error is counted, retried and shown in
readiness; the reports wait in a bounded queue and are written, in order and whole, once
the disk takes them again."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import orjson
from hypothesis import given, settings, strategies as st

from adlmon.metrics import Metrics
from adlmon.net.backoff import Backoff
from adlmon.wavelog import Wavelog


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class FullDisk:
    """os.write that fails with ENOSPC while ``full`` (optionally after a short write)."""

    def __init__(self, short_first: int = 0):
        self.full = False
        self.short_first = short_first  # bytes a first failing write still takes

    def __call__(self, fd, data):
        if self.full:
            if self.short_first:
                n, self.short_first = self.short_first, 0
                return os.write(fd, data[:n])
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)


def reports(n, start=0):
    return [{"wave_id": i, "needed_usd": 1.5 * i, "note": "x" * 50} for i in range(start, start + n)]


def lines(path):
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def sample(metrics, name):
    return metrics.registry.get_sample_value(name, {"sink": "wavelog"}) or 0.0


def test_a_full_disk_is_counted_shown_in_readiness_and_nothing_is_lost_when_it_recovers(tmp_path):
    metrics = Metrics(process_collectors=False)
    disk = FullDisk(short_first=17)  # the first failing write tears a line in the middle
    clock = Clock()
    wl = Wavelog(tmp_path / "w.jsonl", metrics, backoff=Backoff(1.0, 1.0), clock=clock,
                 os_write=disk)
    wl.open()
    for r in reports(3):
        assert wl.write(r)
    disk.full = True
    for r in reports(4, 3):
        assert not wl.write(r)
    assert wl.pending == 4
    assert wl.problems() and "No space left on device" in wl.problems()[0]
    assert sample(metrics, "adlmon_sink_write_errors_total") >= 1
    assert sample(metrics, "adlmon_sink_pending_records") == 4
    assert not wl.retry()  # still full: another counted error
    clock.t += 2.0
    assert not wl.retry()
    errors = sample(metrics, "adlmon_sink_write_errors_total")
    assert errors == wl.errors >= 2
    disk.full = False
    assert not wl.retry()  # the backoff has not elapsed: no attempt
    clock.t += 2.0
    assert wl.retry()
    assert wl.problems() == [] and wl.pending == 0
    assert lines(tmp_path / "w.jsonl") == reports(7)  # whole lines, in order, none lost
    assert sample(metrics, "adlmon_sink_pending_records") == 0
    assert wl.close()


def test_the_queue_is_bounded_and_drops_are_counted(tmp_path):
    metrics = Metrics(process_collectors=False)
    disk = FullDisk()
    clock = Clock()
    wl = Wavelog(tmp_path / "w.jsonl", metrics, max_pending=3, backoff=Backoff(1.0, 1.0),
                 clock=clock, os_write=disk)
    disk.full = True
    for r in reports(5):
        wl.write(r)
    assert wl.pending == 3 and wl.dropped == 2
    assert sample(metrics, "adlmon_sink_dropped_records_total") == 2
    disk.full = False
    clock.t += 2.0
    assert wl.retry()
    assert lines(tmp_path / "w.jsonl") == reports(3, 2)  # the newest kept


def test_a_real_file_size_limit_efbig_is_survived_and_written_after_the_limit_is_lifted(tmp_path):
    """RLIMIT_FSIZE in a child process: the kernel refuses writes past the limit (EFBIG),
    as a full filesystem would; the child raises the limit back and retries."""
    path = tmp_path / "w.jsonl"
    code = textwrap.dedent(f"""
        import resource, sys, orjson
        from adlmon.wavelog import Wavelog
        from adlmon.net.backoff import Backoff
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        t = [0.0]
        wl = Wavelog({str(path)!r}, backoff=Backoff(1.0, 1.0), clock=lambda: t[0])
        wl.open()
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
        written_ok = [wl.write({{"wave_id": i, "pad": "y" * 100}}) for i in range(40)]
        failed_at = written_ok.index(False)
        assert wl.problems(), "no readiness reason"
        errors = wl.errors
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        t[0] += 5.0
        assert wl.retry() and wl.problems() == []
        wl.close()
        print(orjson.dumps({{"failed_at": failed_at, "errors": errors}}).decode())
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = orjson.loads(out.stdout.strip().splitlines()[-1])
    assert 0 < result["failed_at"] < 40 and result["errors"] >= 1
    got = lines(path)
    assert [r["wave_id"] for r in got] == list(range(40))


# --- once and whole (issue 12) -------------------------------------------------------

def _open(path, metrics=None) -> Wavelog:
    log = Wavelog(path, metrics)
    log.open()
    return log


def _report(wid: int, venue: str = "hyperliquid") -> dict:
    return {"venue": venue, "wave_id": wid, "needed_usd": 1.5 * wid, "fills": list(range(wid))}


def _ids(path) -> list[tuple[str, int]]:
    return [(o["venue"], o["wave_id"]) for o in map(orjson.loads, path.read_bytes().splitlines())]


def test_a_wave_already_in_the_file_is_not_written_again_after_a_restart(tmp_path):
    path = tmp_path / "w.jsonl"
    log = _open(path)
    assert log.write(_report(1)) and log.write(_report(2))
    log.close()
    metrics = Metrics(process_collectors=False)
    log = _open(path, metrics)
    assert log.last_wave_id("hyperliquid") == 2
    log.write(_report(2))  # re-reported after the restart
    assert log.duplicates == 1
    assert log.write(_report(2, venue="bybit"))  # another venue's wave 2 is another wave
    assert log.write(_report(3))
    log.close()
    assert _ids(path) == [("hyperliquid", 1), ("hyperliquid", 2), ("bybit", 2), ("hyperliquid", 3)]
    assert 'adlmon_wavelog_repairs_total{kind="duplicate_wave"} 1.0' in metrics.exposition().decode()


@settings(max_examples=60, deadline=None)
@given(cut=st.integers(1, 400), n=st.integers(1, 4))
def test_a_partial_last_line_is_cut_on_open_and_its_wave_written_whole(tmp_path_factory, cut, n):
    path = tmp_path_factory.mktemp("wl") / "w.jsonl"
    lines = [orjson.dumps(_report(i)) + b"\n" for i in range(1, n + 1)]
    whole = b"".join(lines)
    cut = min(cut, len(lines[-1]) - 1)  # a kill -9 inside the last write
    path.write_bytes(whole[:len(whole) - cut])
    metrics = Metrics(process_collectors=False)
    log = _open(path, metrics)
    assert 'adlmon_wavelog_repairs_total{kind="truncated_tail"} 1.0' in metrics.exposition().decode()
    assert log.last_wave_id("hyperliquid") == n - 1
    assert log.write(_report(n))
    log.close()
    assert path.read_bytes() == whole


def test_a_complete_file_is_left_alone(tmp_path):
    path = tmp_path / "w.jsonl"
    data = orjson.dumps(_report(1)) + b"\n"
    path.write_bytes(data)
    log = _open(path)
    log.close()
    assert log.cut_bytes == 0 and path.read_bytes() == data


def test_lines_waiting_for_a_failing_disk_are_carried_over_a_restart_whole_and_once(tmp_path):
    path = tmp_path / "w.jsonl"
    disk = FullDisk(short_first=7)
    log = Wavelog(path, os_write=disk, clock=Clock())
    log.open()
    assert log.write(_report(1))
    disk.full = True
    assert not log.write(_report(2))  # 7 bytes of it reach the file, the rest waits
    waiting = log.pending_lines()
    assert [orjson.loads(x)["wave_id"] for x in waiting] == [2]
    # kill -9 here; the restarted daemon opens the file and requeues from its snapshot
    again = _open(path)
    assert again.cut_bytes == 7 and again.requeue(waiting) == 1
    again.close()
    assert _ids(path) == [("hyperliquid", 1), ("hyperliquid", 2)]
