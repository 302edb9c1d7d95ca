"""The memory limit end to end (issue 7): GOMEMLIMIT / --memlimit in Go's syntax, g.set_memory_limit
and g.set_gc_percent, the limit's goal, the scavenger returning memory, the GC CPU limiter, and the
output (JSON memory.*, gc.limiter, cycles_detail's goal_source). Real runs: real processes, real
shared memory; the kernel memory limit is tests/test_container_story.py's."""

from __future__ import annotations

import json
import os

import pytest
from conftest import live_children, own_segments, run_gorun

import gorun
from gorun import _gorun
from gorun.units import MAX_MEMORY_LIMIT, parse_memlimit

MiB = 1 << 20


# ---------------------------------------------------------------- the syntax


@pytest.mark.parametrize(
    "text,value",
    [
        ("0", 0),
        ("1024", 1024),
        ("1024B", 1024),
        ("900MiB", 900 * MiB),
        ("1GiB", 1 << 30),
        ("2TiB", 2 << 40),
        ("3KiB", 3 << 10),
        ("off", MAX_MEMORY_LIMIT),
        (str(MAX_MEMORY_LIMIT), MAX_MEMORY_LIMIT),
    ],
)
def test_memlimit_syntax_accepts_gos_forms(text, value):
    assert parse_memlimit(text) == value


@pytest.mark.parametrize(
    "text",
    ["", "1GB", "1G", "1gib", "1.5GiB", "-1", " 1MiB", "1MiB ", "1 MiB", "MiB", "Off", "1KB", str(1 << 63), "0x10"],
)
def test_memlimit_syntax_refuses_everything_else(text):
    with pytest.raises(ValueError, match="GOMEMLIMIT"):
        parse_memlimit(text)


@pytest.mark.parametrize(
    "args,env,needle",
    [
        (["--memlimit", "1GB"], {}, "bad --memlimit '1GB'"),
        (["--memlimit", "-1"], {}, "bad --memlimit '-1'"),
        ([], {"GOMEMLIMIT": "lots"}, "bad GOMEMLIMIT 'lots'"),
        (["--container", "a lot"], {}, "bad --container"),
        (["--container", "1MiB"], {}, "container size"),
    ],
)
def test_bad_limits_are_one_line_and_exit_2(args, env, needle):
    r = run_gorun("run", "alloc", "--procs", "1", "-p", "budget=1MiB", *args, env=env)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("gorun: error: ") and needle in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


# ---------------------------------------------------------------- the API


def _settings(g):
    if g.id:
        return None
    out = [g.set_memory_limit(-1)]  # reads only
    out.append(g.set_memory_limit(64 * MiB))
    out.append(g.set_memory_limit(-5))
    out.append(g.set_gc_percent(50))
    out.append(g.set_gc_percent(-1))
    out.append(g.set_gc_percent(200))
    out.append(g.set_memory_limit(MAX_MEMORY_LIMIT))
    return out


def test_set_memory_limit_and_gc_percent_return_the_previous_value():
    r = gorun.Runtime(procs=2, max_heap="64MiB", gogc=100, memory_limit="512MiB").run(_settings)
    assert r.values[0] == [512 * MiB, 512 * MiB, 64 * MiB, 100, 50, -1, 64 * MiB]
    assert not _gorun.attached() and own_segments() == [] and live_children() == []


