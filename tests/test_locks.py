"""The cross-process runtime locks, each kind, with real forked processes over a real heap:
exact counting under the lock, statistics that add up, recovery from a holder killed with
SIGKILL (robust pthread mutex) or detection of it (futex, sem), and the lock-rank check."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import gorun
from gorun import _gorun

from conftest import LOCK_KINDS, MHEAP_LOCK, fork_child, read_all, wait_child

N = 1_000_000
MCENTRAL = 10  # mcentral lock of span class 10
TYPETAB_LOCK = -2


def _exited_ok(status: int, text: str = "") -> None:
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status:#x}: {text}"


def _hammer_n(p: int, which: int, go_fd: int, n: int) -> None:
    _gorun.set_p(p)  # what a worker does first: this process is P p
    assert os.read(go_fd, 1) == b"g"  # start both hammers at once so they contend
    _gorun.lock_hammer(which, n)


def _hammer(p: int, which: int, go_fd: int) -> None:
    _hammer_n(p, which, go_fd, N)


@pytest.mark.parametrize("which", [MHEAP_LOCK, MCENTRAL], ids=["mheap", "mcentral"])
@pytest.mark.parametrize("heap", LOCK_KINDS, indirect=True)
def test_two_processes_count_exactly_and_stats_add_up(heap, which):
    assert _gorun.test_counter() == 0
    s0 = _gorun.lock_stats(which)
    assert s0["kind"] == heap.lock
    assert s0["name"] == ("mheap" if which == MHEAP_LOCK else f"mcentral[{which}]")
    assert s0["acquisitions"] == 0 and s0["contended"] == 0 and s0["hold_ns_total"] == 0
    r, w = os.pipe()
    pids = [fork_child(_hammer, i, which, r)[0] for i in range(2)]
    os.close(r)
    os.write(w, b"gg")
    os.close(w)
    for pid in pids:
        _exited_ok(wait_child(pid, timeout=120))
    assert _gorun.test_counter() == 2 * N, "every increment happened under the lock"
    s = _gorun.lock_stats(which)  # read from a third process
    assert s["acquisitions"] == 2 * N
    assert 0 <= s["contended"] <= s["acquisitions"]
    assert s["wait_ns_max"] <= s["wait_ns_total"]
    assert sum(s["wait_hist"]) == s["contended"], "every contended acquisition is in the histogram"
    assert len(s["wait_hist"]) == 32
    if s["contended"]:
        top = max(i for i, c in enumerate(s["wait_hist"]) if c)
        assert s["wait_ns_max"] >= (2**top if top else 0), "the longest wait is in the top bucket"
        assert s["wait_ns_max"] < 2 ** (top + 1) or top == 31
    else:
        assert s["wait_ns_total"] == 0 and s["wait_ns_max"] == 0
    assert s["hold_ns_total"] > 0
    assert s["recovered"] == 0
    # the other locks were not touched
    other = MCENTRAL if which == MHEAP_LOCK else MHEAP_LOCK
    assert _gorun.lock_stats(other)["acquisitions"] == 0
    assert _gorun.lock_stats(TYPETAB_LOCK)["acquisitions"] == 0


def _hold_and_die(p: int, which: int) -> None:
    _gorun.set_p(p)
    _gorun.lock_acquire(which)
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_holder(which: int) -> None:
    pid, _ = fork_child(_hold_and_die, 0, which)
    status = wait_child(pid, timeout=30)  # reaped: the holder is really gone
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert _gorun.lock_stats(which)["acquisitions"] == 1


def _lock_unlock_reporting(p: int, which: int) -> int:
    if p is not None:
        _gorun.set_p(p)
    try:
        _gorun.lock_acquire(which)
    except gorun.GorunError as e:
        os.write(2, f"GorunError: {e}\n".encode())
        return 7
    _gorun.lock_release(which)
    return 0


def _in_thread(fn, timeout: float):
    """fn() in a helper thread of this process, with a hang guard. (Lock ranks are tracked per
    thread, so a lock must be acquired and released in the same thread.)"""
    box = {}

    def run():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            box["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        pytest.fail(f"did not finish within {timeout:.0f}s (hang)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.mark.parametrize("recoverer", ["parent", "child"])
@pytest.mark.parametrize("which", [MHEAP_LOCK, MCENTRAL], ids=["mheap", "mcentral"])
@pytest.mark.parametrize("heap", ["pthread"], indirect=True)
def test_robust_pthread_mutex_recovers_from_killed_holder(heap, which, recoverer, capfd):
    _kill_holder(which)
    if recoverer == "parent":  # this process takes the lock next
        capfd.readouterr()
        _in_thread(lambda: (_gorun.lock_acquire(which), _gorun.lock_release(which)), timeout=30)
        text = capfd.readouterr().err
    else:  # another process takes it
        pid, err = fork_child(_lock_unlock_reporting, 1, which, capture_stderr=True)
        text = read_all(err, timeout=30)
        _exited_ok(wait_child(pid, timeout=30), text)
    assert "holder died" in text and "recovered" in text, f"the recovery is reported: {text!r}"
    s = _gorun.lock_stats(which)
    assert s["recovered"] == 1
    assert s["acquisitions"] == 2
    # the mutex is consistent again: it locks and unlocks normally, with no second recovery
    _in_thread(lambda: (_gorun.lock_acquire(which), _gorun.lock_release(which)), timeout=30)
    s = _gorun.lock_stats(which)
    assert s["recovered"] == 1 and s["acquisitions"] == 3
    # and two processes still count exactly under it
    r, w = os.pipe()
    pids = [fork_child(_hammer_n, i, which, r, 20_000)[0] for i in range(2)]
    os.close(r)
    os.write(w, b"gg")
    os.close(w)
    for pid in pids:
        _exited_ok(wait_child(pid, timeout=60))
    assert _gorun.test_counter() == 40_000
    assert _gorun.lock_stats(which)["recovered"] == 1


@pytest.mark.parametrize("heap", ["futex", "sem"], indirect=True)
def test_dead_holder_makes_acquire_fail_not_hang(heap):
    _kill_holder(MCENTRAL)
    pid, err = fork_child(_lock_unlock_reporting, 1, MCENTRAL, capture_stderr=True)
    text = read_all(err, timeout=20)
    status = wait_child(pid, timeout=20)  # the waiter polls the holder every 100 ms
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7, text
    assert "holder died" in text and "mcentral[10]" in text
    assert _gorun.lock_stats(MCENTRAL)["acquisitions"] == 1, "a failed acquire is not counted"


@pytest.mark.parametrize("heap", ["futex"], indirect=True)
def test_dead_holder_detected_when_holder_never_became_a_p(heap):
    pid, _ = fork_child(lambda: (_gorun.lock_acquire(MCENTRAL), os.kill(os.getpid(), signal.SIGKILL)))
    status = wait_child(pid, timeout=30)
    assert os.WIFSIGNALED(status)
    pid, err = fork_child(_lock_unlock_reporting, 1, MCENTRAL, capture_stderr=True)
    status = wait_child(pid, timeout=3)  # detection takes ~0.1 s
    text = read_all(err, timeout=1)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 7, text


# ---------------------------------------------------------------- lock order


def _acquire_in_order(order: list[int]) -> None:
    for which in order:
        _gorun.lock_acquire(which)
    for which in reversed(order):
        _gorun.lock_release(which)


@pytest.mark.parametrize("heap", LOCK_KINDS, indirect=True)
def test_mheap_then_mcentral_is_a_fatal_lock_order_violation(heap):
    pid, err = fork_child(_acquire_in_order, [MHEAP_LOCK, 0], capture_stderr=True)
    text = read_all(err, timeout=30)
    status = wait_child(pid, timeout=30)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, f"status {status:#x}: {text}"
    assert "lock order violation" in text
    assert "mcentral[0]" in text and "mheap" in text
    assert text.count("\n") == 1, f"one line: {text!r}"


@pytest.mark.parametrize(
    "order",
    [[0, MHEAP_LOCK], [0, MHEAP_LOCK, TYPETAB_LOCK], [MHEAP_LOCK, TYPETAB_LOCK]],
    ids=["mcentral-mheap", "mcentral-mheap-typetab", "mheap-typetab"],
)
@pytest.mark.parametrize("heap", LOCK_KINDS, indirect=True)
def test_rank_order_is_fine(heap, order):
    pid, err = fork_child(_acquire_in_order, order, capture_stderr=True)
    text = read_all(err, timeout=30)
    _exited_ok(wait_child(pid, timeout=30), text)
    assert text == ""
    for which in order:
        assert _gorun.lock_stats(which)["acquisitions"] == 1


@pytest.mark.parametrize("heap", LOCK_KINDS, indirect=True)
def test_two_mcentral_locks_at_once_is_a_violation(heap):
    # equal ranks: a process may hold at most one mcentral lock (rank must strictly increase)
    pid, err = fork_child(_acquire_in_order, [3, 4], capture_stderr=True)
    text = read_all(err, timeout=30)
    status = wait_child(pid, timeout=30)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, f"status {status:#x}: {text}"
    assert "lock order violation" in text


@pytest.mark.parametrize("heap", ["futex"], indirect=True)
def test_recursive_acquire_is_reported_not_a_deadlock(heap):
    pid, err = fork_child(_acquire_in_order, [0, 0], capture_stderr=True)
    status = wait_child(pid, timeout=3)  # hang guard
    text = read_all(err, timeout=1)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3, text
    assert "lock order violation" in text
