"""What the Discover page says about the selected file, from its own header (no widgets here).

Once the file's header has been read on the Hub the line is exact: architecture, parameters,
trained context, whether it carries a chat template, and the memory verdict from the same
formula the Library uses. Before that, or when the header cannot be read, the figure is the
size-based estimate, marked "≈", with the reason it is not exact.
"""

from __future__ import annotations

from slmdesk.common.format import human_count, human_size, printable
from slmdesk.hub.listing import RemoteModel


def facts_text(model: RemoteModel, problem: str | None = None, reading: bool = False) -> str:
    """One line about ``model`` for the details under the file list."""
    name = printable(model.name)
    facts = model.header
    if facts is None:
        memory = f"≈ {human_size(model.estimate_bytes)} of memory: {model.verdict}"
        if model.is_projector:
            return f"{name}: a vision projector, used with a chat model."
        if len(model.files) > 1:
            return f"{name}: split into {len(model.files)} files; {memory} (from the file sizes)."
        if problem:
            return f"{name}: {memory} (from the file size). {printable(problem)}"
        if reading:
            return f"{name}: {memory}; reading its header on the Hub…"
        return f"{name}: {memory} (from the file size)."
    template = "has a chat template" if facts.has_chat_template else "no chat template"
    context = f"{facts.context_length:,} tokens of context" if facts.context_length else ""
    parts = [
        printable(facts.architecture),
        f"{human_count(facts.parameters)} parameters",
        *([context] if context else []),
        template,
    ]
    return (
        f"{name}: {' · '.join(parts)} · needs {human_size(model.estimate_bytes)} of memory: "
        f"{model.verdict}."
    )
