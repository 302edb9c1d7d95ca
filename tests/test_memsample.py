"""gorun/memsample.py on real processes and real tmpfs files: what it counts (private resident
memory of the processes, allocated tmpfs blocks of the segments), its peak and final, vanished
processes, and (where a memory cgroup can be made) that it moves with the container's charge."""

from __future__ import annotations

import contextlib
import mmap
import os
import signal
import time

import pytest
from conftest import BUILD, fork_child, shm_test_file, wait_child
from test_container import container_skip_reason

from gorun import container
from gorun.memsample import MemorySampler

MiB = 1 << 20
PAGE = mmap.PAGESIZE


@contextlib.contextmanager
def shm_file(size: int = 0):
    """A sparse /dev/shm file of this test, its fd (conftest.shm_test_file)."""
    with shm_test_file("memsample", size) as (_, fd):
        yield fd


class Child:
    """A forked child driven through a pipe: each command byte runs one step, and the child
    answers one byte when the step is done. Steps: 'a' allocate and write 64 MiB of private
    memory, 'f' free it, 'q' quit. Killed and reaped on leaving."""

    def __init__(self, before=None):
        self.cmd_r, self.cmd_w = os.pipe()
        self.ack_r, self.ack_w = os.pipe()
        self.pid, _ = fork_child(self._main, before)
        os.close(self.cmd_r)
        os.close(self.ack_w)
        self.wait_ack()

    def _main(self, before) -> int:
        os.close(self.cmd_w)
        os.close(self.ack_r)
        if before is not None:
            before()
        held = []
        os.write(self.ack_w, b"r")
        while True:
            c = os.read(self.cmd_r, 1)
            if c == b"a":
                held.append(bytearray(b"\x01") * (64 * MiB))  # written: resident, private
            elif c == b"f":
                held.clear()
            else:
                return 0
            os.write(self.ack_w, c)

    def wait_ack(self) -> None:
        assert os.read(self.ack_r, 1), "the child died"

    def do(self, c: bytes) -> None:
        os.write(self.cmd_w, c)
        self.wait_ack()

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            wait_child(self.pid)
        for fd in (self.cmd_w, self.ack_r):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_shared_bytes_tracks_allocated_tmpfs_blocks():
    with shm_file(256 * MiB) as fd, shm_file(64 * MiB) as fd2:
        s = MemorySampler(segment_fds=[fd, fd2])
        try:
            assert s.sample()["shared_bytes"] == 0  # sparse: nothing allocated yet
            os.posix_fallocate(fd, 0, 8 * MiB)
            assert s.sample()["shared_bytes"] == 8 * MiB
            m = mmap.mmap(fd, 256 * MiB)
            for off in range(128 * MiB, 132 * MiB, PAGE):  # first touch of 4 MiB more
                m[off] = 1
            for off in range(0, 8 * MiB, PAGE):  # fallocated pages touched: not counted twice
                m[off] = 1
            assert s.sample()["shared_bytes"] == 12 * MiB
            os.posix_fallocate(fd2, 0, 2 * MiB)
            smp = s.sample()
            assert smp["shared_bytes"] == 14 * MiB
            assert smp["total_bytes"] == smp["private_bytes"] + smp["shared_bytes"]
            assert smp["container_bytes"] is None
            m.close()
        finally:
            s.close()


def test_segment_fds_are_the_samplers_own():
    with shm_file(16 * MiB) as fd:
        os.posix_fallocate(fd, 0, 4 * MiB)
        dup = os.dup(fd)
        s = MemorySampler(segment_fds=[dup])
        os.close(dup)  # the caller closes its fd: the sampler still counts the segment
        other = os.open("/dev/null", os.O_RDONLY)  # likely the number just freed
        try:
            assert s.sample()["shared_bytes"] == 4 * MiB
            s.close()
            assert s.sample()["shared_bytes"] == 0
        finally:
            os.close(other)
            s.close()


# Under ASan (make sanitize) every process carries shadow memory and a quarantine that rise and
# fall on their own: private resident memory no longer tracks what the test allocates.
not_under_asan = pytest.mark.skipif(BUILD["sanitize"] == 1, reason="ASan's shadow memory distorts private RSS")


@not_under_asan
def test_private_bytes_rises_when_a_child_writes_private_memory():
    with Child() as ch:
        s = MemorySampler()
        s.add_pid(ch.pid)
        try:
            base = s.sample()["private_bytes"]
            assert base > 0
            ch.do(b"a")
            grown = s.sample()["private_bytes"]
            assert grown - base >= 60 * MiB, (base, grown)
            ch.do(b"f")
            assert s.sample()["private_bytes"] - base < 8 * MiB  # freed: munmapped
        finally:
            s.close()


