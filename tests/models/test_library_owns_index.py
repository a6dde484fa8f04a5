"""The library owns its index: listing never writes it, every change returns and announces the
changed entry, damaged files are listed (and removable) instead of breaking the library, and a
cancelled or killed import leaves no file behind. Real files, real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gguf
import numpy as np
import pytest

from slmdesk.common.errors import InvalidModelError
from slmdesk.models.library import ImportCancelled, Library, LibraryChange
from slmdesk.models.library.partials import PARTIAL_SUFFIX


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``slmdesk ARGS`` in its own process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "slmdesk", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
        check=False,
    )


def _all_files(folder: Path) -> list[str]:
    """Every file below ``folder``, hidden ones included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def write_damaged_model(path: Path) -> Path:
    """A GGUF that passes the header checks but stores ``llama.block_count`` as text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_string("llama.block_count", "twelve")
    writer.add_context_length(128)
    writer.add_tensor("token_embd.weight", np.zeros((8, 16), dtype=np.float32))
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    return path


# -- listing never writes the index --------------------------------------------------------------


def test_listing_does_not_modify_the_index(tiny_model: Path, tiny_model_no_template: Path) -> None:
    library = Library()
    linked = library.import_model(tiny_model, copy=False)
    managed = library.import_model(tiny_model_no_template)
    # three things an old listing "repaired" in the index: a file dropped into the folder, a
    # changed file (stale cached facts) and a managed file deleted outside the app
    shutil.copyfile(tiny_model, library.models_dir / "dropped.gguf")
    later = time.time() + 5
    os.utime(linked.path, (later, later))
    before_bytes = library.index_path.read_bytes()
    before_mtime = library.index_path.stat().st_mtime_ns
    managed.path.unlink()

    for _ in range(3):
        names = [e.name for e in Library().entries()]
        assert names == ["dropped", "tiny-llama-F16"]
        assert Library().get("dropped").status == "ok"

    assert library.index_path.read_bytes() == before_bytes
    assert library.index_path.stat().st_mtime_ns == before_mtime


def test_listing_a_folder_without_an_index_creates_none(tiny_model: Path) -> None:
    library = Library()
    shutil.copyfile(tiny_model, library.models_dir / "dropped.gguf")
    assert [e.name for e in library.entries()] == ["dropped"]
    assert library.resolve("dropped") == library.models_dir / "dropped.gguf"
    assert not library.index_path.exists()


def test_a_change_records_dropped_files_and_fresh_facts(tiny_model: Path, tmp_path: Path) -> None:
    library = Library()
    shutil.copyfile(tiny_model, library.models_dir / "dropped.gguf")
    library.entries()  # reads the header, remembers it in memory only
    other = tmp_path / "other.gguf"
    from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

    write_tiny_llama(other, TinyModelSpec(n_layers=1, seed=7))
    library.import_model(other, copy=False)
    records = json.loads(library.index_path.read_text())["models"]
    assert set(records) == {"dropped", "other"}
    assert records["dropped"]["cache"]["facts"]["architecture"] == "llama"


# -- every change returns the entry and announces it ---------------------------------------------


def test_every_change_returns_and_announces_the_entry(tiny_model: Path) -> None:
    library = Library()
    heard: list[LibraryChange] = []
    stop = library.subscribe(heard.append)

    linked = library.import_model(tiny_model, copy=False)
    assert linked.name == "tiny-llama-F16" and not linked.managed
    renamed = library.rename(linked.name, "Mine")
    assert renamed.name == "Mine" and renamed.path == linked.path
    removed, deleted = library.remove("Mine")
    assert removed.name == "Mine" and not deleted

    # a download registers through its own Library object: the listener hears it all the same
    target = library.models_dir / "downloaded.gguf"
    shutil.copyfile(tiny_model, target)
    downloaded = Library().add_managed_file(target, provenance={"source": "hub", "repo": "a/b"})
    assert downloaded.provenance["repo"] == "a/b"
    again = Library().add_managed_file(target, provenance={"source": "hub", "repo": "c/d"})
    assert again.name == downloaded.name and again.provenance["repo"] == "c/d"

    assert [(c.kind, c.name, c.old_name) for c in heard] == [
        ("added", "tiny-llama-F16", None),
        ("renamed", "Mine", "tiny-llama-F16"),
        ("removed", "Mine", None),
        ("added", "downloaded", None),
        ("updated", "downloaded", None),
    ]
    assert heard[0].entry == linked
    stop()
    library.remove("downloaded")
    assert len(heard) == 5


def test_a_failing_listener_does_not_undo_the_change(tiny_model: Path) -> None:
    library = Library()

    def broken(_change: LibraryChange) -> None:
        raise RuntimeError("listener bug")

    heard: list[LibraryChange] = []
    library.subscribe(broken)
    library.subscribe(heard.append)
    entry = library.import_model(tiny_model)
    assert [c.name for c in heard] == [entry.name]
    assert [e.name for e in Library().entries()] == [entry.name]


# -- one malformed file never bricks the library -------------------------------------------------


def test_a_damaged_file_is_listed_and_removable_and_others_still_work(
    tiny_model: Path,
) -> None:
    library = Library()
    good = library.import_model(tiny_model)
    bad = write_damaged_model(library.models_dir / "bad.gguf")

    entries = {e.name: e for e in library.entries()}
    assert entries["tiny-llama-F16"].status == "ok"
    assert entries["bad"].status == "invalid"
    reason = entries["bad"].error or ""
    assert "block_count" in reason and "\n" not in reason

    # the rest of the library keeps working: get, resolve (what chat uses), the CLI listing
    assert library.get(good.name).status == "ok"
    assert library.resolve(good.name) == good.path
    out = _cli("models", "list", "--json")
    assert out.returncode == 0, out.stderr
    listing = json.loads(out.stdout)
    assert {m["name"]: m["status"] for m in listing["models"]} == {
        "bad": "invalid",
        "tiny-llama-F16": "ok",
    }

    _removed, deleted = library.remove("bad")
    assert deleted and not bad.exists()
    assert [e.name for e in library.entries()] == [good.name]


@pytest.mark.parametrize("copy", [True, False])
def test_importing_a_damaged_file_is_refused_and_leaves_nothing(tmp_path: Path, copy: bool) -> None:
    library = Library()
    bad = write_damaged_model(tmp_path / "outside" / "bad.gguf")
    heard: list[LibraryChange] = []
    library.subscribe(heard.append)
    with pytest.raises(InvalidModelError, match="block_count"):
        library.import_model(bad, copy=copy)
    assert _all_files(library.models_dir) == []
    assert not library.index_path.exists()
    assert heard == []
    assert bad.exists()  # the user's own file is never touched


def test_registering_a_damaged_download_is_refused(tmp_path: Path) -> None:
    library = Library()
    bad = write_damaged_model(library.models_dir / "bad.gguf")
    with pytest.raises(InvalidModelError, match="block_count"):
        library.add_managed_file(bad, provenance={"source": "hub"})
    assert not library.index_path.exists()


def test_cli_refuses_a_damaged_import_in_one_line(
    tmp_path: Path,
) -> None:
    bad = write_damaged_model(tmp_path / "bad.gguf")
    out = _cli("models", "import", str(bad))
    assert out.returncode == 1
    err = out.stderr.strip()
    assert err.startswith("error: ") and "block_count" in err and "\n" not in err
    assert _all_files(Library().models_dir) == []


# -- cancelled and killed imports ----------------------------------------------------------------


def test_a_cancelled_import_leaves_no_file(tiny_model: Path) -> None:
    library = Library()
    heard: list[LibraryChange] = []
    library.subscribe(heard.append)
    cancel = threading.Event()
    seen: list[int] = []

    def progress(done: int, _total: int) -> None:
        seen.append(done)
        cancel.set()  # the user clicks Cancel while the first chunk is being written

    with pytest.raises(ImportCancelled, match="cancelled"):
        library.import_model(tiny_model, progress=progress, cancel=cancel.is_set)
    assert seen  # the copy had started
    assert _all_files(library.models_dir) == []
    assert not library.index_path.exists()
    assert heard == []
    assert library.entries() == []
    # and the same file imports fine afterwards
    assert library.import_model(tiny_model).status == "ok"


_KILLABLE_IMPORT = """
import sys, time
from slmdesk.models.library import Library

