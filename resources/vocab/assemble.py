"""Rebuild the corpus files of this folder that are taken from CPython (PSF licence).

Run with the CPython 3.11 whose standard library should be read: ``python assemble.py``. The
files written by hand (``*_original.txt``, the European languages, the held-out texts) are
inputs and are not changed. See README.md for what each file is.
"""

from __future__ import annotations

import sysconfig
from pathlib import Path

HERE = Path(__file__).resolve().parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])
INCLUDE = Path(sysconfig.get_paths()["include"])

# English: the Python reference documentation shipped with the interpreter (pydoc topics).
TOPICS_LIMIT = 300_000
# Python: whole modules of the standard library.
PYTHON_MODULES = [
    "textwrap.py",
    "copy.py",
    "contextlib.py",
    "fnmatch.py",
    "heapq.py",
    "bisect.py",
    "string.py",
    "glob.py",
    "json/encoder.py",
    "json/decoder.py",
    "argparse.py",
    "dataclasses.py",
]
# C: public headers of the interpreter.
C_HEADERS = ["object.h", "abstract.h", "listobject.h", "dictobject.h", "longobject.h"]
# Held-out code: a module that is in no corpus file.
HELDOUT_MODULES = ["colorsys.py"]


def _write(name: str, parts: list[str]) -> None:
    target = HERE / name
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(target)
    print(f"{name}: {target.stat().st_size:,} bytes")


def main() -> None:
    """Write english.txt, code_python.txt, code_other.txt and heldout_code.txt."""
    from pydoc_data.topics import topics

    english = [(HERE / "english_original.txt").read_text(encoding="utf-8")]
    size = 0
    for key in sorted(topics):
        if size > TOPICS_LIMIT:
            break
        english.append(topics[key])
        size += len(topics[key])
    _write("english.txt", english)
    _write("code_python.txt", [(STDLIB / m).read_text(encoding="utf-8") for m in PYTHON_MODULES])
    other = [(HERE / "code_original.txt").read_text(encoding="utf-8")]
    other += [(INCLUDE / h).read_text(encoding="utf-8") for h in C_HEADERS]
    _write("code_other.txt", other)
    heldout = [(HERE / "heldout_code_original.txt").read_text(encoding="utf-8")]
    heldout += [(STDLIB / m).read_text(encoding="utf-8") for m in HELDOUT_MODULES]
    _write("heldout_code.txt", heldout)


if __name__ == "__main__":
    main()
