"""Each other app's layout, built from its documentation, read by its source module."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from slmdesk.models.library.sources import folder, gpt4all, hf_cache, jan, lmstudio, ollama
from slmdesk.models.library.sources.base import MAX_JSON_BYTES
from slmdesk.models.library.sources.catalog import layout_of
from slmdesk.models.library.sources.known_places import candidates, detect
from tests.models.source_layouts import (
    hf_repo,
    jan_model,
    lmstudio_model,
    ollama_manifest,
    ollama_model,
    put_file,
)


def test_hf_cache_lists_the_current_snapshot_as_org_name_file(
    tiny_model: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    old = hf_repo(cache, "bartowski/Tiny-GGUF", tiny_model, ["Tiny-Q8_0.gguf"], "b" * 40)
    current = hf_repo(cache, "bartowski/Tiny-GGUF", tiny_model, ["Tiny-Q4_K_M.gguf"], "c" * 40)
    hf_repo(cache, "someone/Other", tiny_model, ["a.gguf", "README.md"])
    (cache / "datasets--x--y" / "snapshots" / "d").mkdir(parents=True)

    found = hf_cache.scan(cache).models

    assert [(f.name, f.path) for f in found] == [
        ("bartowski/Tiny-GGUF/Tiny-Q4_K_M", current[0]),
        ("someone/Other/a", cache / "models--someone--Other" / "snapshots" / ("a" * 40) / "a.gguf"),
    ]
    assert old[0] not in [f.path for f in found]
    assert found[0].path.is_symlink() and found[0].path.resolve().parent.name == "blobs"
    assert found[0].provenance == {
        "app": "huggingface",
        "repo": "bartowski/Tiny-GGUF",
        "revision": "c" * 40,
        "file": "Tiny-Q4_K_M.gguf",
    }


def test_hf_cache_without_refs_lists_every_snapshot_and_skips_broken_links(
    tiny_model: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "hub"
    hf_repo(cache, "o/r", tiny_model, ["one.gguf"], "1" * 40)
    hf_repo(cache, "o/r", tiny_model, ["two.gguf"], "2" * 40)
    (cache / "models--o--r" / "refs" / "main").unlink()
    broken = cache / "models--o--r" / "snapshots" / ("2" * 40) / "gone.gguf"
    broken.symlink_to("../../blobs/nothing")

    result = hf_cache.scan(cache)

    assert sorted(f.name for f in result.models) == ["o/r/one", "o/r/two"]
    assert any(path == str(broken) for path, _ in result.skipped)


def test_ollama_lists_models_under_their_ollama_names(tiny_model: Path, tmp_path: Path) -> None:
    store = tmp_path / "ollama" / "models"
    blob = ollama_model(store, tiny_model, "llama3.2", "1b")
    other = tmp_path / "other.gguf"
    other.write_bytes(tiny_model.read_bytes() + b"x")
    ollama_model(store, other, "mymodel", "v1", namespace="someone")
    third = tmp_path / "third.gguf"
    third.write_bytes(tiny_model.read_bytes() + b"yy")
    ollama_model(store, third, "Tiny-GGUF", "Q4_K_M", namespace="bartowski", host="hf.co")

    found = {f.name: f for f in ollama.scan(store).models}

    assert set(found) == {"llama3.2:1b", "someone/mymodel:v1", "hf.co/bartowski/Tiny-GGUF:Q4_K_M"}
    assert found["llama3.2:1b"].path == blob
    assert blob.name.startswith("sha256-") and len(blob.name) == len("sha256-") + 64
    assert found["llama3.2:1b"].provenance["app"] == "ollama"


def test_ollama_refuses_hostile_manifests(tiny_model: Path, tmp_path: Path) -> None:
    store = tmp_path / "models"
    ollama_model(store, tiny_model, "good", "latest")
    library = store / "manifests" / "registry.ollama.ai" / "library"
    outside = tmp_path / "outside.gguf"
    put_file(tiny_model, outside)
    bad = {
        "huge": "[" * 10 + " " * (MAX_JSON_BYTES + 10),
        "broken": "{not json",
        "escape": ollama_manifest("sha256:../../../outside.gguf"),
        "traversal": ollama_manifest("sha256-" + "a" * 64 + "/../../../outside.gguf"),
        "nodigest": json.dumps({"layers": [{"mediaType": ollama.MODEL_MEDIA_TYPE}]}),
        "notalist": json.dumps({"layers": {"a": 1}}),
        "nested": "[" * 100_000 + "]" * 100_000,
        "missing": ollama_manifest("sha256:" + "e" * 64),
        "adapter": ollama_manifest(
            "sha256:" + "f" * 64, [{"mediaType": "application/vnd.ollama.image.adapter"}]
        ),
    }
    for name, text in bad.items():
        (library / name).mkdir(parents=True)
        (library / name / "latest").write_text(text)
    not_gguf = store / "blobs" / ("sha256-" + "9" * 64)
    not_gguf.write_bytes(b"safetensors, not a gguf")
    (library / "notgguf").mkdir()
    (library / "notgguf" / "latest").write_text(ollama_manifest("sha256:" + "9" * 64))

    result = ollama.scan(store)

    assert [f.name for f in result.models] == ["good:latest"]
    reasons = dict(result.skipped)
    assert "larger than" in reasons[str(library / "huge" / "latest")]
    assert "not valid JSON" in reasons[str(library / "broken" / "latest")]
    assert "not sha256" in reasons[str(library / "escape" / "latest")]
    assert "not sha256" in reasons[str(library / "traversal" / "latest")]
    assert "not a GGUF" in reasons[str(library / "notgguf" / "latest")]
    assert "not there" in reasons[str(library / "missing" / "latest")]
    assert len(result.skipped) == len(bad) + 1


def test_lmstudio_gpt4all_and_jan_layouts(tiny_model: Path, tmp_path: Path) -> None:
    lm = tmp_path / "lmstudio" / "models"
    lm_file = lmstudio_model(lm, tiny_model, "lmstudio-community", "Tiny-GGUF", "Tiny-Q4_K_M.gguf")
    put_file(tiny_model, lm / "lmstudio-community" / "Tiny-GGUF" / "notes.txt")
    gpt = tmp_path / "GPT4All"
    put_file(tiny_model, gpt / "Llama-3.2-1B-Instruct-Q4_0.gguf")
    (gpt / "chat-1.chat").write_text("chat")
    jan_root = tmp_path / "jan"
    jan_model(jan_root, tiny_model, "tiny-q4", "Tiny Model Q4")
    jan_model(jan_root, tiny_model, "untitled")
    new_jan = jan_root / "llamacpp" / "models" / "qwen3-0.6b"
    put_file(tiny_model, new_jan / "model.gguf")
    (new_jan / "model.yml").write_text("model_path: model.gguf\n")

    assert [(f.name, f.path) for f in lmstudio.scan(lm).models] == [("Tiny-Q4_K_M", lm_file)]
    assert [f.name for f in gpt4all.scan(gpt).models] == ["Llama-3.2-1B-Instruct-Q4_0"]
    assert sorted(f.name for f in jan.scan(jan_root).models) == [
        "Tiny Model Q4",
        "qwen3-0.6b",
        "untitled",
    ]


def test_split_models_list_their_first_part_only(tiny_model: Path, tmp_path: Path) -> None:
    for part in (1, 2):
        put_file(tiny_model, tmp_path / "f" / f"big-0000{part}-of-00002.gguf")

    assert [f.path.name for f in folder.scan(tmp_path / "f").models] == ["big-00001-of-00002.gguf"]


def test_a_folder_with_a_symlink_loop_and_an_unreadable_folder_is_read_safely(
    tiny_model: Path, tmp_path: Path
) -> None:
    root = tmp_path / "mine"
    put_file(tiny_model, root / "a" / "one.gguf")
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)
    (root / "self.gguf").symlink_to(root / "self.gguf")
    locked = root / "locked"
    put_file(tiny_model, locked / "two.gguf")
    locked.chmod(0)
    try:
        result = folder.scan(root)
    finally:
        locked.chmod(0o755)

    assert [f.name for f in result.models] == (["one"] if os.geteuid() != 0 else ["one", "two"])
    assert str(root / "self.gguf") in dict(result.skipped)


def test_layout_of_an_added_folder(tiny_model: Path, tmp_path: Path) -> None:
    ollama_model(tmp_path / "o", tiny_model, "m", "t")
    hf_repo(tmp_path / "hf" / "hub", "o/r", tiny_model, ["x.gguf"])
    (tmp_path / "plain").mkdir()

    assert layout_of(tmp_path / "o") == ("ollama", tmp_path / "o")
    assert layout_of(tmp_path / "hf") == ("huggingface", tmp_path / "hf" / "hub")
    assert layout_of(tmp_path / "plain") == ("folder", tmp_path / "plain")


@pytest.mark.parametrize("system", ["linux", "win32", "darwin"])
def test_known_places_per_system(system: str, tmp_path: Path) -> None:
    env = {"SLMDESK_APP_FOLDERS_HOME": str(tmp_path)}

    places = {app: candidates(app, env, system)[0] for app in ("huggingface", "ollama")}

    assert places["huggingface"] == tmp_path / ".cache" / "huggingface" / "hub"
    assert places["ollama"] == tmp_path / ".ollama" / "models"
    assert candidates("lmstudio", env, system)[0] == tmp_path / ".lmstudio" / "models"
    gpt = candidates("gpt4all", env, system)[0]
    expected = {
        "linux": tmp_path / ".local" / "share" / "nomic.ai" / "GPT4All",
        "win32": tmp_path / "AppData" / "Local" / "nomic.ai" / "GPT4All",
        "darwin": tmp_path / "Library" / "Application Support" / "nomic.ai" / "GPT4All",
    }
    assert gpt == expected[system]


def test_environment_variables_the_apps_honour_come_first(tmp_path: Path) -> None:
    env = {
        "SLMDESK_APP_FOLDERS_HOME": str(tmp_path),
        "HF_HOME": str(tmp_path / "hfhome"),
        "OLLAMA_MODELS": str(tmp_path / "om"),
    }
    (tmp_path / "om").mkdir()

    found = {p.app: p for p in detect(env, "linux")}

    assert found["huggingface"].path == tmp_path / "hfhome" / "hub"
    assert not found["huggingface"].found
    assert found["ollama"].path == tmp_path / "om" and found["ollama"].found
    assert candidates("huggingface", {**env, "HF_HUB_CACHE": "/x"}, "linux") == [Path("/x")]
    assert detect({**env, "SLMDESK_APP_FOLDERS": "off"}) == []
