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
