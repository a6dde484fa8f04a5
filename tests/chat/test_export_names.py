"""Export file names from chat titles: safe on every operating system, bounded, never empty."""

from __future__ import annotations

import random
from pathlib import Path

from slmdesk.chat.conversations import make_title
from slmdesk.chat.export_names import FORBIDDEN, MAX_NAME_BYTES, export_file_name


def test_the_title_becomes_the_name() -> None:
    assert export_file_name("Bread at home") == "Bread at home.md"
    assert export_file_name("Bread at home", ".json") == "Bread at home.json"
    assert export_file_name("Ünïcödé ✓ 日本語") == "Ünïcödé ✓ 日本語.md"


def test_characters_any_system_forbids_are_removed() -> None:
    assert export_file_name('What is a/b? <x> "y" c:\\d*e|f') == "What is a b x y c d e f.md"
    assert export_file_name("tab\there\nnew\x00line\x7f") == "tab here new line.md"
    assert export_file_name("\u202eevil\u200b.txt") == "evil.txt.md"
    assert export_file_name("...hidden") == "hidden.md"
    assert export_file_name("trailing dots...") == "trailing dots.md"
    assert export_file_name("CON") == "CON chat.md"
    assert export_file_name("lpt1.notes") == "lpt1.notes chat.md"


def test_empty_or_unusable_titles_fall_back_to_chat() -> None:
    for title in (None, "", "   ", "???", "///", "\x00\x01", "...", "\u200b"):
        assert export_file_name(title) == "chat.md"


def test_long_titles_are_bounded_in_bytes() -> None:
    name = export_file_name(make_title("é" * 400))
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES + 3
    assert "…" not in name


def test_random_titles_give_names_a_real_folder_accepts(tmp_path: Path) -> None:
    rng = random.Random(7)
    pool = [chr(c) for c in range(0, 0x250)] + list("日本語🙂\u202e\u200b\ud800") + list(FORBIDDEN)
    for _ in range(300):
        title = "".join(rng.choice(pool) for _ in range(rng.randint(0, 80)))
        name = export_file_name(title)
        assert name.endswith(".md") and len(name) > 3
        assert not FORBIDDEN & set(name)
        assert all(ord(c) >= 32 and c != "\x7f" for c in name)
        stem = name[:-3]
        assert stem == stem.strip(" .") and stem
        (tmp_path / name).write_bytes(b"x")
        (tmp_path / name).unlink()
