"""The default workload: mixed-size allocation until a byte budget or --duration is spent."""

from __future__ import annotations

import numpy as np

from .. import _gorun
from . import Param, register

_C = _gorun.constants()
MAX_SMALL_PAYLOAD = _C["max_small_size"] - _C["obj_header_size"]  # 32760: the largest small object's payload
MIN_LARGE = _C["max_small_size"]  # the smallest request that is served as a large object


def _check(p: dict) -> str | None:
    if p["tiny"] + p["large"] > 1:
        return f"tiny + large must be <= 1 (tiny={p['tiny']!r}, large={p['large']!r})"
    return None


@register(
    limits={
        "budget": Param("size", 0),
        "tiny": Param("float", 0, 1),
        "large": Param("float", 0, 1),
        "scan": Param("float", 0, 1),
        "max_small": Param("size", 16, MAX_SMALL_PAYLOAD),
        "max_large": Param("size", MIN_LARGE, 1 << 30),
        "keep": Param("int", 0, 1 << 27),
    },
    check=_check,
)
def alloc(
    g,
    budget: int = 256 << 20,
    tiny: float = 0.3,
    large: float = 0.002,
    scan: float = 0.3,
    max_small: int = 4096,
    max_large: int = 256 << 10,
    keep: int = 20000,
):
    """Allocate a mix of tiny (1-14 B noscan), small (16 B .. max_small, log-uniform, a `scan`
    fraction of them pointer arrays) and large (32 KiB .. max_large) objects until `budget`
    bytes per P or --duration is spent. `keep` holds the last N objects live (a ring of handles).
    Returns counts per kind."""
    if not 0 <= tiny <= 1 or not 0 <= large <= 1 or tiny + large > 1 or not 0 <= scan <= 1:
        raise ValueError("fractions tiny, large, scan must be in [0, 1] with tiny + large <= 1")
    if not 16 <= max_small <= MAX_SMALL_PAYLOAD or max_large < MIN_LARGE:
        raise ValueError(f"need 16 <= max_small <= {MAX_SMALL_PAYLOAD} and max_large >= {MIN_LARGE}")
    new_bytes, new_array = g.new_bytes, g.new_array
    rng = g.rng
    ring = [None] * keep if keep > 0 else None
    counts = {"tiny": 0, "small": 0, "large": 0, "scan": 0, "bytes": 0}
    spent = 0
    batch = 2048
    i = 0
    lo, hi = np.log(16), np.log(max_small)
    while spent < budget and not g.expired():
        u = rng.random(batch)
        small_sizes = np.exp(rng.uniform(lo, hi, batch)).astype(np.int64).tolist()
        tiny_sizes = rng.integers(1, 15, batch).tolist()
        large_sizes = rng.integers(MIN_LARGE, max_large + 1, batch).tolist()
        scan_u = rng.random(batch).tolist()
        for j, x in enumerate(u.tolist()):
            if x < tiny:
                n = tiny_sizes[j]
                h = new_bytes(n)
                counts["tiny"] += 1
            elif x < tiny + large:
                n = large_sizes[j]
                h = new_bytes(n)
                counts["large"] += 1
            else:
                n = small_sizes[j]
                if scan_u[j] < scan:
                    h = new_array("ptr", max(n // 8, 1))
                    counts["scan"] += 1
                else:
                    h = new_bytes(n)
                counts["small"] += 1
            spent += n
            if ring is not None:
                ring[i % keep] = h
                i += 1
        g.safepoint()
    counts["bytes"] = spent
    return counts
