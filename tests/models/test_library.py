"""The model library on real files in a temporary SLMDESK_HOME."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from slmdesk.common import paths
from slmdesk.common.errors import InvalidModelError, LibraryError, ModelNotFoundError
from slmdesk.models.library import Library, model_name_for


def _index(library: Library) -> dict:
    return json.loads(library.index_path.read_text())


def test_empty_library() -> None:
    library = Library()
    assert library.entries() == []
    assert library.models_dir == paths.models_dir()


def test_import_by_copy(tiny_model: Path) -> None:
    library = Library()
    seen: list[tuple[int, int]] = []
    entry = library.import_model(tiny_model, progress=lambda d, t: seen.append((d, t)))
    assert entry.name == "tiny-llama-F16"
    assert entry.managed
    assert entry.path.parent == library.models_dir
    assert entry.path.read_bytes() == tiny_model.read_bytes()
    assert entry.architecture == "llama"
    assert entry.quantization == "F16"
    assert seen[-1] == (tiny_model.stat().st_size, tiny_model.stat().st_size)
    assert sum(e.size_bytes for e in library.entries()) == tiny_model.stat().st_size
    assert not list(library.models_dir.glob(".*importing"))


def test_import_in_place_keeps_the_file_where_it_is(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model, copy=False)
    assert not entry.managed
    assert entry.path == tiny_model.resolve()
    assert list(library.models_dir.iterdir()) == []
    # survives a restart: a new Library object reads the same index
    assert [e.name for e in Library().entries()] == ["tiny-llama-F16"]


def test_importing_the_same_model_twice(tiny_model: Path, tmp_path: Path) -> None:
    library = Library()
    library.import_model(tiny_model)
    before = _index(library)
    with pytest.raises(LibraryError, match="already in the library as 'tiny-llama-F16'"):
        library.import_model(tiny_model)
    copy = tmp_path / "renamed-copy.gguf"
    shutil.copyfile(tiny_model, copy)
    with pytest.raises(LibraryError, match="already in the library"):
        library.import_model(copy, copy=False)
    assert _index(library)["models"].keys() == before["models"].keys()


@pytest.mark.parametrize("content", [b"", b"hello, not a model\n" * 10])
def test_bad_files_leave_the_library_unchanged(tmp_path: Path, content: bytes) -> None:
    library = Library()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(content)
    with pytest.raises(InvalidModelError):
        library.import_model(bad)
    assert library.entries() == []
    assert list(library.models_dir.iterdir()) == []


def test_truncated_and_directory_and_missing(tiny_model: Path, tmp_path: Path) -> None:
    library = Library()
    with open(tiny_model, "r+b") as handle:
        handle.truncate(tiny_model.stat().st_size - 1000)
    with pytest.raises(InvalidModelError, match="truncated"):
        library.import_model(tiny_model)
    with pytest.raises(InvalidModelError, match="folder"):
        library.import_model(tmp_path)
    with pytest.raises(InvalidModelError, match="does not exist"):
        library.import_model(tmp_path / "missing.gguf")
    assert library.entries() == []


def test_files_dropped_into_models_folder_are_found(tiny_model: Path) -> None:
    library = Library()
    nested = library.models_dir / "author" / "repo"
    nested.mkdir(parents=True)
    shutil.copyfile(tiny_model, nested / "dropped.gguf")
    (library.models_dir / "broken.gguf").write_text("oops")
    entries = {e.name: e for e in library.entries()}
    assert entries["dropped"].status == "ok"
    assert entries["broken"].status == "invalid"
    assert "not a GGUF" in (entries["broken"].error or "")


def test_name_clash_gets_a_suffix(
    tiny_model: Path, tiny_model_no_template: Path, tmp_path: Path
) -> None:
    library = Library()
    library.import_model(tiny_model)
    other = tmp_path / "other" / tiny_model.name
    other.parent.mkdir()
    shutil.copyfile(tiny_model_no_template, other)
    entry = library.import_model(other, copy=False)
    assert entry.name == "tiny-llama-F16 (2)"


def test_linked_file_deleted_outside_the_app(tiny_model: Path) -> None:
    library = Library()
    library.import_model(tiny_model, copy=False)
    tiny_model.unlink()
    (entry,) = library.entries()
    assert entry.status == "missing"
    with pytest.raises(ModelNotFoundError, match="missing"):
        library.resolve(entry.name)
    _removed, deleted = library.remove(entry.name)
    assert not deleted
    assert library.entries() == []


def test_remove_managed_deletes_the_file(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model)
    _removed, deleted = library.remove(entry.name)
    assert deleted and not entry.path.exists()
    assert library.entries() == []


def test_remove_linked_keeps_the_file_unless_asked(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model, copy=False)
    library.remove(entry.name)
    assert tiny_model.exists()
    entry = library.import_model(tiny_model, copy=False)
    library.remove(entry.name, delete_file=True)
    assert not tiny_model.exists()


def test_split_models_are_one_entry(tiny_model: Path) -> None:
    library = Library()
    for i in (1, 2):
        shutil.copyfile(tiny_model, library.models_dir / f"big-{i:05d}-of-00002.gguf")
    (entry,) = library.entries()
    assert entry.name == "big"
    assert entry.size_bytes == 2 * tiny_model.stat().st_size
    assert model_name_for(library.models_dir / "big-00002-of-00002.gguf") == "big"


def test_resolve_name_or_path(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model)
    assert library.resolve("tiny-llama-f16") == entry.path
    assert library.resolve(str(tiny_model)) == tiny_model
    with pytest.raises(ModelNotFoundError, match="No model named"):
        library.resolve("nothing-like-it")


def test_rename(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model)
    renamed = library.rename(entry.name, "My model")
    assert renamed.path == entry.path
    assert [e.name for e in library.entries()] == ["My model"]


def test_facts_are_cached_by_size_and_mtime(tiny_model: Path) -> None:
    library = Library()
    library.import_model(tiny_model, copy=False)
    record = next(iter(_index(library)["models"].values()))
    assert record["cache"]["facts"]["architecture"] == "llama"


@pytest.mark.integration
def test_starter_model_is_installed_once(gemma_model: Path) -> None:
    library = Library()
    assert library.starter_needed()
    entry = library.install_starter()
    assert entry is not None and entry.architecture == "gemma3"
    assert entry.provenance.get("starter")
    assert not library.starter_needed()
    library.remove(entry.name)
    assert not library.starter_needed()  # removed on purpose: not brought back
