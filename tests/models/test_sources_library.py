"""The library with other apps' folders: listed in place, unavailable when unplugged, kept in step
with changes made outside, forgotten or deleted on request."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from slmdesk.common.errors import LibraryError, ModelNotFoundError
from slmdesk.models.library import Library
from slmdesk.models.library import facts as facts_module
from slmdesk.models.library.events import ADDED, REMOVED, UPDATED, LibraryChange
from tests.models.source_layouts import hf_repo, ollama_model, put_file


@pytest.fixture
def apps_home() -> Path:
    """The home folder the library looks for other apps' folders in (set by conftest)."""
    return Path(os.environ["SLMDESK_APP_FOLDERS_HOME"])


def _names(library: Library) -> dict[str, str]:
    return {e.name: e.status for e in library.entries()}


def test_known_apps_are_found_at_their_usual_places_and_listed_in_place(
    tiny_model: Path, apps_home: Path
) -> None:
    hf = hf_repo(apps_home / ".cache" / "huggingface" / "hub", "org/Tiny", tiny_model, ["t.gguf"])
    blob = ollama_model(apps_home / ".ollama" / "models", tiny_model, "llama3.2", "1b")
    library = Library()

    entries = {e.name: e for e in library.entries()}

    assert set(entries) == {"org/Tiny/t", "llama3.2:1b"}
    ollama_entry = entries["llama3.2:1b"].as_dict()
    assert ollama_entry["path"] == str(blob)
    assert ollama_entry["managed"] is False
    assert ollama_entry["source"] == "ollama"
    assert ollama_entry["status"] == "ok"
    assert ollama_entry["architecture"] == "llama"
    assert entries["org/Tiny/t"].path == hf[0]
    assert entries["org/Tiny/t"].source == "huggingface"
    assert list(library.models_dir.iterdir()) == []  # nothing copied
    assert library.resolve("llama3.2:1b") == blob
    sources = {s.app: s for s in library.sources()}
    assert sources["ollama"].found and sources["ollama"].enabled
    assert not sources["lmstudio"].found


def test_an_unplugged_folder_lists_its_models_as_unavailable_until_it_is_back(
    tiny_model: Path, tmp_path: Path
) -> None:
    drive = tmp_path / "drive"
    put_file(tiny_model, drive / "one.gguf")
    library = Library()
    library.add_source_folder(drive)
    assert _names(library) == {"one": "ok"}

    drive.rename(tmp_path / "drive-away")
    entry = library.get("one")

    assert entry.status == "unavailable"
    assert entry.error == f"Drive or folder not available: {drive}"
    assert entry.architecture == "llama"  # what was known about it is still shown
    with pytest.raises(ModelNotFoundError, match="cannot be used now: Drive or folder not"):
        library.resolve("one")
    with pytest.raises(LibraryError, match="Nothing was deleted"):
        library.remove("one", delete_file=True)
    library.sync_sources()
    assert _names(Library()) == {"one": "unavailable"}  # kept in the index, not forgotten

    (tmp_path / "drive-away").rename(drive)
    assert _names(library) == {"one": "ok"}