def stall(done, total):
    print("copying", flush=True)
    time.sleep(600)

Library().import_model(sys.argv[1], progress=stall)
"""


def test_a_killed_import_leaves_a_partial_that_the_next_start_removes(tiny_model: Path) -> None:
    models_dir = Library().models_dir
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE_IMPORT, str(tiny_model)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "copying"
        partials = [p for p in models_dir.iterdir() if p.name.endswith(PARTIAL_SUFFIX)]
        assert len(partials) == 1 and partials[0].name.startswith(".")
        # a library starting while the copy runs leaves the running copy's partial alone
        assert Library().entries() == []
        assert partials[0].exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    assert partials[0].exists()  # killed: nobody cleaned up
    Library()  # the next start does
    assert _all_files(models_dir) == []
    assert Library().entries() == []


def test_leftovers_of_older_or_interrupted_copies_are_removed_at_start() -> None:
    models_dir = Library().models_dir
    older = models_dir / ".model.gguf.importing"  # what an earlier version left behind
    older.write_bytes(b"GGUF half a copy")
    orphan_lock = models_dir / f".other.gguf.0badf00d{PARTIAL_SUFFIX}.lock"
    orphan_lock.write_bytes(b"")
    Library()
    assert _all_files(models_dir) == []


def test_a_damaged_index_is_set_aside_not_fatal(tiny_model: Path, tmp_path: Path) -> None:
    library = Library()
    library.index_path.write_text("{ this is not JSON")
    shutil.copyfile(tiny_model, library.models_dir / "dropped.gguf")
    assert [e.name for e in library.entries()] == ["dropped"]
    assert library.index_path.read_text() == "{ this is not JSON"  # listing changes nothing
    library.rename("dropped", "kept")
    assert [e.name for e in Library().entries()] == ["kept"]
    (aside,) = library.index_path.parent.glob("library.json.damaged-*")
    assert aside.read_text() == "{ this is not JSON"


def test_odd_values_in_the_index_do_not_break_a_listing(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model, copy=False)
    index = json.loads(library.index_path.read_text())
    record = index["models"][entry.name]
    record.update(added_at="yesterday", provenance=["not", "a", "dict"])
    record["cache"]["facts"] = "garbage"
    index["models"]["no path"] = {"managed": False}
    library.index_path.write_text(json.dumps(index))
    (listed,) = library.entries()
    assert listed.status == "ok" and listed.architecture == "llama"
    assert listed.added_at == 0.0 and listed.provenance == {}


def test_cli_imports_several_files_and_reports_each_bad_one(
    tiny_model: Path, tmp_path: Path
) -> None:
    bad = write_damaged_model(tmp_path / "bad.gguf")
    out = _cli("models", "import", str(bad), str(tiny_model), "--json")
    assert out.returncode == 1
    assert [m["name"] for m in json.loads(out.stdout)["models"]] == ["tiny-llama-F16"]
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}: ") and "block_count" in line
    assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]
    named = _cli("models", "import", str(bad), str(tiny_model), "--name", "x")
    assert named.returncode == 1 and "one file at a time" in named.stderr
