"""The one duplicate rule of the library (same size, same SHA-256) and the hashes it keeps."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from slmdesk.models.library import DuplicateModelError, Library
from slmdesk.models.library import core as library_core


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _records(library: Library) -> dict:
    return json.loads(library.index_path.read_text())["models"]


def _with_middle_byte_changed(source: Path, target: Path) -> Path:
    """Same size, same first and last 64 KiB, different bytes (a tensor value in the middle)."""
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_same_size_and_ends_but_other_bytes_is_not_a_duplicate(
    tiny_model: Path, tmp_path: Path
) -> None:
    library = Library()
    library.import_model(tiny_model)
    other = _with_middle_byte_changed(tiny_model, tmp_path / "tiny-llama-tuned.gguf")
    entry = library.import_model(other)
    assert entry.name == "tiny-llama-tuned"
    assert len(library.entries()) == 2


def test_a_copy_keeps_the_hash_it_read_while_copying(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model)
    assert _records(library)[entry.name]["sha256"]["value"] == _sha256(tiny_model)
    assert Library().get(entry.name).sha256 == _sha256(tiny_model)


def test_a_library_file_is_hashed_once_and_the_hash_kept_in_the_index(
    tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = Library()
    entry = library.import_model(tiny_model, copy=False)  # linked: nothing read its bytes
    assert entry.sha256 is None
    reads: list[Path] = []
    real = library_core.sha256_of_file

    def counted(path: Path, cancel: object = None) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(library_core, "sha256_of_file", counted)
    size, digest = tiny_model.stat().st_size, _sha256(tiny_model)
    for _ in range(2):
        found = library.find_same_content(size, digest)
        assert found is not None and found.name == entry.name
    assert reads == [entry.path]
    assert _records(library)[entry.name]["sha256"]["value"] == digest
    # another size is never hashed; an unknown hash of the same size finds nothing
    assert library.find_same_content(size + 1, digest) is None
    assert library.find_same_content(size, "0" * 64) is None
    assert reads == [entry.path]


def test_a_changed_file_is_hashed_again(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model, copy=False)
    assert library.sha256_of(entry) == _sha256(tiny_model)
    _with_middle_byte_changed(tiny_model, tiny_model)
    assert library.sha256_of(library.get(entry.name)) == _sha256(tiny_model)


def test_registering_a_download_refuses_bytes_already_in_the_library(
    tiny_model: Path,
) -> None:
    library = Library()
    first = library.import_model(tiny_model, copy=False)
    arrived = library.models_dir / "other-repo-Q8_0.gguf"
    shutil.copyfile(tiny_model, arrived)
    before = _records(library)
    with pytest.raises(DuplicateModelError, match="already in the library as 'tiny-llama-F16'"):
        library.add_managed_file(arrived, sha256=_sha256(arrived), refuse_duplicate=True)
    after = _records(library)
    # the refused file was only picked up by the folder scan of the refused change: not saved
    assert after.keys() == before.keys()
    assert after[first.name]["path"] == str(tiny_model.resolve())


def test_a_registered_download_keeps_its_known_hash(tiny_model: Path) -> None:
    library = Library()
    arrived = library.models_dir / tiny_model.name
    shutil.copyfile(tiny_model, arrived)
    digest = _sha256(arrived)
    entry = library.add_managed_file(arrived, sha256=digest, refuse_duplicate=True)
    assert entry.sha256 == digest
    assert _records(library)[entry.name]["sha256"]["value"] == digest
