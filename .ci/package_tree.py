"""The installed package layout as a tree of symlinks, for tools that find packages by folder.

setuptools maps `core/` to `tracewire` and `integrations/` to `tracewire.integrations`; mypy and
import-linter read packages from directories, so they are pointed at build/pkg/tracewire, whose
entries link back to the sources.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "pkg" / "tracewire"


def main() -> None:
    shutil.rmtree(TREE, ignore_errors=True)
    TREE.mkdir(parents=True)
    for entry in sorted((ROOT / "core").iterdir()):
        if entry.name != "__pycache__":
            os.symlink(os.path.relpath(entry, TREE), TREE / entry.name)
    os.symlink(os.path.relpath(ROOT / "integrations", TREE), TREE / "integrations")


if __name__ == "__main__":
    main()
