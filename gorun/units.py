"""Parsing of the sizes and durations users type (GOMEMLIMIT's units)."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "k": 1 << 10,
    "m": 1 << 20,
    "g": 1 << 30,
    "t": 1 << 40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int, what: str = "size") -> int:
    """'900MiB' -> 943718400. Accepts B, KiB/MiB/GiB/TiB, KB/MB/GB/TB, and k/m/g/t (binary)."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"bad {what} {text!r}: negative")
        return text
    m = _SIZE_RE.match(str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(
            f"bad {what} {text!r}: expected a number with an optional unit (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
        )
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


MAX_MEMORY_LIMIT = (1 << 63) - 1  # Go's default memory limit (math.MaxInt64): no limit
_MEMLIMIT_RE = re.compile(r"^([0-9]+)((?:[KMGT]i)?B)?$")
_MEMLIMIT_UNITS = {None: 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_memlimit(text, what: str = "GOMEMLIMIT") -> int:
    """GOMEMLIMIT in Go's syntax: a byte count with an optional B, KiB, MiB, GiB or TiB suffix
    (``^[0-9]+(([KMGT]i)?B)?$``, case-sensitive, no spaces), or ``off`` (``MAX_MEMORY_LIMIT``).
    An int is taken as bytes. ValueError (one line) otherwise, as Go refuses to start."""
    if isinstance(text, bool):
        raise ValueError(f"bad {what} {text!r}: expected a byte count such as 900MiB, or off")
    if isinstance(text, int):
        if not 0 <= text <= MAX_MEMORY_LIMIT:
            raise ValueError(f"bad {what} {text!r}: must be 0..{MAX_MEMORY_LIMIT} bytes")
        return text
    s = str(text)
    if s == "off":
        return MAX_MEMORY_LIMIT
    m = _MEMLIMIT_RE.match(s)
    if not m:
        raise ValueError(
            f"bad {what} {s!r}: expected a byte count with an optional B, KiB, MiB, GiB or TiB suffix "
            "(e.g. 900MiB), or off"
        )
    v = int(m.group(1)) * _MEMLIMIT_UNITS[m.group(2)]
    if v > MAX_MEMORY_LIMIT:
        raise ValueError(f"bad {what} {s!r}: larger than the largest limit ({MAX_MEMORY_LIMIT} bytes)")
    return v


def fmt_memlimit(v: int) -> str:
    """The limit as a user would write it back: 'off', or bytes in the largest exact unit."""
    if v >= MAX_MEMORY_LIMIT:
        return "off"
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        d = _MEMLIMIT_UNITS[unit]
        if v and v % d == 0:
            return f"{v // d}{unit}"
    return f"{v}B"


def fmt_bytes(n: float) -> str:
    n = float(n)
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{int(n)} B"


def fmt_ns(ns: float) -> str:
    ns = float(ns)
    if ns >= 1e9:
        return f"{ns / 1e9:.2f}s"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f}ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f}us"
    return f"{ns:.0f}ns"