def _hold(g, live: int = 32 * MiB, churn: int = 96 * MiB, limit: int | None = None):
    """P0 holds `live` bytes in 1 KiB chunks, then every P churns; optionally sets the limit."""
    if limit is not None and g.id == 0:
        g.set_memory_limit(limit)
    keep = []
    if g.id == 0:
        keep = [g.new_bytes(1016) for _ in range(live // 1024)]
    for _ in range(churn // 1024 // g.nprocs):
        g.new_bytes(1016)
    return len(keep)


def _json(r) -> dict:
    return r.to_dict()


def test_limit_below_the_gogc_goal_paces_by_the_limit_and_holds_memory_under_it():
    # GOGC=400 with 16 MiB live wants an 80 MiB heap goal; with the metadata (about 30 MiB for
    # 2 P's, root tables included) the limit leaves the heap about 40 MiB
    limit = 72 * MiB
    r = gorun.Runtime(procs=2, max_heap="256MiB", gogc=400, memory_limit=limit).run(_hold, live=16 * MiB)
    d = _json(r)
    srcs = [c["goal_source"] for c in d["gc"]["cycles_detail"]]
    assert "memlimit" in srcs, srcs
    assert d["memory"]["limit_bytes"] == limit
    peak_mapped = max(c["mapped_ready"] for c in d["gc"]["cycles_detail"])
    assert peak_mapped <= limit * 1.05, (peak_mapped, limit)
    for c in d["gc"]["cycles_detail"]:
        if c["goal_source"] == "memlimit":
            assert c["goal"] < limit


def test_gogc_off_with_a_limit_still_collects():
    r = gorun.Runtime(procs=1, max_heap="256MiB", gogc="off", memory_limit="48MiB").run(_hold, live=8 * MiB)
    d = _json(r)
    assert d["gc"]["cycles"] >= 2 and d["gc"]["gogc"] == -1
    assert all(c["goal_source"] == "memlimit" for c in d["gc"]["cycles_detail"])
    assert d["memory"]["mapped_bytes"] <= 52 * MiB


def test_gogc_off_without_a_limit_never_collects():
    r = gorun.Runtime(procs=1, max_heap="256MiB", gogc="off").run(_hold, live=1 * MiB, churn=16 * MiB)
    assert _json(r)["gc"]["cycles"] == 0


def _over_the_limit(g, live: int = 24 * MiB, seconds: float = 30):
    """Keep `live` bytes (over the limit) and churn until the GC CPU limiter has been seen on
    (or `seconds` pass); then churn 16 MiB more with it in force. Returns (kept, seen on)."""
    import time

    keep = [g.new_bytes(1016) for _ in range(live // 1024)]
    t0 = time.monotonic()
    seen = False
    while not seen and time.monotonic() - t0 < seconds:
        for _ in range(1024):
            g.new_bytes(1016)
        # on now, or on at some update of a finished cycle (it can switch on and off between polls)
        seen = bool(_gorun.gc_state()["limiter_on"]) or any(c["limiter"] for c in _gorun.gc_cycles())
    for _ in range(16 * 1024):
        g.new_bytes(1016)
    return len(keep), seen


def test_live_heap_above_the_limit_engages_the_cpu_limiter_and_completes():
    # one P: the bucket holds 1 CPU-second; continuous GC (the GC process's core, assists and
    # waits at the goal) fills it
    r = gorun.Runtime(procs=1, max_heap="256MiB", memory_limit="8MiB").run(_over_the_limit)
    kept, seen = r.values[0]
    assert kept == 24 * MiB // 1024 and seen  # it finished, the live set whole
    d = _json(r)
    lim = d["gc"]["limiter"]
    assert lim["enabled_cycles"] >= 1 and lim["enabled_ns"] > 0, lim
    assert any(c["limiter"] for c in d["gc"]["cycles_detail"])
    assert d["memory"]["metrics"]["/gc/limiter/last-enabled:gc-cycle"] >= 1
    assert all(c["goal_source"] == "memlimit" for c in d["gc"]["cycles_detail"][1:])


# 8 MiB live at GOGC=100: a 16 MiB goal, retained + 10 %, plus one 4 MiB chunk and the sweeper's slack
RETAINED_BOUND = int(16 * MiB * 1.1) + 4 * MiB + 4 * MiB


def _shrink(g):
    """Grow a 96 MiB live set, drop it to 8 MiB, then churn slowly while cycles run."""
    import time

    if g.id:
        return None
    keep = [g.new_bytes(1016) for _ in range(96 * MiB // 1024)]
    del keep[8 * MiB // 1024 :]
    before = _gorun.memstats()
    for _ in range(4):
        g.gc()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        for _ in range(256):
            g.new_bytes(1016)
        m = _gorun.memstats()
        if m["mapped_ready"] - m["/memory/classes/metadata/other:bytes"] <= RETAINED_BOUND:
            break
        with g.blocking():
            time.sleep(0.01)
    return before, _gorun.memstats(), len(keep), time.monotonic() - t0


def test_scavenger_returns_memory_after_the_live_set_shrinks():
    r = gorun.Runtime(procs=1, max_heap="512MiB").run(_shrink)
    before, after, kept, took = r.values[0]
    assert kept == 8 * MiB // 1024
    assert after["heap_released"] >= 48 * MiB, after
    # what the runtime still holds ready came down to the retained goal
    meta = after["/memory/classes/metadata/other:bytes"]
    assert after["mapped_ready"] - meta <= RETAINED_BOUND, (after, took)
    assert after["mapped_ready"] < before["mapped_ready"] - 48 * MiB
    d = _json(r)
    assert d["memory"]["released_bytes"] > 0
    assert d["memory"]["scavenged"]["total_bytes"] >= 48 * MiB


def test_json_and_summary_carry_the_memory_figures():
    r = run_gorun(
        "run",
        "spike",
        "--procs",
        "2",
        "--memlimit",
        "64MiB",
        "--json",
        "-",
        "-p",
        "live=8MiB",
        "-p",
        "grow=16MiB",
        "-p",
        "churn=32MiB",
        env={"GODEBUG": "gctrace=1,scavtrace=1"},
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    m = d["memory"]
    assert m["limit_bytes"] == 64 * MiB
    assert m["peak_bytes"] >= m["final_bytes"] > 0
    assert m["container"]["limit_bytes"] is None and m["container"]["oom_killed"] is False
    assert set(d["gc"]["limiter"]) >= {"enabled_cycles", "enabled_ns"}
    for c in d["gc"]["cycles_detail"]:
        assert c["goal_source"] in ("gogc", "memlimit") and c["trigger"] <= c["goal"]
    assert m["metrics"]["/gc/gomemlimit:bytes"] == 64 * MiB
    lines = r.stderr.splitlines()
    assert any(ln.startswith("gc 1 @") for ln in lines)
    assert any(ln.startswith("gorun: gc 1 memlimit 64MiB") for ln in lines), r.stderr
    assert any(ln.startswith("scav ") and "KiB work (bg)" in ln for ln in lines), r.stderr
    assert "memory: peak" in r.stderr and "limit 64MiB" in r.stderr  # the summary (stdout is the JSON)


def test_env_gomemlimit_reaches_the_run():
    r = run_gorun("run", "alloc", "--procs", "1", "--json", "-", "-p", "budget=8MiB", env={"GOMEMLIMIT": "300MiB"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["memory"]["limit_bytes"] == 300 * MiB


def test_spike_defaults_run_and_refuse_a_shrinking_grow():
    r = run_gorun("run", "spike", "--procs", "2")
    assert r.returncode == 0, r.stderr
    r = run_gorun("run", "spike", "-p", "live=8MiB", "-p", "grow=4MiB")
    assert r.returncode == 2 and "grow must be >= live" in r.stderr


@pytest.mark.skipif(os.cpu_count() is None, reason="needs a CPU count")
def test_memory_sampler_sees_the_run():
    r = gorun.Runtime(procs=1, max_heap="256MiB").run(_hold, live=32 * MiB, churn=8 * MiB)
    m = _json(r)["memory"]
    # the arena holds at least the live set, and the samples count it once
    assert m["peak_bytes"] >= 32 * MiB and m["samples"] > 0
