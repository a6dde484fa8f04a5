"""System prompt presets: one file, changed under a lock, hostile content bounded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from slmdesk.chat.presets import MAX_PRESETS, STARTER_PRESETS, PresetError, PresetStore


def test_a_new_install_offers_the_starter_presets_until_changed(tmp_path: Path) -> None:
    store = PresetStore(tmp_path / "presets.json")
    assert [p.name for p in store.all()] == [name for name, _ in STARTER_PRESETS]
    store.delete("concise")
    names = [p.name for p in PresetStore(tmp_path / "presets.json").all()]
    assert "Concise" not in names and len(names) == len(STARTER_PRESETS) - 1


def test_save_rename_delete(tmp_path: Path) -> None:
    store = PresetStore(tmp_path / "presets.json")
    store.save("  Pirate   talk ", "Talk like a pirate.")
    assert store.get("pirate TALK").text == "Talk like a pirate."
    store.save("Pirate talk", "Arr.")  # same name: the text is replaced
    assert [p.text for p in store.all() if p.name == "Pirate talk"] == ["Arr."]
    with pytest.raises(PresetError, match="already a preset named 'Teacher'"):
        store.rename("Pirate talk", "teacher")
    assert store.rename("pirate talk", "Sailor").name == "Sailor"
    store.delete("Sailor")
    with pytest.raises(PresetError, match="no preset named 'Sailor'"):
        store.get("Sailor")


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [
        ("", "x", "needs a name"),
        ("a" * 81, "x", "at most 80"),
        ("bad\x1bname", "x", "control"),
        ("ok", "x" * (32 * 1024 + 1), "at most 32,768"),
    ],
)
def test_bad_names_and_texts_are_refused(tmp_path: Path, name: str, text: str, words: str) -> None:
    with pytest.raises(PresetError, match=words):
        PresetStore(tmp_path / "presets.json").save(name, text)


def test_hostile_files_give_a_sentence_or_are_cleaned(tmp_path: Path) -> None:
    path = tmp_path / "presets.json"
    path.write_bytes(b"\xff\xfe not json")
    with pytest.raises(PresetError, match="is damaged"):
        PresetStore(path).all()
    path.write_bytes(b" " * (3 * 1024 * 1024))
    with pytest.raises(PresetError, match="too large"):
        PresetStore(path).all()
    items = [
        {"name": "ok", "text": "fine"},
        {"name": 5, "text": "x"},
        "junk",
        {"name": "OK", "text": "duplicate"},
        {"name": "long", "text": "y" * 40_000},
    ]
    items += [{"name": f"p{i}", "text": "t"} for i in range(500)]
    path.write_text(json.dumps({"presets": items}), encoding="utf-8")
    presets = PresetStore(path).all()
    assert presets[0].name == "ok" and presets[0].text == "fine"
    assert len(presets) == MAX_PRESETS
    assert all(p.name not in ("OK", "long") for p in presets)


_WRITER = """
import sys
from pathlib import Path
from slmdesk.chat.presets import PresetStore
store = PresetStore(Path(sys.argv[1]))
for i in range(15):
    store.save(f"{sys.argv[2]}-{i}", "text")
"""


def test_two_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "presets.json"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), who]) for who in ("a", "b")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    names = {p.name for p in PresetStore(path).all()}
    assert {f"{w}-{i}" for w in "ab" for i in range(15)} <= names
