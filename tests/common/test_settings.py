"""The settings store: in memory, saved after a short pause on its own thread, atomically."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from slmdesk.common import paths, settings
from slmdesk.common.settings import DEFAULTS, WRITER_THREAD, SettingsStore

WAIT = 30.0  # generous: the machine running the tests may be busy


class WriteSpy:
    """Records the thread of every settings write; the real write still happens."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[str] = []
        real = settings.atomic_write_json

        def spy(path: Path, value: object) -> None:
            self.threads.append(threading.current_thread().name)
            real(path, value)

        monkeypatch.setattr(settings, "atomic_write_json", spy)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _writer_running() -> bool:
    return any(t.name == WRITER_THREAD for t in threading.enumerate())


def _on_disk(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_many_quick_changes_are_saved_in_one_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = WriteSpy(monkeypatch)
    store = SettingsStore(tmp_path / "settings.json", delay=0.5, max_delay=WAIT)
    for threads in range(1, 41):  # a spin box held down
        store.update(threads=threads)
    assert store.get("threads") == 40  # readers see the change at once
    _wait_for(lambda: not store.pending(), "the settings were not saved")
    assert len(spy.threads) == 1
    assert store.saves == 1
    assert _on_disk(tmp_path / "settings.json")["threads"] == 40


def test_the_write_happens_off_the_calling_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = WriteSpy(monkeypatch)
    folder = tmp_path / "config"
    path = folder / "settings.json"
    store = SettingsStore(path, delay=5.0, max_delay=WAIT)
    store.update(theme="dark")
    assert not path.exists()  # nothing written by update itself
    assert spy.threads == []
    assert store.flush(timeout=WAIT)
    assert spy.threads == [WRITER_THREAD]
    assert _on_disk(path)["theme"] == "dark"
    # no temporary file is left beside it
    assert [p.name for p in folder.iterdir()] == ["settings.json"]


def test_flush_saves_pending_changes_at_once_and_the_writer_ends(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    store = SettingsStore(path, delay=600.0, max_delay=600.0)  # would otherwise wait minutes
    store.update(context_length=8192, last_model="tiny")
    assert store.flush(timeout=WAIT)
    assert not store.pending()
    assert _on_disk(path) == {"context_length": 8192, "last_model": "tiny"}
    _wait_for(lambda: not _writer_running(), "the writer thread did not end")
    assert store.flush(timeout=WAIT)  # nothing pending: returns at once


def test_an_unwritable_folder_gives_a_message_not_an_exception(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the settings folder should be")
    path = blocker / "config" / "settings.json"
    store = SettingsStore(path, delay=0.05)
    seen: list[str | None] = []
    store.add_listener(seen.append)
    values = store.update(theme="light")  # does not raise
    assert values["theme"] == "light"
    assert store.flush(timeout=WAIT)
    assert seen and seen[-1] is not None
    message = seen[-1]
    assert message == store.last_error
    assert message.startswith("Settings could not be saved to ")
    assert str(path) in message and message.endswith(".")
    assert "\n" not in message
    assert store.get("theme") == "light"  # still in effect for this session


def test_a_later_save_that_works_clears_the_error(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.write_text("in the way")
    store = SettingsStore(folder / "settings.json", delay=0.05)
    seen: list[str | None] = []
    store.add_listener(seen.append)
    store.update(threads=2)
    assert store.flush(timeout=WAIT)
    assert store.last_error is not None
    folder.unlink()
    store.update(threads=3)
    assert store.flush(timeout=WAIT)
    assert store.last_error is None and seen[-1] is None
    assert _on_disk(folder / "settings.json")["threads"] == 3


def test_unknown_keys_are_kept_and_defaults_fill_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"from_a_newer_version": [1, 2], "theme": "dark"}))
    store = SettingsStore(path, delay=0.05)
    assert store.load() == {**DEFAULTS, "from_a_newer_version": [1, 2], "theme": "dark"}
    store.update(threads=4)
    assert store.flush(timeout=WAIT)
    assert _on_disk(path) == {"from_a_newer_version": [1, 2], "theme": "dark", "threads": 4}


def test_a_damaged_file_gives_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    assert SettingsStore(path).load() == DEFAULTS


def test_setting_the_same_value_again_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = WriteSpy(monkeypatch)
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"theme": "dark"}))
    store = SettingsStore(path, delay=0.05)
    store.update(theme="dark")
    assert not store.pending()
    assert store.flush(timeout=WAIT)
    assert spy.threads == []


def test_the_module_functions_follow_the_settings_file(slmdesk_home: Path) -> None:
    settings.update(last_model="tiny")
    assert settings.get("last_model") == "tiny"
    assert settings.flush(timeout=WAIT)
    assert _on_disk(paths.settings_path())["last_model"] == "tiny"
    assert settings.store().path == slmdesk_home / "config" / "settings.json"
