"""gorun: Go's memory management as a real multiprocess runtime over shared memory.

    import gorun
    Node = gorun.struct("Node", left=gorun.PTR, right=gorun.PTR, val=gorun.INT)

    def work(g, n=1000):
        head = None
        for i in range(n):
            x = g.new(Node)
            x.val, x.left = i, head
            head = x
        return head.val

    print(gorun.Runtime(procs=2).run(work, n=1000).summary())

See README.md and docs/design.md.
"""

from . import _gorun

_EXPECTED_ABI = 13
if _gorun.ABI_VERSION != _EXPECTED_ABI:  # the version handshake between Python and C
    raise ImportError(
        f"gorun's C core has ABI {_gorun.ABI_VERSION}, the Python package expects "
        f"{_EXPECTED_ABI}: rebuild with `make install`"
    )

from ._gorun import ArrayHandle, BytesHandle, GorunError, Handle, OutOfMemory  # noqa: E402

# The rest is imported on first use (PEP 562), so that `gorun` on the command line can take over
# Ctrl-C before the slow imports (numpy): an interruption during start-up is one line, not a
# traceback.
_LAZY = {
    "Interrupted": "runtime",
    "Pool": "pool",
    "RunError": "runtime",
    "RunResult": "runtime",
    "Runtime": "runtime",
    "BYTES": "types",
    "FLOAT": "types",
    "INT": "types",
    "PTR": "types",
    "struct": "types",
    "BOOL": "types",
    "INT8": "types",
    "INT16": "types",
    "INT32": "types",
    "INT64": "types",
    "UINT8": "types",
    "UINT16": "types",
    "UINT32": "types",
    "UINT64": "types",
    "FLOAT32": "types",
    "FLOAT64": "types",
}


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gorun' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Runtime",
    "RunResult",
    "Pool",
    "RunError",
    "Interrupted",
    "OutOfMemory",
    "GorunError",
    "Handle",
    "ArrayHandle",
    "BytesHandle",
    "struct",
    "PTR",
    "INT",
    "FLOAT",
    "BYTES",
    "BOOL",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "FLOAT32",
    "FLOAT64",
]
__version__ = "0.1.0"