def test_shared_segment_pages_are_not_private():
    """Segment pages a child maps and touches are in shared_bytes once, not in its private_bytes."""

    def map_and_touch(fd, keep):
        keep.append(mmap.mmap(fd, 32 * MiB))
        for off in range(0, 32 * MiB, PAGE):
            keep[0][off] = 1

    keep = []  # the child's copy holds its mapping while it runs
    with shm_file(32 * MiB) as fd:
        with Child() as plain, Child(before=lambda: map_and_touch(fd, keep)) as mapper:
            s = MemorySampler(segment_fds=[fd])
            try:
                s.add_pid(plain.pid)
                p0 = s.sample()["private_bytes"]
                s.remove_pid(plain.pid)
                s.add_pid(mapper.pid)
                smp = s.sample()
                assert smp["shared_bytes"] == 32 * MiB
                assert abs(smp["private_bytes"] - p0) < 8 * MiB, (p0, smp)
            finally:
                s.close()


@not_under_asan
def test_peak_is_at_least_final_and_the_thread_samples():
    with Child() as ch:
        s = MemorySampler(interval=0.002)
        s.add_pid(ch.pid)
        t0 = time.monotonic_ns()
        s.start()
        try:
            time.sleep(0.05)
            ch.do(b"a")
            time.sleep(0.05)
            during = s.peak_bytes  # read from this (the main) thread while it runs
            ch.do(b"f")
            time.sleep(0.05)
        finally:
            summary = s.stop()
        assert summary["samples"] >= 20, summary
        assert summary["interval_s"] == 0.002
        assert summary["peak_bytes"] >= summary["final_bytes"]
        assert summary["peak_bytes"] >= during >= 64 * MiB
        assert summary["peak_bytes"] - summary["final_bytes"] >= 56 * MiB  # freed before the stop
        assert t0 < summary["peak_t_ns"] <= summary["last"]["t_ns"]
        assert summary["last"]["total_bytes"] == summary["final_bytes"]
        assert summary["container_peak_bytes"] is None
        assert set(summary) == {
            "peak_bytes",
            "peak_t_ns",
            "final_bytes",
            "samples",
            "interval_s",
            "container_peak_bytes",
            "last",
        }
        assert set(summary["last"]) == {"t_ns", "private_bytes", "shared_bytes", "total_bytes", "container_bytes"}


@pytest.mark.parametrize("use_psutil", [False, True])
@pytest.mark.parametrize("how", ["reaped", "zombie"])
def test_a_vanished_pid_counts_zero_and_is_dropped(use_psutil, how):
    with Child() as keep, Child() as goes:
        s = MemorySampler(use_psutil=use_psutil)
        try:
            s.add_pid(keep.pid)
            s.add_pid(goes.pid)
            both = s.sample()["private_bytes"]
            assert s.pids == sorted([keep.pid, goes.pid])
            os.kill(goes.pid, signal.SIGKILL)
            if how == "reaped":
                os.waitpid(goes.pid, 0)
            else:  # dead but not reaped yet
                deadline = time.monotonic() + 10
                while open(f"/proc/{goes.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
            one = s.sample()["private_bytes"]
            assert s.pids == [keep.pid]
            assert 0 < one < both
            s.add_pid(goes.pid if how == "reaped" else 2**22 + 1)  # gone before it is added: ignored
            s.sample()
            assert s.pids == [keep.pid]
        finally:
            s.close()


def test_remove_pid():
    with Child() as ch:
        s = MemorySampler()
        s.add_pid(ch.pid)
        assert s.sample()["private_bytes"] > 0
        s.remove_pid(ch.pid)
        s.remove_pid(ch.pid)  # twice: nothing
        assert s.sample()["private_bytes"] == 0
        s.close()


_REASON = container_skip_reason()


@pytest.mark.skipif(_REASON is not None, reason=f"no memory cgroup here: {_REASON}")
def test_it_moves_with_the_containers_charge():
    """A child that joins the container, then touches segment pages and private memory: the
    sampler's total rises by what the container's usage rises by (its anonymous pages shared with
    the parent since the fork are private to it in /proc but charged to the parent's cgroup, so
    the totals are compared as increments)."""
    with container.Container(256 * MiB) as c, shm_file(64 * MiB) as fd:
        with Child(before=c.join) as ch:
            s = MemorySampler(segment_fds=[fd], container=c)
            s.add_pid(ch.pid)
            try:
                a = s.sample()
                ch.do(b"a")
                with c.entered():
                    os.posix_fallocate(fd, 0, 32 * MiB)
                b = s.sample()
                d_total = b["total_bytes"] - a["total_bytes"]
                d_container = b["container_bytes"] - a["container_bytes"]
                assert d_total >= 96 * MiB - MiB
                assert abs(d_total - d_container) < 4 * MiB, (d_total, d_container)
                summary = s.stop()
                assert summary["container_peak_bytes"] >= b["container_bytes"]
            finally:
                s.close()
