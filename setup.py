# The C core of gorun: one extension module built from native/*.c.
# GORUN_DEBUG=1 at build time turns on the assertion level (validity walkers,
# extra invariant checks); see docs/design.md "Debug builds".
import glob
import os

from setuptools import Extension, setup

debug = os.environ.get("GORUN_DEBUG", "0") not in ("", "0")
cflags = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Wno-missing-field-initializers", "-fno-strict-aliasing"]
macros = [("GORUN_DEBUG", "1" if debug else "0")]
if debug:
    cflags += ["-O1", "-g"]

setup(
    ext_modules=[
        Extension(
            "gorun._gorun",
            sources=sorted(glob.glob("native/*.c")),
            depends=sorted(glob.glob("native/*.h")),
            include_dirs=["native"],
            extra_compile_args=cflags,
            define_macros=macros,
            libraries=["pthread"],
        )
    ]
)
