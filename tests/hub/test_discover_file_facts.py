"""The Discover page's line about the selected file: exact from its own header, read off the GUI
thread when the repository opens or the file is selected; "≈" and a sentence when it cannot be."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubserver import HubFile, LocalHub

from slmdesk.common.format import human_size
from slmdesk.models import hardware
from slmdesk.models.gguf_info import read_gguf_info

TIMEOUT = 60_000
REPO = "slmtest/gemma-facts-GGUF"


@pytest.fixture
def discover(qtbot: Any) -> Iterator[Any]:
    from slmdesk.ui.discover.controller import DiscoverController
    from slmdesk.ui.discover.view import DiscoverView
    from slmdesk.ui.runtime.tasks import TaskRunner

    tasks = TaskRunner()
    view = DiscoverView()
    qtbot.addWidget(view)
    controller = DiscoverController(view, tasks)
    yield controller
    controller.shutdown()
    tasks.shutdown()


def test_selecting_a_file_reads_its_own_header(
    qtbot: Any, discover: Any, local_hub: LocalHub, gemma_model: Path, tmp_path: Path
) -> None:
    other = tmp_path / "gemma-Q5_K_M.gguf"
    shutil.copyfile(gemma_model, other)  # the same bytes under another name: read again
    repo = local_hub.add_repo(REPO)
    repo.add(HubFile.lfs("gemma-Q4_K_M.gguf", gemma_model))
    repo.add(HubFile.lfs("gemma-Q5_K_M.gguf", other))
    expected = hardware.estimate_memory(read_gguf_info(gemma_model)).total_bytes
    facts = discover.view.file_facts

    discover.open_repo(REPO)
    qtbot.waitUntil(lambda: "parameters" in facts.text(), timeout=TIMEOUT)
    first = facts.text()
    assert "gemma3" in first and "32,768 tokens of context" in first
    assert "no chat template" in first and "≈" not in first
    assert f"needs {human_size(expected)} of memory" in first

    names = [m.name for m in discover.repo.models]
    other_row = 1 - names.index(discover.repo.recommended.name)
    other_name = names[other_row]
    local_hub.reset_log()
    discover.view.files.selectRow(other_row)
    qtbot.waitUntil(
        lambda: facts.text().startswith(other_name) and "parameters" in facts.text(),
        timeout=TIMEOUT,
    )
    assert "≈" not in facts.text()
    assert discover.view.files.item(other_row, 3).text() == human_size(expected)
    assert 0 < sum(r.body_bytes for r in local_hub.cdn_requests()) <= 4 << 20


def test_a_header_that_cannot_be_read_says_why_and_keeps_the_approximation(
    qtbot: Any, discover: Any, local_hub: LocalHub, gemma_model: Path
) -> None:
    local_hub.add_repo(REPO).add(HubFile.lfs("gemma-Q4_K_M.gguf", gemma_model))
    local_hub.faults.ignore_range = True
    discover.open_repo(REPO)
    facts = discover.view.file_facts
    qtbot.waitUntil(lambda: "ignored a range request" in facts.text(), timeout=TIMEOUT)
    assert "≈" in facts.text()
    assert discover.view.files.item(0, 3).text().startswith("≈ ")
