"""Discover and the welcome screen agree with the Library and ``slmdesk inspect``.

On memory (the same formula on the same header, read from the Hub) and on which quantization is
the better one (the one table in `slmdesk.models.quant_types`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hubserver import HubFile, LocalHub

from slmdesk.hub import listing as hub
from slmdesk.models import hardware
from slmdesk.models.gguf_info import read_gguf_info
from slmdesk.ui.format import human_size

TIMEOUT = 60_000
BIG_MACHINE = hardware.MachineInfo(64 << 30, 48 << 30, 8, 16)
STARTER_FILE = "gemma-3-270m-it-Q4_K_M.gguf"


@pytest.fixture
def tasks(qtbot: Any) -> Iterator[Any]:
    from slmdesk.ui.runtime.tasks import TaskRunner

    runner = TaskRunner()
    yield runner
    runner.shutdown()


@pytest.fixture
def discover(qtbot: Any, tasks: Any) -> Iterator[Any]:
    from slmdesk.ui.discover.controller import DiscoverController
    from slmdesk.ui.discover.view import DiscoverView

    view = DiscoverView()
    qtbot.addWidget(view)
    controller = DiscoverController(view, tasks)
    yield controller
    controller.shutdown()


@pytest.fixture
def starter_hub(local_hub: LocalHub, gemma_model: Path) -> LocalHub:
    """The local Hub with the welcome screen's starter repository (the real Gemma 3 270M file)."""
    from slmdesk.ui.welcome import STARTER_REPO

    local_hub.add_repo(STARTER_REPO).add(HubFile.lfs(STARTER_FILE, gemma_model))
    return local_hub


def _inspect_estimate(path: Path) -> int:
    """What the Library and ``slmdesk inspect`` say the model needs."""
    return hardware.estimate_memory(read_gguf_info(path)).total_bytes


def test_welcome_and_discover_agree_with_inspect_on_the_starter(
    qtbot: Any, tasks: Any, discover: Any, starter_hub: LocalHub, gemma_model: Path
) -> None:
    from slmdesk.ui.welcome import STARTER_REPO, WelcomeController, WelcomeView

    expected = _inspect_estimate(gemma_model)

    view = WelcomeView()
    qtbot.addWidget(view)
    welcome = WelcomeController(view, tasks)
    welcome.check_starter()
    qtbot.waitUntil(lambda: welcome.starter is not None, timeout=TIMEOUT)
    assert welcome.starter is not None
    assert welcome.starter.name == STARTER_FILE
    assert abs(welcome.starter.estimate_bytes - expected) <= 0.01 * expected
    assert f"about {human_size(expected)} of memory" in view.starter_detail.text()

    # Discover shows the files at once, then the estimate from the header (exact: no "≈").
    discover.open_repo(STARTER_REPO)
    cell = lambda: discover.view.files.item(0, 3)  # noqa: E731
    qtbot.waitUntil(
        lambda: cell() is not None and cell().text() == human_size(expected), timeout=TIMEOUT
    )
    (model,) = discover.repo.models
    assert abs(model.estimate_bytes - expected) <= 0.01 * expected


def test_every_quantization_of_a_repo_is_estimated_from_one_header(
    starter_hub: LocalHub, gemma_model: Path, tmp_path: Path
) -> None:
    from slmdesk.ui.welcome import STARTER_REPO

    # A second file of the same model (trailing bytes make it differ, as a re-upload would).
    other = tmp_path / "gemma-Q5_K_M.gguf"
    shutil.copyfile(gemma_model, other)
    with open(other, "ab") as handle:
        handle.write(b"\0" * 4096)
    starter_hub.repos[STARTER_REPO].add(HubFile.lfs("gemma-3-270m-it-Q5_K_M.gguf", other))
    listing = hub.list_repo_models(
        STARTER_REPO, machine=BIG_MACHINE, with_card=False, read_header=True
    )
    by_quant = {m.quantization: m for m in listing.models}
    header_reads = [
        r for r in starter_hub.cdn_requests() if r.range and r.range.startswith("bytes=0-")
    ]
    assert len(header_reads) == 1  # one header for the whole repository
    exact = _inspect_estimate(gemma_model)
    # The header read is the recommended file's (the better quantization): exactly inspect's.
    q5, q4 = by_quant["Q5_K_M"], by_quant["Q4_K_M"]
    assert q5.recommended and q5.estimate_exact
    assert q5.estimate_bytes == exact
    # Its sibling: the same shape, weights from its size.
    assert not q4.estimate_exact
    assert abs(q4.estimate_bytes - exact) <= 0.01 * exact


def test_without_the_header_the_estimate_comes_from_the_size(starter_hub: LocalHub) -> None:
    from slmdesk.ui.welcome import STARTER_REPO

    listing = hub.list_repo_models(STARTER_REPO, machine=BIG_MACHINE, with_card=False)
    (model,) = listing.models
    assert not model.estimate_exact
    assert model.estimate_bytes == hardware.estimate_from_file_size(model.size_bytes).total_bytes
    assert starter_hub.cdn_requests() == []  # nothing read beyond the file list


def test_discover_recommends_q4_k_m_over_the_older_q4_1(
    qtbot: Any, discover: Any, local_hub: LocalHub, tiny_model_source: Path, tmp_path: Path
) -> None:
    # Q4_1 files are a little larger than Q4_K_M ones, and worse (llama.cpp's perplexity table).
    q4_1 = tmp_path / "m-Q4_1.gguf"
    q4_1.write_bytes(tiny_model_source.read_bytes() + b"\0" * 4096)
    repo = local_hub.add_repo("slmtest/legacy-quants-GGUF")
    repo.add(HubFile.lfs("m-Q4_1.gguf", q4_1))
    repo.add(HubFile.lfs("m-Q4_K_M.gguf", tiny_model_source))
    discover.open_repo("slmtest/legacy-quants-GGUF")
    qtbot.waitUntil(lambda: discover.view.files.rowCount() == 2, timeout=TIMEOUT)
    assert discover.repo.recommended is not None
    assert discover.repo.recommended.quantization == "Q4_K_M"
    starred = [
        discover.view.files.item(r, 0).text()
        for r in range(2)
        if discover.view.files.item(r, 0).text().startswith("★")
    ]
    assert starred == ["★ m-Q4_K_M.gguf"]
