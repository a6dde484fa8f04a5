"""What the API routes need from whoever runs the model: a queue of work, in arrival order.

`slmdesk serve` brings its own thread and engine (`InferenceService`). The window has one
inference thread and one model already, shared with the user's chat: it passes an adapter
(``slmdesk.ui.runtime.shared_inference``) that queues the same tickets on that thread, so one
model stays in memory and chat turns and API requests take turns, first come, first served.
"""

from __future__ import annotations

from typing import Protocol

from slmdesk.serve.inference import Purpose, Ticket, Work


class Backend(Protocol):
    """Runs each request's work with a `Slot` on an inference thread, in arrival order.

    The work is run once, on that thread, with the model the ticket names loaded (or the one
    in memory); its text and outcome go back through the ticket. Setting ``ticket.cancel``
    skips a queued ticket or stops a running one within one token.
    """

    def submit(
        self, model: str | None, work: Work, purpose: Purpose = "chat", label: str = "request"
    ) -> Ticket:
        """Queue ``work``; call on the server's event loop. ``label`` names the request for
        status lines ("chat completion")."""
        ...

    def loaded_name(self) -> str | None:
        """The library name of the model in memory, or None (may be called on the event loop)."""
        ...
