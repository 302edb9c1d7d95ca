"""docs/design.md stays true where a machine can tell: the ABI version it names is the C core's,
and its file map names exactly the files that exist (every C file and header, every Python
module of gorun/). `make lint` runs this file too."""

from __future__ import annotations

import re

from conftest import REPO

DESIGN = REPO / "docs" / "design.md"


def _map_section() -> str:
    text = DESIGN.read_text()
    m = re.search(r"^## Map: gorun file to Go file\n(.*?)^## ", text, re.S | re.M)
    assert m, "docs/design.md has no 'Map: gorun file to Go file' section"
    return m.group(1)


def test_design_names_the_current_abi_version():
    header = (REPO / "native" / "runtime.h").read_text()
    abi = int(re.search(r"#define GORUN_ABI_VERSION (\d+)", header).group(1))
    named = re.findall(r"`GORUN_ABI_VERSION` \((\d+)\)", DESIGN.read_text())
    assert named, "docs/design.md does not name GORUN_ABI_VERSION (N)"
    assert {int(n) for n in named} == {abi}, f"docs/design.md names ABI {named}, runtime.h has {abi}"
    init = (REPO / "gorun" / "__init__.py").read_text()
    assert f"_EXPECTED_ABI = {abi}" in init, "gorun/__init__.py expects another ABI than runtime.h defines"


def test_file_map_names_exactly_the_files_that_exist():
    section = _map_section()
    named = set(re.findall(r"`((?:native|gorun)/[A-Za-z0-9_./]+)`", section))
    missing_on_disk = sorted(n for n in named if not (REPO / n).exists())
    assert not missing_on_disk, f"the map names files that do not exist: {missing_on_disk}"
    files = {f"native/{p.name}" for p in (REPO / "native").iterdir() if p.suffix in (".c", ".h")}
    files |= {f"gorun/{p.name}" for p in (REPO / "gorun").glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    covered = set(named) | {n.rstrip("/") for n in named}
    unmapped = sorted(
        f for f in files if f not in covered and not any(n.endswith("/") and f.startswith(n) for n in named)
    )
    assert not unmapped, f"files missing from docs/design.md's map: {unmapped}"
