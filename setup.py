# The C core of gorun: one extension module built from native/*.c.
# Build-time variants (docs/design.md "Debug builds"):
#   GORUN_DEBUG=1   -O1 -g, assertion level 1: the validity walkers of native/mcheck.c at every
#                   mcentral/span state change and over every mcentral at mark termination;
#   GORUN_DEBUG=2   level 1 plus a full heap walk (span table, pagemap, page allocator, counters)
#                   at every mark termination;
#   GORUN_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer, -O1 -g; the interpreter is
#                   not instrumented, so the ASan runtime must be LD_PRELOADed (make sanitize).
# Every variant compiles with -Wall -Wextra -Wmissing-prototypes -Werror: a function used
# across files is declared once, in a header (native/*.h); file-local ones are static.
import glob
import os

from setuptools import Extension, setup


def level(name: str) -> int:
    v = os.environ.get(name, "0").strip() or "0"
    if not v.isdigit():
        raise SystemExit(f"{name}={v!r}: expected 0, 1 or 2")
    return int(v)


debug = level("GORUN_DEBUG")
sanitize = level("GORUN_SANITIZE") > 0
cflags = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wmissing-prototypes", "-Wno-unused-parameter",
          "-Wno-missing-field-initializers", "-fno-strict-aliasing"]
ldflags = []
macros = [("GORUN_DEBUG", str(debug)), ("GORUN_SANITIZE", "1" if sanitize else "0")]
if debug or sanitize:
    cflags += ["-O1", "-g"]
if sanitize:
    san = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    cflags += san
    ldflags += san

setup(
    ext_modules=[
        Extension(
            "gorun._gorun",
            sources=sorted(glob.glob("native/*.c")),
            depends=sorted(glob.glob("native/*.h")),
            include_dirs=["native"],
            extra_compile_args=cflags,
            extra_link_args=ldflags,
            define_macros=macros,
            libraries=["pthread"],
        )
    ]
)
