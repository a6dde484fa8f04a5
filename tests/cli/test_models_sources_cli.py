"""`slmdesk models sources` and other apps' models through `models list` / `models remove`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.cli.clirun import assert_clean_failure, run_cli
from tests.models.source_layouts import ollama_model, put_file


def _listing() -> dict[str, dict]:
    out = run_cli("models", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {m["name"]: m for m in json.loads(out.stdout)["models"]}


def test_ollama_models_are_listed_forgotten_and_deleted_with_a_warning(tiny_model: Path) -> None:
    store = Path(os.environ["SLMDESK_APP_FOLDERS_HOME"]) / ".ollama" / "models"
    blob = ollama_model(store, tiny_model, "llama3.2", "1b")

    models = _listing()
    assert models["llama3.2:1b"]["source"] == "ollama"
    assert models["llama3.2:1b"]["managed"] is False
    assert models["llama3.2:1b"]["path"] == str(blob)
    sources = {
        s["app"]: s for s in json.loads(run_cli("models", "sources", "--json").stdout)["sources"]
    }
    assert sources["ollama"]["found"] and sources["ollama"]["models"] == 1

    forgot = run_cli("models", "remove", "llama3.2:1b", "--json")
    assert forgot.returncode == 0, forgot.stderr
    assert json.loads(forgot.stdout)["file_deleted"] is False
    assert blob.exists() and _listing() == {}

    assert run_cli("models", "sources", "disable", "ollama").returncode == 0
    assert run_cli("models", "sources", "enable", "ollama").returncode == 0
    assert "llama3.2:1b" in _listing()

    deleted = run_cli("models", "remove", "llama3.2:1b", "--delete-file")
    assert deleted.returncode == 0, deleted.stderr
    assert "This file belongs to Ollama; deleting it breaks the model there." in deleted.stderr
    assert not blob.exists()


def test_an_added_folder_that_goes_away_lists_its_models_as_unavailable(
    tiny_model: Path, tmp_path: Path
) -> None:
    drive = tmp_path / "usb"
    put_file(tiny_model, drive / "models" / "small.gguf")
    added = run_cli("models", "sources", "add", str(drive), "--json")
    assert added.returncode == 0, added.stderr
    assert _listing()["small"]["status"] == "ok"

    drive.rename(tmp_path / "unplugged")
    small = _listing()["small"]
    assert small["status"] == "unavailable"
    assert small["error"] == f"Drive or folder not available: {drive}"
    assert (small["architecture"], small["size_bytes"]) == ("llama", tiny_model.stat().st_size)
    table = run_cli("models", "list").stdout
    assert "unavailable" in table

    (tmp_path / "unplugged").rename(drive)
    assert _listing()["small"]["status"] == "ok"
    assert run_cli("models", "sources", "remove", str(drive)).returncode == 0
    assert _listing() == {}


def test_bad_sources_arguments_are_one_clear_line(tmp_path: Path) -> None:
    assert_clean_failure(run_cli("models", "sources", "add", str(tmp_path / "no")), "not a folder")
    assert_clean_failure(run_cli("models", "sources", "enable", "winamp"), "not an app")
    assert_clean_failure(run_cli("models", "sources", "add"), "needs a folder")
    assert run_cli("models", "sources", "frob").returncode == 2
