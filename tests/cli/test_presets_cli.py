"""``slmdesk presets``, ``slmdesk models settings`` and what ``slmdesk chat`` takes from them."""

from __future__ import annotations

import json
from pathlib import Path

from slmdesk.models.library import Library
from tests.cli.clirun import assert_clean_failure, run_cli


def _json(*args: str) -> dict:
    out = run_cli(*args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_presets_save_list_show_rename_delete(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Answer in French.\nKeep it short.", encoding="utf-8")
    assert _json("presets", "save", "French", "--file", str(prompt))["name"] == "French"
    listed = _json("presets", "list")["presets"]
    assert {"name": "French", "text": "Answer in French.\nKeep it short."} in listed
    assert run_cli("presets", "show", "french").stdout == "Answer in French.\nKeep it short.\n"
    assert _json("presets", "rename", "French", "Français")["name"] == "Français"
    _json("presets", "delete", "Français")
    assert_clean_failure(run_cli("presets", "show", "Français"), "no preset named")
    binary = tmp_path / "binary.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    assert_clean_failure(run_cli("presets", "save", "x", "--file", str(binary)), "not UTF-8")


def test_model_settings_are_saved_and_used_by_chat(tiny_model: Path) -> None:
    name = Library().import_model(tiny_model).name
    assert _json("models", "settings", name)["settings"] == {}
    _json("presets", "save", "Brief", "--text", "Be brief.")
    saved = _json(
        "models",
        "settings",
        name,
        "--ctx",
        "1024",
        "--threads",
        "1",
        "--temperature",
        "0.3",
        "--preset",
        "Brief",
    )["settings"]
    assert saved == {
        "context_length": 1024,
        "threads": 1,
        "system_prompt": "Be brief.",
        "sampling": {"temperature": 0.3},
    }
    reply = _json("chat", name, "--prompt", "hello", "--max-tokens", "4")
    assert reply["load"] == {"context_length": 1024, "n_threads": 1}
    assert reply["system_prompt"] == "Be brief."
    # values given on the command line win over the saved ones
    mine = _json(
        "chat", name, "--prompt", "hi", "--max-tokens", "4", "--ctx", "512", "--system", "Be kind."
    )
    assert mine["load"]["context_length"] == 512 and mine["system_prompt"] == "Be kind."
    preset = _json("chat", name, "--prompt", "hi", "--max-tokens", "4", "--preset", "brief")
    assert preset["system_prompt"] == "Be brief."
    cleared = _json("models", "settings", name, "--clear")
    assert cleared["settings"] == {}


def test_bad_values_are_one_clear_line(tiny_model: Path) -> None:
    name = Library().import_model(tiny_model).name
    out = run_cli("models", "settings", name, "--temperature", "9")
    assert out.returncode == 2 and "must be from 0 to 5" in out.stderr
    assert_clean_failure(run_cli("models", "settings", "nope"), "nope")
    both = run_cli("chat", name, "--prompt", "hi", "--system", "a", "--preset", "Concise")
    assert_clean_failure(both, "either --system or --preset")
