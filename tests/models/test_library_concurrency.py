"""Several writers on one library at once: threads of one process and separate processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from slmdesk.models.library import Library
from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

SMALL = {"n_layers": 1, "n_embd": 32, "n_ff": 64, "n_head": 2, "n_head_kv": 1}


@pytest.fixture(scope="module")
def thirty_models(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """30 different tiny models (different weights, so none is a duplicate of another)."""
    folder = tmp_path_factory.mktemp("thirty")
    return [
        write_tiny_llama(folder / f"tiny-{i:02d}.gguf", TinyModelSpec(seed=i, **SMALL))
        for i in range(30)
    ]


def _start_import(paths: list[Path], link: bool) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "slmdesk", "models", "import", *map(str, paths), "--json"]
    if link:
        args.append("--link")
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )


def test_two_import_processes_at_once_lose_no_model(thirty_models: list[Path]) -> None:
    """Two ``slmdesk models import`` processes, 15 files each, run side by side.

    One copies, the other links in place: a linked model lost from the index would be gone for
    good, and a copied one would lose its provenance.
    """
    copier = _start_import(thirty_models[0::2], link=False)
    linker = _start_import(thirty_models[1::2], link=True)
    for process in (copier, linker):
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
        assert len(json.loads(out)["models"]) == 15

    entries = {e.name: e for e in Library().entries()}
    assert sorted(entries) == sorted(p.stem for p in thirty_models)
    for number, path in enumerate(thirty_models):
        entry = entries[path.stem]
        assert entry.status == "ok"
        assert entry.provenance.get("imported_from") == str(path.resolve())
        assert entry.managed == (number % 2 == 0)
    index = json.loads(Library().index_path.read_text())
    assert len(index["models"]) == 30


def test_a_scan_beside_a_download_keeps_the_download_provenance(tmp_path: Path) -> None:
    """A listing running while a download registers its file must not drop its provenance.

    Each round a finished download's file appears in the models folder; then a listing (the
    Library page's scan) and the download's `add_managed_file` start together at a barrier.
    """
    small = write_tiny_llama(tmp_path / "small-for-race.gguf", TinyModelSpec(**SMALL))
    library = Library()
    rounds = 150
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def scan() -> None:
        try:
            barrier.wait(timeout=60)
            Library().entries()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    lost: list[int] = []
    for i in range(rounds):
        target = library.models_dir / f"download-{i:03d}.gguf"
        shutil.copyfile(small, target)
        provenance = {"source": "hub", "repo": "someone/tiny", "round": i}
        scanner = threading.Thread(target=scan, name=f"scan-{i}")
        scanner.start()
        barrier.wait(timeout=60)
        Library().add_managed_file(target, provenance=provenance)
        scanner.join(timeout=60)
        barrier.reset()
        assert not errors, errors
        if Library().get(target.stem).provenance != provenance:
            lost.append(i)
        target.unlink()  # keep the library small so every round races the same way
    assert lost == [], f"provenance lost in {len(lost)} of {rounds} rounds"
