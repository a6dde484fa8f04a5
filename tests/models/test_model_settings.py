"""A model's saved defaults: kept in its library record, hostile values dropped."""

from __future__ import annotations

import json
from pathlib import Path

from slmdesk.common import paths
from slmdesk.models.library import Library
from slmdesk.models.model_settings import ModelSettings


def test_hostile_values_are_dropped_not_fatal() -> None:
    stored = {
        "context_length": 1 << 40,
        "threads": "eight",
        "gpu_layers": True,
        "system_prompt": "x" * 100_000,
        "sampling": {
            "temperature": float("nan"),
            "top_p": 0.9,
            "top_k": 40.5,
            "max_tokens": 256,
            "seed": -3,
            "unknown": 1,
        },
    }
    settings = ModelSettings.from_dict(stored)
    assert settings.context_length == 0 and settings.threads == 0
    assert settings.gpu_layers is None
    assert settings.system_prompt is not None and len(settings.system_prompt) == 32 * 1024
    assert settings.sampling == {"top_p": 0.9, "max_tokens": 256}
    assert ModelSettings.from_dict(["not", "a", "dict"]).is_empty()


def test_merged_sampling_lets_chosen_values_win() -> None:
    saved = ModelSettings(sampling={"temperature": 0.2, "top_k": 10})
    assert saved.merged_sampling({"temperature": 0.9, "seed": None}) == {
        "temperature": 0.9,
        "top_k": 10,
    }


def test_settings_follow_a_rename_and_survive_a_restart(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model)
    saved = ModelSettings(
        context_length=512, threads=2, system_prompt="Be brief.", sampling={"temperature": 0.3}
    )
    assert library.save_settings(entry.name, saved).settings == saved.as_dict()
    library.rename(entry.name, "renamed")
    again = Library()  # a new process would see the same
    assert again.settings_of("renamed") == saved
    assert again.settings_of(entry.name).is_empty()  # the old name is gone
    listed = {e.name: e for e in again.entries()}
    assert listed["renamed"].as_dict()["settings"]["system_prompt"] == "Be brief."


def test_empty_settings_clear_the_record_and_removal_forgets_them(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model)
    library.save_settings(entry.name, ModelSettings(threads=3))
    library.save_settings(entry.name, ModelSettings())
    index = json.loads(paths.library_index_path().read_text(encoding="utf-8"))
    assert "settings" not in index["models"][entry.name]
    library.save_settings(entry.name, ModelSettings(threads=3))
    library.remove(entry.name)
    second = library.import_model(tiny_model)
    assert library.settings_of(second.name).is_empty()


def test_damaged_settings_in_the_index_do_not_hide_the_model(tiny_model: Path) -> None:
    library = Library()
    entry = library.import_model(tiny_model)
    path = paths.library_index_path()
    index = json.loads(path.read_text(encoding="utf-8"))
    index["models"][entry.name]["settings"] = {"sampling": "garbage", "threads": -5}
    path.write_text(json.dumps(index), encoding="utf-8")
    listed = Library().get(entry.name)
    assert listed.status == "ok" and listed.settings == {}
