"""Screenshots of every page in the light and the dark theme, from the real app window.

Usage (a 1366x768 screen shows what a small laptop shows)::

    xvfb-run -s '-screen 0 1366x768x24' python -m tests.screenshots OUTDIR

Why a script and not a test: people look at these pictures (the docs' screenshots, a review of
what is cut off or invisible), so it builds the window exactly as ``slmdesk gui`` does, sized by
the window's own first-run rule, with a throwaway data folder holding the starter model (Gemma 3
270M, from its package), two synthesized models with long, similar names, and two conversations,
one with a code block. Discover talks to the local test Hub (``tests/hub/hubserver.py``) with a
search and an open repository, so no network is needed.

Writes ``chat-light.png``, ``chat-settings-light.png``, ``library-light.png``,
``discover-light.png``, ``optimize-light.png``, ``optimize-pruning-light.png``,
``settings-light.png`` and the same ``-dark``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PAGES = ("Chat", "Library", "Discover", "Optimize", "Settings")
THEMES = ("light", "dark")
TIMEOUT = 60.0
CODE_REPLY = """Here is a function that reverses the words of a sentence:

```python
def reverse_words(sentence: str) -> str:
    \"\"\"Return the words of ``sentence`` in reverse order.\"\"\"
    return " ".join(reversed(sentence.split()))
```

For example, `reverse_words("small models run anywhere")` gives `"anywhere run models small"`."""


def _wait(
    app: object, condition: Callable[[], bool], what: str, why: Callable[[], str] = str
) -> None:
    """Run the event loop until ``condition`` holds (or give up, saying ``why()``)."""
    from PySide6.QtCore import QEventLoop, QTimer

    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} {why()}")
        loop = QEventLoop()
        QTimer.singleShot(20, loop.quit)
        loop.exec()


def _settle(app: object, rounds: int = 10) -> None:
    """Let layouts and deferred paints finish."""
    _wait(app, lambda: True, "nothing")
    from PySide6.QtCore import QEventLoop, QTimer

    for _ in range(rounds):
        loop = QEventLoop()
        QTimer.singleShot(15, loop.quit)
        loop.exec()


def _prepare_data(home: Path, tiny_dir: Path) -> None:
    """Models and conversations in the throwaway data folder."""
    from slmdesk.chat.conversations import ConversationStore
    from slmdesk.models.library import Library
    from slmdesk.models.synth import TinyModelSpec, write_tiny_llama

    library = Library()
    library.install_starter()
    for name in ("gemma-3-270m-tiny-synthesized-F16", "gemma-3-270m-tiny-synthesized-pruned"):
        path = write_tiny_llama(tiny_dir / f"{name}.gguf", TinyModelSpec(name=name))
        library.import_model(path, name=name)
    with ConversationStore() as store:
        first = store.create(model="gemma-3-270m-Q4_K_M")
        store.add_message(first.id, "user", "Plan a weekend trip to the mountains for two people")
        store.add_message(
            first.id,
            "assistant",
            "Day 1: drive up in the morning, hike the lake trail, dinner in the village.\n\n"
            "Day 2: sunrise viewpoint, a long lunch, then head home before the traffic.",
        )
        second = store.create(model="gemma-3-270m-Q4_K_M")
        store.add_message(second.id, "user", "Write a Python function that reverses words")
        store.add_message(second.id, "assistant", CODE_REPLY)


def _start_hub(tiny: Path):  # type: ignore[no-untyped-def]
    """The local test Hub with two repositories shaped like real GGUF repositories."""
    from tests.hub.hubserver import HubFile, LocalHub

    hub = LocalHub().start()
    card = b"---\nlicense: gemma\n---\n# Gemma 3 270M GGUF\n\nQuantized builds for llama.cpp.\n"
    for repo_id, downloads in (
        ("unsloth/gemma-3-270m-it-GGUF", 120_000),
        ("ggml-org/gemma-3-270m-it-qat-GGUF", 45_000),
        ("bartowski/google_gemma-3-270m-it-GGUF", 30_000),
    ):
        repo = hub.add_repo(repo_id, downloads=downloads, likes=downloads // 900, license="gemma")
        for quant in ("Q4_K_M", "Q8_0", "F16"):
            repo.add(HubFile.lfs(f"gemma-3-270m-it-{quant}.gguf", tiny))
        repo.add(HubFile.small("README.md", card))
    return hub


def main(argv: list[str]) -> int:
    """Write the screenshots into the folder named by ``argv[0]``."""
    if len(argv) != 1:
        print("usage: python -m tests.screenshots OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="slmdesk-shots-"))
    os.environ["SLMDESK_HOME"] = str(work / "home")
    os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ.pop("HF_TOKEN", None)
    from slmdesk.models.synth import write_tiny_llama

    tiny = write_tiny_llama(work / "hub-tiny.gguf")
    hub = _start_hub(tiny)
    os.environ["HF_ENDPOINT"] = hub.url  # before huggingface_hub is imported
    _prepare_data(work / "home", work)

    from slmdesk.app import build_window, make_application
    from slmdesk.ui.theme import apply_theme

    app = make_application()
    parts = build_window()
    window = parts.window
    window.show()
    try:
        _shoot(app, parts, out, apply_theme)
    finally:
        window.close()
        parts.shutdown()
        hub.stop()
    print(f"screenshots written to {out}")
    return 0


def _shoot(app, parts, out: Path, apply_theme) -> None:  # type: ignore[no-untyped-def]
    from slmdesk.ui.optimize.controller import OptimizeController

    window = parts.window
    optimizer = next(c for c in parts.controllers if isinstance(c, OptimizeController))
    chat = parts.chat_controller
    view = chat.view
    _wait(app, lambda: view.conversations.count() == 2, "the chat list")
    _wait(app, lambda: view.model_picker.count() == 3, "the model list")
    chat.load_model("gemma-3-270m-Q4_K_M")
    _wait(app, lambda: chat.loaded_name is not None, "the model to load")
    view.conversations.setCurrentRow(0)
    _wait(app, lambda: len(view.messages.widgets()) == 2, "the conversation")
    discover = parts.discover_controller.view
    discover.query.setText("gemma-3-270m")
    parts.discover_controller.search()
    _wait(app, lambda: discover.results.rowCount() == 3, "the search results", discover.status.text)
    discover.results.selectRow(0)
    _wait(app, lambda: discover.files.rowCount() > 0, "the repository's files")
    for theme in THEMES:
        apply_theme(app, theme)
        for page in PAGES:
            window.show_page(page)
            _settle(app)
            window.grab().save(str(out / f"{page.lower()}-{theme}.png"))
        window.show_page("Optimize")
        _wait(app, lambda: optimizer.select_model("gemma-3-270m-Q4_K_M"), "the model to optimize")
        optimizer.go(2)  # the pruning choices: radio buttons, a check box, the chart
        _settle(app)
        window.grab().save(str(out / f"optimize-pruning-{theme}.png"))
        optimizer.go(0)
        window.show_page("Chat")
        view.settings_button.setChecked(True)
        _settle(app)
        window.grab().save(str(out / f"chat-settings-{theme}.png"))
        view.settings_button.setChecked(False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
