"""``python -m bench NAME [args]`` or ``python -m bench all``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

import bench


def _names() -> list[str]:
    return sorted(
        m.name
        for m in pkgutil.iter_modules(bench.__path__)
        if not m.name.startswith("_") and m.name != "common"
    )


def main(argv: list[str]) -> int:
    names = _names()
    if not argv or argv[0] in {"-h", "--help"}:
        print(f"usage: python -m bench {{{'|'.join([*names, 'all'])}}} [args]")
        return 0 if argv else 2
    chosen = names if argv[0] == "all" else [argv[0]]
    status = 0
    for name in chosen:
        if name not in names:
            print(f"error: no benchmark {name!r}; choose from {', '.join(names)}", file=sys.stderr)
            return 2
        module = importlib.import_module(f"bench.{name}")
        status |= int(module.main(argv[1:] if argv[0] != "all" else []) or 0)
    return status


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    sys.exit(main(sys.argv[1:]))