def test_a_poll_notices_files_added_changed_and_removed_outside_the_app(
    tiny_model: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "shelf"
    put_file(tiny_model, folder / "first.gguf")
    library = Library()
    library.add_source_folder(folder)
    heard: list[LibraryChange] = []
    library.subscribe(heard.append)
    assert library.sync_sources() == []  # nothing changed since the folder was added

    second = folder / "second.gguf"
    second.write_bytes(tiny_model.read_bytes())
    changes = library.sync_sources()
    assert [(c.kind, c.name) for c in changes] == [(ADDED, "second")]
    assert heard == changes

    with open(second, "ab") as handle:
        handle.write(b"\0" * 32)
    assert [(c.kind, c.name) for c in library.sync_sources()] == [(UPDATED, "second")]

    second.unlink()
    assert [(c.kind, c.name) for c in library.sync_sources()] == [(REMOVED, "second")]
    assert _names(library) == {"first": "ok"}

    folder.rename(tmp_path / "elsewhere")
    changes = library.sync_sources()
    assert [(c.kind, c.name, c.entry.status) for c in changes] == [
        (UPDATED, "first", "unavailable")
    ]
    (tmp_path / "elsewhere").rename(folder)
    assert [(c.kind, c.entry.status) for c in library.sync_sources()] == [(UPDATED, "ok")]


def test_remove_forgets_another_apps_model_until_its_app_is_turned_on_again(
    tiny_model: Path, apps_home: Path
) -> None:
    blob = ollama_model(apps_home / ".ollama" / "models", tiny_model, "llama3.2", "1b")
    library = Library()

    entry, deleted = library.remove("llama3.2:1b")

    assert (entry.name, deleted) == ("llama3.2:1b", False)
    assert blob.exists()
    assert _names(library) == {}
    library.sync_sources()
    assert _names(Library()) == {}
    library.set_app_enabled("ollama", False)
    library.set_app_enabled("ollama", True)
    assert _names(library) == {"llama3.2:1b": "ok"}


def test_turning_an_app_off_hides_its_models(tiny_model: Path, apps_home: Path) -> None:
    put_file(tiny_model, apps_home / ".lmstudio" / "models" / "pub" / "repo" / "m.gguf")
    library = Library()
    assert _names(library) == {"m": "ok"}

    library.set_app_enabled("lmstudio", False)

    assert _names(library) == {}
    assert not {s.app: s for s in library.sources()}["lmstudio"].enabled
    with pytest.raises(LibraryError, match="not an app"):
        library.set_app_enabled("winamp", False)


def test_deleting_a_hugging_face_cache_file_removes_the_link_and_its_blob(
    tiny_model: Path, apps_home: Path
) -> None:
    (link,) = hf_repo(
        apps_home / ".cache" / "huggingface" / "hub", "org/Tiny", tiny_model, ["t.gguf"]
    )
    blob = link.resolve()
    library = Library()

    entry, deleted = library.remove("org/Tiny/t", delete_file=True)

    assert deleted and entry.source == "huggingface"
    assert not link.is_symlink() and not blob.exists()
    assert tiny_model.exists()
    assert _names(library) == {}


def test_a_warm_listing_in_a_new_process_reads_no_header(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        put_file(tiny_model, tmp_path / "shelf" / f"m{i}.gguf")
    library = Library()
    library.add_source_folder(tmp_path / "shelf")
    assert len(library.entries()) == 3
    library.sync_sources()  # the window's poll keeps the facts read by listings in the index
    del library
    gc.collect()  # a new process: nothing in memory
    reads: list[Path] = []
    original = facts_module.read_gguf_info
    monkeypatch.setattr(
        facts_module, "read_gguf_info", lambda path: reads.append(path) or original(path)
    )

    entries = Library().entries()

    assert [e.status for e in entries] == ["ok"] * 3
    assert reads == []


def test_added_folders_are_validated_and_removable(tiny_model: Path, tmp_path: Path) -> None:
    library = Library()
    with pytest.raises(LibraryError, match="is not a folder"):
        library.add_source_folder(tmp_path / "nothing")
    put_file(tiny_model, tmp_path / "f" / "x.gguf")
    source = library.add_source_folder(tmp_path / "f")
    assert (source.app, source.added) == ("folder", True)

    library.remove_source_folder(tmp_path / "f")

    assert _names(library) == {}
    assert (tmp_path / "f" / "x.gguf").exists()
    with pytest.raises(LibraryError, match="not a folder added"):
        library.remove_source_folder(tmp_path / "f")


def test_a_change_between_the_first_listing_and_the_first_poll_is_announced(
    tiny_model: Path, tmp_path: Path
) -> None:
    put_file(tiny_model, tmp_path / "usb" / "one.gguf")
    Library().add_source_folder(tmp_path / "usb")
    gc.collect()  # a new window: this process has seen nothing yet
    library = Library()
    assert _names(library) == {"one": "ok"}  # what the window shows first

    (tmp_path / "usb").rename(tmp_path / "gone")  # unplugged before the first poll
    changes = library.sync_sources()

    assert [(c.kind, c.name, c.entry.status) for c in changes] == [(UPDATED, "one", "unavailable")]
